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
    #: CKF_PROTECTED_AUTHENTICATION_PATH: the PIN is entered on the device (a PIN pad), not here.
    protected_auth_path: bool = False
    #: The token profile in use (:mod:`tui_csr.hsm.profiles`) and why it was chosen.
    profile: str = ""
    profile_reason: str = ""
    #: What the login prompt should explain about the PIN's format (YubiHSM 2: ``0001password``).
    pin_hint: str | None = None


@dataclass(frozen=True)
class KeyPair:
    """A key pair on the token: its CKA_ID, CKA_LABEL and SubjectPublicKeyInfo (DER).

    ``attributes`` are the private key's flags as the token reports them after generation
    (``key_attributes`` in ``--json`` and View CSR); ``forced`` are those the token set against
    what tui-csr wants of a signing key (tpm2-pkcs11: ``DECRYPT: True`` on RSA keys), public-key
    ones prefixed ``public.``; ``left_to_token`` names the template attributes the profile did not
    send.
    """

    key_id: bytes
    label: str
    spki_der: bytes
    attributes: dict[str, bool] = field(default_factory=dict)
    forced: dict[str, bool] = field(default_factory=dict)
    left_to_token: tuple[str, ...] = ()
    always_authenticate: bool = False


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

#: The private key's flags read back after generation (in one C_GetAttributeValue).
PRIVATE_FLAGS = ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "SIGN",
                 "DECRYPT", "UNWRAP", "DERIVE", "PRIVATE", "TOKEN", "LOCAL",
                 "ALWAYS_AUTHENTICATE")


def read_attributes(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes ``names`` of ``obj`` in one C_GetAttributeValue (python-pkcs11's
    ``get_attributes``); attributes the token does not have for the object are left out.

    Some modules answer a bulk read with an error when one attribute is unknown to them; only
    then are the attributes read one at a time.
    """
    from pkcs11 import Attribute
    from pkcs11 import exceptions as px

    from tui_csr.hsm.raw import RawObject

    if isinstance(obj, RawObject):  # buffers sized ahead: one call, not two
        return obj.get_attributes(names)
    types = {getattr(Attribute, name): name for name in names}
    try:
        got = obj.get_attributes(list(types))
        return {types[key]: value for key, value in got.items() if key in types}
    except (px.AttributeTypeInvalid, px.AttributeSensitive, px.FunctionFailed):
        pass
    out: dict[str, Any] = {}
    for key, name in types.items():
        try:
            out[name] = obj[key]
        except (px.AttributeTypeInvalid, px.AttributeSensitive, px.FunctionFailed, KeyError):
            continue
    return out


def read_flags(priv: Any) -> dict[str, bool]:
    """The private key's security flags (see :data:`PRIVATE_FLAGS`) as booleans."""
    return {name: bool(value) for name, value in read_attributes(priv, PRIVATE_FLAGS).items()}


def find_objects(session: Any, attrs: dict[Any, Any] | None = None,
                 limit: int | None = None, batch_size: int = 16) -> list[Any]:
    """The objects matching ``attrs`` (at most ``limit``), with the search always finished.

    python-pkcs11's ``Session.get_objects`` marks its search active before C_FindObjectsInit;
    when that call fails (the connection to a remote token dropped, the session is gone) the
    search stays active, and its finaliser later calls C_FindObjectsFinal, fails again and
    prints ``Exception ignored in: 'pkcs11._pkcs11.OperationContext.__del__'`` with a
    traceback on the terminal. Driving the search here and finishing it on every path (its
    ``_finalize`` resets it even when C_FindObjectsFinal fails) leaves nothing for the
    finaliser. A stand-in session (tests) is searched through its own ``get_objects``.
    """
    from tui_csr.hsm.native import NativeSession

    if isinstance(session, NativeSession):  # C_FindObjectsFinal on every path, no finaliser
        return session.find(attrs, limit, batch_size)
    from pkcs11 import _pkcs11

    if not isinstance(session, _pkcs11.Session):  # type: ignore[attr-defined]
        found = list(session.get_objects(attrs or {}))
        return found if limit is None else found[:limit]
    search = _pkcs11.SearchIter(session, attrs or {}, batch_size)  # type: ignore[attr-defined]
    out: list[Any] = []
    try:
        search.__enter__()
        for batch in search:
            out.extend(batch)
            if limit is not None and len(out) >= limit:
                break
    except BaseException:
        with contextlib.suppress(Exception):  # the search's own failure is what is raised
            search._finalize()
        raise
    search._finalize()  # C_FindObjectsFinal; a no-op after the search ran to its end
    return out if limit is None else out[:limit]


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
