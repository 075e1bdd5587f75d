"""Authentication on the real SoftHSM token: keys with CKA_ALWAYS_AUTHENTICATE (SoftHSM 2.6
enforces the context-specific login) and the protected authentication path."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import PROTECTED_AUTH, TokenFlag

from tests.conftest import SoftHSM
from tui_csr.core.keyspec import HashAlg, Scheme, parse_key_spec
from tui_csr.errors import TokenError
from tui_csr.hsm.token import Pkcs11Token
from tui_csr.hsm.worker import AsyncToken

P256 = parse_key_spec("P-256")


async def _token(token: SoftHSM) -> AsyncToken:
    facade = AsyncToken(Pkcs11Token(token.module, token.label))
    await facade.open()
    await facade.login(token.pin)
    return facade


def _verify(spki: bytes, signature: bytes, data: bytes) -> None:
    key = serialization.load_der_public_key(spki)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


async def test_always_authenticate_key_reads_back_and_signs_with_the_pin(token: SoftHSM) -> None:
    facade = await _token(token)
    key_id = await facade.new_key_id()
    pair = await facade.generate_keypair(P256, "always-auth", key_id, always_authenticate=True)
    try:
        assert pair.always_authenticate and pair.attributes["ALWAYS_AUTHENTICATE"] is True
        assert (await facade.key_attributes(key_id))["ALWAYS_AUTHENTICATE"] is True
        data = b"to be signed"
        # Without the PIN: refused before C_SignInit, one sentence naming the need.
        with pytest.raises(TokenError) as err:
            await facade.sign(key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA)
        assert err.value.field == "pin" and err.value.code == "CKR_USER_NOT_LOGGED_IN"
        assert "needs the PIN again before each signature" in err.value.message
        # With it: C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit, and the signature verifies.
        signature = await facade.sign(key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA,
                                      pin=token.pin)
        _verify(pair.spki_der, signature, data)
        # A wrong PIN at the context-specific login is one sentence; the session still works.
        with pytest.raises(TokenError) as err:
            await facade.sign(key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA, pin="000000")
        assert err.value.message == (f"Wrong PIN for the signature with key {key_id.hex()} on "
                                     "token 'test'.")
        assert err.value.code == "CKR_PIN_INCORRECT" and "000000" not in str(err.value)
        signature = await facade.sign(key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA,
                                      pin=token.pin)
        _verify(pair.spki_der, signature, data)
    finally:
        assert await facade.destroy(key_id) == 2
        await facade.close()


async def test_always_authenticate_is_read_from_the_token_for_an_older_key(
        token: SoftHSM) -> None:
    """A key not made in this session (adopt, renew): its CKA_ALWAYS_AUTHENTICATE is read, and
    the PIN is used only for a key that needs it."""
    facade = await _token(token)
    needy = await facade.generate_keypair(P256, "needy", await facade.new_key_id(),
                                          always_authenticate=True)
    plain = await facade.generate_keypair(P256, "plain", await facade.new_key_id())
    try:
        await facade.close()  # forget the handles of the fresh pair
        facade = await _token(token)
        data = b"older key"
        _verify(needy.spki_der, await facade.sign(needy.key_id, data, P256, HashAlg.SHA256,
                                                  Scheme.ECDSA, pin=token.pin), data)
        # A PIN given for a key that needs none is not sent (SoftHSM would refuse the login).
        _verify(plain.spki_der, await facade.sign(plain.key_id, data, P256, HashAlg.SHA256,
                                                  Scheme.ECDSA, pin=token.pin), data)
        with pytest.raises(TokenError, match="needs the PIN again"):
            await facade.sign(needy.key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA)
    finally:
        await facade.destroy(needy.key_id)
        await facade.destroy(plain.key_id)
        await facade.close()


async def test_plain_keys_do_not_need_a_context_login(token: SoftHSM) -> None:
    facade = await _token(token)
    pair = await facade.generate_keypair(parse_key_spec("RSA2048"), "plain-rsa",
                                         await facade.new_key_id())
    try:
        assert pair.always_authenticate is False
        assert pair.attributes.get("ALWAYS_AUTHENTICATE") is False
        assert pair.forced == {}  # SoftHSM takes the explicit template as given
        assert pair.left_to_token == ()
    finally:
        await facade.destroy(pair.key_id)
        await facade.close()


class _PinPadToken:
    """The real token, except that it reports a protected authentication path (PIN pad): the
    "device" answers PROTECTED_AUTH logins with the PIN typed on it."""

    def __init__(self, real: Any, pin: str) -> None:
        self._real, self._pin = real, pin
        self.logins: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @property
    def flags(self) -> TokenFlag:
        return TokenFlag(self._real.flags) | TokenFlag.PROTECTED_AUTHENTICATION_PATH

    def open(self, *, user_pin: Any = None, **kwargs: Any) -> Any:
        self.logins.append(user_pin)
        if user_pin is PROTECTED_AUTH:
            user_pin = self._pin
        return self._real.open(user_pin=user_pin, **kwargs)


async def test_protected_authentication_path_logs_in_without_a_pin(token: SoftHSM) -> None:
    sync = Pkcs11Token(token.module, token.label)
    facade = AsyncToken(sync)
    await facade.open()
    pad = _PinPadToken(sync._token, token.pin)
    sync._token = pad
    info = await facade.info()
    assert info.protected_auth_path and info.login_required
    info = await facade.login(None)
    # C_Login with no PIN (the device asks); a second open follows when another session of
    # this process had logged in already (CKR_USER_ALREADY_LOGGED_IN).
    assert pad.logins[0] is PROTECTED_AUTH and pad.logins[1:] in ([], [None])
    assert await facade.object_count() >= 0
    await facade.close()


async def test_sign_digest_matches_software(token: SoftHSM) -> None:
    """Guard for the helpers above: a prehashed ECDSA verify agrees with the plain one."""
    facade = await _token(token)
    pair = await facade.generate_keypair(P256, "guard", await facade.new_key_id())
    try:
        data = b"guard"
        signature = await facade.sign(pair.key_id, data, P256, HashAlg.SHA256, Scheme.ECDSA)
        key = serialization.load_der_public_key(pair.spki_der)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        key.verify(signature, digest.finalize(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    finally:
        await facade.destroy(pair.key_id)
        await facade.close()


async def test_service_always_authenticate_signs_with_the_pin_source(service) -> None:
    """The whole path: generate --always-authenticate makes a key that reads back
    CKA_ALWAYS_AUTHENTICATE=true and signs through the context-specific login."""
    from cryptography import x509

    from tests.conftest import PIN
    from tests.integration.conftest import GROUP
    from tui_csr.service import GenerateParams

    asked: list[str] = []

    async def pin_source(label: str) -> str:
        asked.append(label)
        return PIN

    service.pin_source = pin_source
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "ctx.example"},
                                                groups=[GROUP], always_authenticate=True))
    try:
        assert asked == ["test"]
        assert x509.load_pem_x509_csr(req.csr_pem.encode()).is_signature_valid
        assert req.key_attributes and req.key_attributes["ALWAYS_AUTHENTICATE"] is True
        attrs = await service.token.key_attributes(bytes.fromhex(req.key_id))
        assert attrs["ALWAYS_AUTHENTICATE"] is True
    finally:
        await service.delete_request(req.id)


async def test_service_wrong_context_pin_is_one_sentence_and_leaves_no_key(service) -> None:
    from tests.integration.conftest import GROUP
    from tui_csr.service import GenerateParams

    async def wrong(_label: str) -> str:
        return "000000"

    service.pin_source = wrong
    before = await service.token.object_count()
    with pytest.raises(TokenError) as err:
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "wrong.example"},
                                              groups=[GROUP], always_authenticate=True))
    assert err.value.code == "CKR_PIN_INCORRECT" and err.value.field == "pin"
    assert err.value.message.startswith("Wrong PIN for the signature with key ")
    assert "000000" not in str(err.value) and "\n" not in str(err.value)
    assert await service.token.object_count() == before
    assert await service.list_requests() == []


def test_cli_generate_always_authenticate(cli) -> None:
    """The CLI's context-specific login uses the login's PIN source (here TUI_CSR_PIN)."""
    import json

    from cryptography import x509

    from tests.integration.conftest import GROUP

    run = cli("generate", "--key-spec", "RSA2048", "--cn", "cli-ctx.example", "--group", GROUP,
              "--always-authenticate", "--json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["key_attributes"]["ALWAYS_AUTHENTICATE"] is True
    assert x509.load_pem_x509_csr(doc["csr_pem"].encode()).is_signature_valid
    assert cli.token.pin not in run.out + run.err
    assert cli("delete", doc["id"], "--yes").code == 0
