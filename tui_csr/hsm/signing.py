"""Signing on the token, for :class:`~tui_csr.hsm.token.Pkcs11Token`: the best mechanism the
slot lists (combined hash-and-sign where it has one), and the context-specific login that keys
with CKA_ALWAYS_AUTHENTICATE need. Runs on the token thread, as the token's methods do.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from tui_csr.core.keyspec import HashAlg, Scheme
from tui_csr.errors import TokenError
from tui_csr.hsm.errors import token_error
from tui_csr.hsm.keys import digest_info, find_objects, read_attributes
from tui_csr.hsm.native import raw_for
from tui_csr.hsm.raw import RawModule

if TYPE_CHECKING:
    from tui_csr.hsm.token import Pkcs11Token


def sign(token: Pkcs11Token, key_id: bytes, data: bytes, hash_alg: HashAlg, scheme: Scheme,
         pin: str | None) -> bytes:
    """Sign ``data`` with the private key ``key_id``; ECDSA signatures come back DER-encoded.

    Uses the combined hash-and-sign mechanism where the slot lists it; otherwise hashes in
    software and uses the raw mechanism (SoftHSM 2.6 has no CKM_ECDSA_SHA256). ``pin`` is
    the context-specific login (C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit) that keys
    with CKA_ALWAYS_AUTHENTICATE need; it is not kept, and not used for other keys. Such a
    key without a PIN is refused before C_SignInit: on tpm2-pkcs11 a failed sign leaves the
    operation active and the key impossible to destroy in this process.
    """
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as px

    session = token._s()
    doing = "signing the CSR"
    try:
        fresh = token._fresh
        if fresh is not None and fresh[0] == key_id:
            priv, always = fresh[1], bool(token._fresh_attrs.get("ALWAYS_AUTHENTICATE"))
        else:
            keys = find_objects(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                          Attribute.ID: key_id})
            if len(keys) != 1:
                token._ensure_present(doing)
                raise TokenError(
                    f"The private key {key_id.hex()} is not on token '{token.token_label}'.",
                    field="token", code="CKR_OBJECT_HANDLE_INVALID")
            priv = keys[0]
            always = bool(read_attributes(priv, ("ALWAYS_AUTHENTICATE",)).get(
                "ALWAYS_AUTHENTICATE"))
    except px.PKCS11Error as exc:
        token._ensure_present(doing)
        raise token_error(exc, doing, token.token_label) from exc
    if always and pin is None:
        raise TokenError(f"Key {key_id.hex()} on token '{token.token_label}' needs the PIN "
                         "again before each signature (CKA_ALWAYS_AUTHENTICATE).",
                         field="pin", code="CKR_USER_NOT_LOGGED_IN")
    try:
        raw = raw_for(session)
        if raw is not None:
            return sign_raw(raw, session.handle, int(priv.handle), token.mechanisms(), data,
                            hash_alg, scheme, pin if always else None)
        return sign_with(priv, token.mechanisms(), data, hash_alg, scheme,
                         pin if always else None)
    except px.PKCS11Error as exc:
        token._ensure_present(doing)
        token._fresh_session()
        if isinstance(exc, px.PinIncorrect):
            raise TokenError(f"Wrong PIN for the signature with key {key_id.hex()} on token "
                             f"'{token.token_label}'.", field="pin",
                             code="CKR_PIN_INCORRECT") from exc
        if isinstance(exc, px.UserNotLoggedIn):
            raise TokenError(f"Key {key_id.hex()} on token '{token.token_label}' needs the "
                             "PIN again before each signature (CKA_ALWAYS_AUTHENTICATE).",
                             field="pin", code="CKR_USER_NOT_LOGGED_IN") from exc
        raise token_error(exc, doing, token.token_label) from exc


def sign_with(priv: Any, mechs: set[Any], data: bytes, hash_alg: HashAlg, scheme: Scheme,
              pin: str | None) -> bytes:
    """One C_SignInit/C_Sign with the best mechanism the slot lists."""
    from pkcs11 import MGF, Mechanism

    extra: dict[str, Any] = {"pin": pin} if pin is not None else {}
    if scheme is Scheme.EDDSA:  # PureEdDSA: the whole message, no hash (RFC 8410)
        return priv.sign(data, mechanism=Mechanism.EDDSA, **extra)
    h = hash_alg.value  # SHA256 ...
    digest = hashlib.new(hash_alg.asn1_name, data).digest()
    if scheme is Scheme.ECDSA:
        from pkcs11.util.ec import encode_ecdsa_signature

        combined = getattr(Mechanism, f"ECDSA_{h}", None)
        if combined in mechs:
            raw = priv.sign(data, mechanism=combined, **extra)
        else:
            raw = priv.sign(digest, mechanism=Mechanism.ECDSA, **extra)
        return encode_ecdsa_signature(raw)
    if scheme is Scheme.PSS:
        param = (getattr(Mechanism, h), getattr(MGF, h), hash_alg.octets)
        combined = getattr(Mechanism, f"{h}_RSA_PKCS_PSS")
        if combined in mechs:
            return priv.sign(data, mechanism=combined, mechanism_param=param, **extra)
        return priv.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=param,
                         **extra)
    combined = getattr(Mechanism, f"{h}_RSA_PKCS")
    if combined in mechs:
        return priv.sign(data, mechanism=combined, **extra)
    return priv.sign(digest_info(hash_alg, digest), mechanism=Mechanism.RSA_PKCS, **extra)


def sign_raw(raw: RawModule, session: int, key: int, mechs: set[Any], data: bytes,
             hash_alg: HashAlg, scheme: Scheme, pin: str | None) -> bytes:
    """:func:`sign_with` through :mod:`tui_csr.hsm.raw`: C_SignInit (the context-specific
    login with ``pin``) and one C_Sign, on the key's handle; no attribute is read first."""
    from pkcs11 import MGF, Mechanism

    if scheme is Scheme.EDDSA:
        return raw.sign(session, key, int(Mechanism.EDDSA), data, pin=pin)
    h = hash_alg.value
    digest = hashlib.new(hash_alg.asn1_name, data).digest()
    if scheme is Scheme.ECDSA:
        from pkcs11.util.ec import encode_ecdsa_signature

        combined = getattr(Mechanism, f"ECDSA_{h}", None)
        if combined is not None and combined in mechs:
            signature = raw.sign(session, key, int(combined), data, pin=pin)
        else:
            signature = raw.sign(session, key, int(Mechanism.ECDSA), digest, pin=pin)
        return encode_ecdsa_signature(signature)
    if scheme is Scheme.PSS:
        param = (int(getattr(Mechanism, h)), int(getattr(MGF, h)), hash_alg.octets)
        combined = getattr(Mechanism, f"{h}_RSA_PKCS_PSS")
        if combined in mechs:
            return raw.sign(session, key, int(combined), data, pss=param, pin=pin)
        return raw.sign(session, key, int(Mechanism.RSA_PKCS_PSS), digest, pss=param, pin=pin)
    combined = getattr(Mechanism, f"{h}_RSA_PKCS")
    if combined in mechs:
        return raw.sign(session, key, int(combined), data, pin=pin)
    return raw.sign(session, key, int(Mechanism.RSA_PKCS), digest_info(hash_alg, digest),
                    pin=pin)
