"""The Luna provider against a stand-in token behind the real worker interface.

The stand-in answers ``read_vendor_attribute`` the way a Luna partition does (a PKC as DER
PKCS#7 under CKA_PKC_TCTRUST / CKA_PKC_ECC) or the way SoftHSM does (None: the attribute is
unknown). It runs behind :class:`AsyncToken`, so every call goes through the token thread.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from asn1crypto import cms, pem
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.unit.attestation_chains import LUNA_NAMES, chain_for, new_key, pkcs7_der, request_for
from tui_csr.attestation import (
    AttestationError,
    AttestationUnsupportedError,
    save_attestation,
)
from tui_csr.attestation.luna import CKA_OUID, CKA_PKC_ECC, CKA_PKC_TCTRUST, LunaProvider
from tui_csr.config import Settings
from tui_csr.errors import InputError
from tui_csr.hsm.token import TokenInfo
from tui_csr.hsm.worker import TOKEN_THREAD, AsyncToken
from tui_csr.service import CsrService
from tui_csr.store.repo import Store


class StandInLuna:
    """What :class:`AsyncToken` needs of a token, plus Luna's vendor attributes."""

    def __init__(self, attributes: dict[tuple[int, str], bytes], label: str = "luna-part") -> None:
        self.token_label: str | None = label
        self.attributes = attributes
        self.calls: list[tuple[bytes, int, str]] = []
        self.threads: set[int] = set()

    def open(self) -> TokenInfo:
        return self.info()

    def info(self) -> TokenInfo:
        return TokenInfo(label=self.token_label or "", serial="1234", manufacturer="Safenet, Inc.",
                         model="LunaSA 7", login_required=True)

    def login(self, pin: str | None) -> TokenInfo:
        return self.info()

    def close(self) -> None:
        pass

    def key_exists(self, key_id: bytes) -> bool:
        return True

    def read_vendor_attribute(self, key_id: bytes, attr_type: int,
                              object_class: str = "private") -> bytes | None:
        self.threads.add(threading.get_ident())
        self.calls.append((key_id, attr_type, object_class))
        return self.attributes.get((attr_type, object_class))


def _matching(folder: Path, pattern: str) -> list[Path]:
    """Files in ``folder`` named like ``pattern`` (sync: a test helper, not event-loop code)."""
    return sorted(folder.glob(pattern))


def _spki(key) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def ec_key():
    return new_key("EC")


def _service(tmp_path: Path, stand_in: StandInLuna, request) -> CsrService:
    store = Store.open(tmp_path / "data")
    store.add_request(request)
    return CsrService(Settings(data_dir=tmp_path / "data", attestation="luna"), store,
                      token=AsyncToken(stand_in))


async def test_ec_key_attestation_is_read_checked_and_saved(tmp_path: Path, ec_key) -> None:
    chain = chain_for(ec_key.public_key(), LUNA_NAMES)
    der = pkcs7_der(chain)
    stand_in = StandInLuna({(CKA_PKC_ECC, "private"): der,
                            (CKA_OUID, "private"): bytes.fromhex("8dac020013000002badb0800")})
    request = request_for(ec_key)
    service = _service(tmp_path, stand_in, request)
    assert service.attestation_available() is None

    result = await service.attestation(request.id)

    # Read through the token thread, EC attribute first, from the private key.
    assert stand_in.threads == {TOKEN_THREAD.thread_ident}
    assert stand_in.calls[0] == (bytes.fromhex(request.key_id), CKA_PKC_ECC, "private")
    assert result.object_id == "8dac020013000002badb0800"
    assert result.attested_spki_der == _spki(ec_key)
    assert [(c.role, c.subject) for c in result.chain] == [
        ("MIC", "CN=Test MIC,O=Test Vendor"), ("HOC", "CN=Test HOC,O=Test Vendor"),
        ("DAC", "CN=Test DAC,O=Test Vendor"), ("PKC", "CN=Test PKC,O=Test Vendor")]
    assert result.chain[3].issuer == "CN=Test DAC,O=Test Vendor"
    assert result.chain[3].serial == "1004"
    assert result.chain[0].not_before == chain[0].not_valid_before_utc
    assert result.chain[0].not_after == chain[0].not_valid_after_utc
    text = "\n".join(result.summary_lines())
    assert "4 certificates" in text and "matches the CSR" in text

    out = tmp_path / "web.p7b"
    written = save_attestation(result, out)
    assert written == [out.resolve()]
    assert out.read_bytes() == der  # byte for byte what the token returned
    saved = cms.ContentInfo.load(out.read_bytes())
    assert saved["content_type"].native == "signed_data"
    certs = {x509.load_der_x509_certificate(c.chosen.dump())
             for c in saved["content"]["certificates"]}
    assert certs == set(chain)  # a SET OF: DER sorts it, so compare as a set
    # The audit trail names the download (and never a secret).
    assert [e.action for e in service.store.list_audit()][-1] == "attestation"


async def test_rsa_key_uses_tctrust_and_pem_output(tmp_path: Path) -> None:
    key = new_key("RSA")
    chain = chain_for(key.public_key(), LUNA_NAMES)
    shuffled = chain[:]
    random.Random(7).shuffle(shuffled)  # the order inside the PKCS#7 must not matter
    stand_in = StandInLuna({(CKA_PKC_TCTRUST, "private"): pkcs7_der(shuffled)})
    request = request_for(key)
    result = await LunaProvider().attest(request, AsyncToken(stand_in))
    assert stand_in.calls[0][1] == CKA_PKC_TCTRUST
    assert [c.role for c in result.chain] == ["MIC", "HOC", "DAC", "PKC"]
    assert result.chain[-1].subject == "CN=Test PKC,O=Test Vendor"
    assert result.object_id is None  # no CKA_OUID on this stand-in

    out = tmp_path / "web.pem"
    save_attestation(result, out)
    kind, _headers, der = pem.unarmor(out.read_bytes())
    assert kind == "PKCS7" and der == result.data


