"""What the token layer hands out, and the pure helpers around PKCS#11 objects.

Data classes (:class:`TokenInfo`, :class:`KeyPair`, :class:`TokenKey`), public-key encoding
(SubjectPublicKeyInfo from CKA_* values), key ids, RFC 7512 URIs, the DigestInfo for raw RSA
signing, and the retry around searches that race with other sessions. Called on the token thread
by :mod:`tui_csr.hsm.token`; nothing here opens a session.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from tui_csr.core.keyspec import HashAlg, KeySpec, KeyType

_T = TypeVar("_T")

#: CKA_APPLICATION of the data object that marks a key pair as made by tui-csr (orphan scans).
MARKER_APPLICATION = "tui-csr"


@dataclass(frozen=True)
class TokenInfo:
    """What the token says about itself; the PIN flags come from CKF_USER_PIN_*."""

    label: str
    serial: str
    manufacturer: str
    model: str
    login_required: bool
    pin_count_low: bool = False
    pin_final_try: bool = False
    pin_locked: bool = False
    module_description: str = ""


@dataclass(frozen=True)
class KeyPair:
    """A key pair on the token: its CKA_ID, CKA_LABEL and SubjectPublicKeyInfo (DER)."""

    key_id: bytes
    label: str
    spki_der: bytes
    attributes: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenKey:
    """A key object found on the token (for orphan scans): which classes exist for a CKA_ID."""

    key_id: bytes
    label: str
    has_private: bool
    has_public: bool
    marked: bool
    store_tag: str | None = None  # the id of the store the marker names


def pkcs11_uri(token_label: str, key_label: str, key_id: bytes, kind: str = "private",
               serial: str | None = None) -> str:
    """RFC 7512 URI of a key: ``pkcs11:token=demo;object=web;id=%01%02;type=private``."""
    def pct(text: str) -> str:
        return quote(text, safe="-._~!$&'()*+,=:@")  # RFC 7512 pchar minus ';' '/' '?'

    parts = [f"token={pct(token_label)}"]
    if serial:
        parts.append(f"serial={pct(serial)}")
    parts += [f"object={pct(key_label)}", "id=" + "".join(f"%{b:02X}" for b in key_id),
              f"type={kind}"]
    return "pkcs11:" + ";".join(parts)


def spki_der_of(pub: Any, spec: KeySpec) -> bytes:
    from asn1crypto import keys

    if spec.key_type is KeyType.RSA:
        from pkcs11.util.rsa import encode_rsa_public_key

        # python-pkcs11 returns PKCS#1 RSAPublicKey, not SubjectPublicKeyInfo: wrap it.
        rsa = keys.RSAPublicKey.load(encode_rsa_public_key(pub))
        return keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"}, "public_key": rsa}).dump()
    from pkcs11 import Attribute

    return ec_spki(bytes(pub[Attribute.EC_PARAMS]), bytes(pub[Attribute.EC_POINT]))


def ec_spki(ec_params: bytes, ec_point: bytes) -> bytes:
    """SubjectPublicKeyInfo from CKA_EC_PARAMS and CKA_EC_POINT.

    Most tokens return CKA_EC_POINT wrapped in an OCTET STRING (67 bytes for P-256); some return
    the raw uncompressed point. Accept both.
    """
    from asn1crypto import core, keys

    params = keys.ECDomainParameters.load(ec_params)
    coord = {"secp256r1": 32, "secp384r1": 48, "secp521r1": 66}.get(params.chosen.native, 0)
    raw_len = 1 + 2 * coord
    point = ec_point
    if not (coord and len(point) == raw_len and point[:1] == b"\x04"):
        # Wrapped (the usual case). A raw point can't be mistaken for it: lengths differ.
        with contextlib.suppress(ValueError):
            point = core.OctetString.load(ec_point, strict=True).native
    return keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": params},
        "public_key": keys.ECPointBitString(point),
    }).dump()


def key_id_for(spki_der: bytes) -> bytes:
    """CKA_ID for a key: SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1), the value
    p11tool and most CAs use for the subject key identifier, so the ids line up."""
    from asn1crypto import keys

    bits = keys.PublicKeyInfo.load(spki_der)["public_key"].contents[1:]  # drop unused-bits octet
    return hashlib.sha1(bits).digest()


def settled(search: Callable[[], _T], tries: int = 4) -> _T:
    """Run a read-only search, again when an object vanished under it.

    Another session or process may destroy an object between C_FindObjects and the reading of
    its attributes (CKR_OBJECT_HANDLE_INVALID; SoftHSM's shared file store may also answer
    CKR_ATTRIBUTE_VALUE_INVALID or CKR_FUNCTION_FAILED then): with several admins on one token
    that is normal, not a failure. A search that keeps failing raises the last error.
    """
    from pkcs11 import exceptions as px

    transient = (px.ObjectHandleInvalid, px.KeyHandleInvalid, px.AttributeValueInvalid,
                 px.FunctionFailed)
    for attempt in range(tries):
        try:
            return search()
        except transient:
            if attempt == tries - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


REQUIRED_PRIVATE = {"SENSITIVE": True, "EXTRACTABLE": False, "ALWAYS_SENSITIVE": True,
                     "NEVER_EXTRACTABLE": True, "SIGN": True}


def read_flags(priv: Any) -> dict[str, bool]:
    from pkcs11 import Attribute
    from pkcs11 import exceptions as px

    out: dict[str, bool] = {}
    for name in ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "SIGN",
                 "DECRYPT", "UNWRAP", "DERIVE", "PRIVATE", "TOKEN", "LOCAL"):
        try:
            out[name] = bool(priv[getattr(Attribute, name)])
        except (px.PKCS11Error, KeyError):
            continue
    return out


def serial_of(tok: Any) -> str:
    """The token's serial number as text."""
    serial = tok.serial
    if isinstance(serial, bytes):
        serial = serial.decode("ascii", "replace")
    return str(serial).strip()


DIGEST_INFO_PREFIX = {
    HashAlg.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    HashAlg.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    HashAlg.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}


def digest_info(hash_alg: HashAlg, digest: bytes) -> bytes:
    """PKCS#1 v1.5 DigestInfo for the raw CKM_RSA_PKCS mechanism."""
    return DIGEST_INFO_PREFIX[hash_alg] + digest
