"""Public keys read from a token are checked before a CSR is built on them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tui_csr.core.keyspec import parse_key_spec
from tui_csr.hsm.pubkey import (
    PublicKeyProblem,
    checked_ec_spki,
    checked_rsa_spki,
    checked_spki,
    unwrap_ec_point,
)

P256_OID = bytes.fromhex("06082a8648ce3d030107")
P384_OID = bytes.fromhex("06052b81040022")
P521_OID = bytes.fromhex("06052b81040023")


def _point(curve: ec.EllipticCurve) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(curve).public_key()
    raw = key.public_bytes(serialization.Encoding.X962,
                           serialization.PublicFormat.UncompressedPoint)
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw, spki


def _wrap(raw: bytes) -> bytes:
    n = len(raw)
    return b"\x04" + (bytes([n]) if n < 0x80 else b"\x81" + bytes([n])) + raw


@pytest.mark.parametrize(("spec", "oid", "curve"), [
    ("P-256", P256_OID, ec.SECP256R1()), ("P-384", P384_OID, ec.SECP384R1()),
    ("P-521", P521_OID, ec.SECP521R1())])
def test_wrapped_and_raw_points_give_the_same_spki(spec: str, oid: bytes, curve) -> None:
    raw, spki = _point(curve)
    assert checked_ec_spki(parse_key_spec(spec), oid, _wrap(raw)) == spki
    assert checked_ec_spki(parse_key_spec(spec), oid, raw) == spki


def test_tpm2_malformed_p521_point_is_refused() -> None:
    """tpm2-pkcs11 writes the 133-byte point's length as one short-form octet: ``04 85 04``."""
    raw, _ = _point(ec.SECP521R1())
    malformed = b"\x04\x85" + raw
    with pytest.raises(PublicKeyProblem) as err:
        checked_ec_spki(parse_key_spec("P-521"), P521_OID, malformed)
    assert str(err.value) == ("its CKA_EC_POINT (135 bytes, starting 04 85 04 " +
                              f"{raw[1]:02x}) is neither a DER OCTET STRING holding a point nor "
                              "a raw point")


def test_point_off_the_curve_is_refused() -> None:
    raw, _ = _point(ec.SECP256R1())
    off = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(PublicKeyProblem, match="not a point on curve P-256"):
        checked_ec_spki(parse_key_spec("P-256"), P256_OID, _wrap(off))


def test_point_of_another_curve_is_refused() -> None:
    raw, _ = _point(ec.SECP384R1())
    with pytest.raises(PublicKeyProblem, match="names curve 1.3.132.0.34, not P-256"):
        checked_ec_spki(parse_key_spec("P-256"), P384_OID, _wrap(raw))
    with pytest.raises(PublicKeyProblem, match="neither a DER OCTET STRING"):
        checked_ec_spki(parse_key_spec("P-256"), P256_OID, _wrap(raw))  # P-384-sized point


def test_non_der_wrapping_is_refused() -> None:
    raw, _ = _point(ec.SECP256R1())
    long_form = b"\x04\x81\x41" + raw  # 0x41 fits the short form: not DER
    with pytest.raises(PublicKeyProblem):
        unwrap_ec_point(long_form, "secp256r1")
    with pytest.raises(PublicKeyProblem):
        unwrap_ec_point(b"", "secp256r1")


def test_rsa_modulus_size_is_checked() -> None:
    key = rsa.generate_private_key(65537, 2048).public_key()
    nums = key.public_numbers()
    modulus = nums.n.to_bytes(256, "big")
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert checked_rsa_spki(parse_key_spec("RSA2048"), modulus, b"\x01\x00\x01") == spki
    with pytest.raises(PublicKeyProblem, match="its modulus is 2048 bits, not 3072"):
        checked_rsa_spki(parse_key_spec("RSA3072"), modulus, b"\x01\x00\x01")
    with pytest.raises(PublicKeyProblem, match="public exponent 65536"):
        checked_rsa_spki(parse_key_spec("RSA2048"), modulus, b"\x01\x00\x00")


def test_missing_values_are_refused() -> None:
    with pytest.raises(PublicKeyProblem, match="did not return its CKA_EC_PARAMS"):
        checked_spki(parse_key_spec("P-256"), {"EC_PARAMS": P256_OID})
    with pytest.raises(PublicKeyProblem, match="did not return its modulus"):
        checked_spki(parse_key_spec("RSA2048"), {"MODULUS": b""})
