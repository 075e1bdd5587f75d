"""Token and store stay consistent: a failure after key generation destroys the pair again."""

from __future__ import annotations

import pytest

from tests.integration.conftest import GROUP
from tui_csr.errors import StoreError, TokenError
from tui_csr.service import CsrService, GenerateParams


async def test_store_write_failure_destroys_the_key(service: CsrService, monkeypatch) -> None:
    before = await service.token.object_count()

    def broken(*_a, **_k):
        raise StoreError("The store /x is unreadable: disk on fire.")

    monkeypatch.setattr(service.store, "add_request", broken)
    with pytest.raises(StoreError):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "s"},
                                              groups=[GROUP]))
    assert await service.token.object_count() == before


async def test_signing_failure_destroys_the_key(service: CsrService, monkeypatch) -> None:
    before = await service.token.object_count()
    real = service.token._token

    def broken_sign(*_a, **_k):
        raise TokenError("While signing the CSR on token 'test': the token failed.",
                         code="CKR_FUNCTION_FAILED")

    monkeypatch.setattr(real, "sign", broken_sign)
    with pytest.raises(TokenError):
        await service.generate(GenerateParams(key_spec="RSA2048", fields={"CN": "s"},
                                              groups=[GROUP]))
    assert await service.token.object_count() == before
    assert await service.list_requests() == []


async def test_bad_signature_is_caught_before_storing(service: CsrService, monkeypatch) -> None:
    """A token that signs with other parameters than the CSR states (here: garbage) is caught
    by the software check, and nothing is stored."""
    before = await service.token.object_count()
    real = service.token._token
    original = real.sign

    def wrong(key_id, data, spec, hash_alg, scheme):
        return original(key_id, data + b"x", spec, hash_alg, scheme)

    monkeypatch.setattr(real, "sign", wrong)
    with pytest.raises(Exception, match="does not verify"):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "v"},
                                              groups=[GROUP]))
    assert await service.token.object_count() == before
    assert await service.list_requests() == []


async def test_audit_records_generate_and_delete(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "a"},
                                                groups=[GROUP]))
    await service.delete_request(req.id)
    actions = [(e.action, e.subject) for e in service.store.list_audit()]
    assert ("generate", req.id) in actions and ("delete", req.id) in actions
    assert all(e.user == service.user for e in service.store.list_audit())


async def test_default_label_steps_around_a_key_already_on_the_token(
        service: CsrService) -> None:
    """A key made elsewhere (another data folder) already holds the default label."""
    from tui_csr.core.dn import DistinguishedName
    from tui_csr.core.keyspec import parse_key_spec
    from tui_csr.service import default_label

    taken = default_label(DistinguishedName.from_fields(cn="clash"), service.today())
    pair = await service.token.generate_keypair(parse_key_spec("P-256"), taken)
    try:
        req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "clash"},
                                                    groups=[GROUP]))
        assert req.label == f"{taken}-2"
        with pytest.raises(Exception, match="already used on token"):
            await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "clash"},
                                                  groups=[GROUP], label=taken))
        await service.delete_request(req.id)
    finally:
        await service.token.destroy(pair.key_id)