async def test_pkc_for_another_key_is_an_error_and_writes_nothing(tmp_path: Path,
                                                                  ec_key) -> None:
    other = new_key("EC")
    stand_in = StandInLuna({(CKA_PKC_ECC, "private"): pkcs7_der(chain_for(other.public_key(),
                                                                          LUNA_NAMES))})
    request = request_for(ec_key)
    service = _service(tmp_path, stand_in, request)
    out = tmp_path / "web.p7b"
    with pytest.raises(AttestationError) as info:
        save_attestation(await service.attestation(request.id), out)
    assert "certifies a different public key than the CSR of 'web-2026-01-01'" in str(info.value)
    assert "nothing was saved" in str(info.value)
    assert not out.exists() and _matching(tmp_path, "web*") == []
    assert info.value.exit_code == 1


async def test_missing_attribute_means_not_supported_by_this_token(ec_key) -> None:
    stand_in = StandInLuna({})  # like SoftHSM: CKR_ATTRIBUTE_TYPE_INVALID for every vendor attr
    with pytest.raises(AttestationUnsupportedError) as info:
        await LunaProvider().attest(request_for(ec_key), AsyncToken(stand_in))
    assert str(info.value).startswith(
        "Token 'luna-part' does not support key attestation (no Public Key Confirmation "
        "attribute).")
    assert info.value.code == "CKR_ATTRIBUTE_TYPE_INVALID" and info.value.exit_code == 2
    # Both the private and the public object were asked before giving up.
    assert [(a, c) for _k, a, c in stand_in.calls] == [(CKA_PKC_ECC, "private"),
                                                        (CKA_PKC_ECC, "public")]


async def test_public_object_and_second_rsa_format_are_fallbacks() -> None:
    from tui_csr.attestation.luna import CKA_PKC_CITS

    key = new_key("RSA")
    stand_in = StandInLuna({(CKA_PKC_CITS, "public"): pkcs7_der(chain_for(key.public_key(),
                                                                          LUNA_NAMES))})
    result = await LunaProvider().attest(request_for(key), AsyncToken(stand_in))
    assert result.chain[-1].role == "PKC"
    assert stand_in.calls[-2][1:] == (CKA_PKC_CITS, "public")


async def test_garbage_attribute_is_a_clear_error(ec_key) -> None:
    stand_in = StandInLuna({(CKA_PKC_ECC, "private"): b"\x30\x03\x02\x01\x05junk"})
    with pytest.raises(AttestationError, match="not a PKCS#7 certificate chain"):
        await LunaProvider().attest(request_for(ec_key), AsyncToken(stand_in))


async def test_request_from_another_token_is_refused(ec_key) -> None:
    stand_in = StandInLuna({}, label="other-part")
    with pytest.raises(InputError, match="lives on token 'luna-part'"):
        await LunaProvider().attest(request_for(ec_key), AsyncToken(stand_in))
    assert stand_in.calls == []


async def test_existing_file_is_not_overwritten_without_force(tmp_path: Path, ec_key) -> None:
    stand_in = StandInLuna({(CKA_PKC_ECC, "private"): pkcs7_der(chain_for(ec_key.public_key(),
                                                                          LUNA_NAMES))})
    result = await LunaProvider().attest(request_for(ec_key), AsyncToken(stand_in))
    out = tmp_path / "a.p7b"
    out.write_bytes(b"keep")
    with pytest.raises(InputError, match="already exists; use --force"):
        save_attestation(result, out)
    assert out.read_bytes() == b"keep"
    save_attestation(result, out, force=True)
    assert out.read_bytes() == result.data


def test_attestation_package_is_headless() -> None:
    """The providers never import Textual (the UI calls them) nor python-pkcs11 (the token
    thread does that part)."""
    import subprocess
    import sys

    code = ("import sys, tui_csr.attestation, tui_csr.attestation.luna, "
            "tui_csr.attestation.fortanix; "
            "print(sorted(m for m in ('textual', 'pkcs11') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


async def test_vendor_shaped_pkc_with_ber_quirks_is_read(tmp_path: Path) -> None:
    """A PKC with the encodings of a real Luna ECC bag (explicit critical=FALSE, ECDSA NULL
    parameters, unsigned-looking s, no DAC, leaf first) is read, not refused."""
    from tests.unit.attestation_chains import certs_only_bag, luna_ecc_chain

    key = new_key("EC")
    bag = certs_only_bag(luna_ecc_chain(key))
    stand_in = StandInLuna({(CKA_PKC_ECC, "private"): bag})
    result = await LunaProvider().attest(request_for(key), AsyncToken(stand_in))
    assert [c.role for c in result.chain] == ["MIC", "HOC", "PKC"]
    assert result.object_id == "43000000ae000002d6f30700"  # the PKC's CN when no CKA_OUID
    assert result.report is not None and result.report.facts.serial == "521174"
    text = "\n".join(result.summary_lines())
    assert "ok   chain: 3 certificates, every signature verifies." in text
    assert "FAIL root: the root is unknown" in text  # a test root, shown, not hidden
    save_attestation(result, tmp_path / "k.p7b")
    assert (tmp_path / "k.p7b").read_bytes() == bag
