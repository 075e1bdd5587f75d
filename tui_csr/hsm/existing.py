"""Key pairs that are already on the token: found by CKA_ID and/or CKA_LABEL, read and checked.

For ``generate --key`` (a CSR for a key made by another tool or a ceremony) and for renewals with
the same key. Functions over a logged-in python-pkcs11 session; like
:class:`~tui_csr.hsm.token.Pkcs11Token`, which exposes them as methods, they only ever run on the
token thread. Each object's attributes are read in one C_GetAttributeValue
(:func:`~tui_csr.hsm.keys.read_attributes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_csr.errors import InputError, TokenError
from tui_csr.hsm.errors import token_error
from tui_csr.hsm.keys import REQUIRED_PRIVATE, find_objects, read_attributes, settled

if TYPE_CHECKING:
    from tui_csr.core.p11uri import KeySelector

#: What is read of the private key, in one call.
PRIVATE_READ = ("ID", "LABEL", "KEY_TYPE", "SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE",
                "NEVER_EXTRACTABLE", "SIGN", "DECRYPT", "UNWRAP", "DERIVE", "PRIVATE", "TOKEN",
                "LOCAL", "ALWAYS_AUTHENTICATE")
_FLAGS = tuple(name for name in PRIVATE_READ if name not in ("ID", "LABEL", "KEY_TYPE"))

#: What :data:`REQUIRED_PRIVATE` means, for the refusal message.
_MEANING = {
    "SENSITIVE": ("CKA_SENSITIVE is false", "its value can be read off the token"),
    "EXTRACTABLE": ("CKA_EXTRACTABLE is true", "it can be exported (wrapped) off the token"),
    "ALWAYS_SENSITIVE": ("CKA_ALWAYS_SENSITIVE is false",
                         "it was readable at some point of its life"),
    "NEVER_EXTRACTABLE": ("CKA_NEVER_EXTRACTABLE is false",
                          "it was exportable at some point of its life"),
    "SIGN": ("CKA_SIGN is false", "the token will not sign with it"),
}


@dataclass(frozen=True)
class ExistingKey:
    """A key pair found on the token: its CKA_ID, CKA_LABEL, SubjectPublicKeyInfo (DER) and the
    private key's flags as the token reports them."""

    key_id: bytes
    label: str
    spki_der: bytes
    attributes: dict[str, bool] = field(default_factory=dict)


def attribute_problem(attributes: dict[str, bool], what: str) -> str | None:
    """None when the private key's flags are those tui-csr requires of its own keys (sensitive,
    never extractable, always sensitive, never extractable, sign); else a sentence naming the
    first attribute that fails. ``what`` names the key ("Key 'web' (0a0b) on token 'demo'")."""
    for name, wanted in REQUIRED_PRIVATE.items():
        if name not in attributes:
            return (f"{what} does not report CKA_{name}; tui-csr makes CSRs only for keys "
                    "whose protection the token confirms.")
        if bool(attributes[name]) != wanted:
            flag, meaning = _MEANING[name]
            return f"{what} is refused: {flag}, so {meaning}."
    return None


def _public_values(pub: Any, kind: Any) -> dict[str, Any]:
    """The public key's material in one call (RSA or EC, by the private key's CKA_KEY_TYPE)."""
    from pkcs11 import KeyType as P11KeyType

    names = (("MODULUS", "PUBLIC_EXPONENT") if kind == P11KeyType.RSA
             else ("EC_PARAMS", "EC_POINT"))
    values = read_attributes(pub, names)
    values["KEY_TYPE"] = kind
    return values


def _spki(values: dict[str, Any]) -> bytes:
    """SubjectPublicKeyInfo from the public object's values; InputError for other key types."""
    from pkcs11 import KeyType as P11KeyType

    from tui_csr.hsm.keys import ec_spki

    kind = values.get("KEY_TYPE")
    if kind == P11KeyType.RSA:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        n = int.from_bytes(bytes(values.get("MODULUS") or b""), "big")
        e = int.from_bytes(bytes(values.get("PUBLIC_EXPONENT") or b""), "big")
        if not n or not e:
            raise TokenError("The token did not return the RSA public key's modulus and "
                             "exponent.", field="key")
        return rsa.RSAPublicNumbers(e, n).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if kind == P11KeyType.EC and values.get("EC_PARAMS") and values.get("EC_POINT"):
        return ec_spki(bytes(values["EC_PARAMS"]), bytes(values["EC_POINT"]))
    name = getattr(kind, "name", str(kind))
    raise InputError(f"The key is of type {name}; tui-csr makes CSRs for RSA and EC keys.",
                     field="key")


def find_existing_key(session: Any, token_label: str, selector: KeySelector) -> ExistingKey:
    """The one key pair ``selector`` names on the token (private key, and the public key with
    its CKA_ID). InputError (exit 2) when none or several match, or it has no CKA_ID or no
    public key; TokenError for a token failure. The flags are returned, not judged: see
    :func:`attribute_problem`."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as px

    where = f"token '{token_label}'"
    named = selector.describe()
    template: dict[Any, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if selector.key_id is not None:
        template[Attribute.ID] = selector.key_id
    if selector.label is not None:
        template[Attribute.LABEL] = selector.label
    doing = f"looking for the key with {named}"
    try:
        def search() -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
            privs = find_objects(session, template, limit=2)
            if not privs:
                raise InputError(f"No private key with {named} is on {where}.", field="key")
            if len(privs) > 1:
                raise InputError(f"Several private keys with {named} are on {where}; name "
                                 "the key by its id (pkcs11:...;id=%..).", field="key")
            priv = privs[0]
            values = read_attributes(priv, PRIVATE_READ)
            key_id = bytes(values.get("ID") or b"")
            if not key_id:
                raise InputError(f"The private key with {named} on {where} has no CKA_ID; give "
                                 "it one (pkcs11-tool --set-id) so its CSR can name it.",
                                 field="key")
            twins = find_objects(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                           Attribute.ID: key_id}, limit=2)
            if len(twins) > 1:
                raise InputError(f"Several private keys on {where} share the CKA_ID "
                                 f"{key_id.hex()}; tui-csr needs it to be unique.", field="key")
            pubs = find_objects(session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                          Attribute.ID: key_id}, limit=2)
            if len(pubs) != 1:
                have = "no" if not pubs else "more than one"
                raise InputError(f"The key {key_id.hex()} on {where} has {have} public key "
                                 "object with its CKA_ID; tui-csr reads the public key from "
                                 "it.", field="key")
            return priv, values, pubs[0], _public_values(pubs[0], values.get("KEY_TYPE"))

        _priv, values, _pub, public = settled(search)
    except px.PKCS11Error as exc:
        raise token_error(exc, doing, token_label) from exc
    label = values.get("LABEL") or ""
    flags = {name: bool(values[name]) for name in _FLAGS if name in values}
    return ExistingKey(bytes(values["ID"]), str(label), _spki(public), flags)


def destroy_certificate(session: Any, token_label: str, key_id: bytes, cert_der: bytes) -> int:
    """Destroy the certificate objects with CKA_ID ``key_id`` whose value is ``cert_der`` (a
    retired request's certificate, when its key pair lives on with its successor)."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as px

    try:
        objs = find_objects(session, {Attribute.CLASS: ObjectClass.CERTIFICATE,
                                      Attribute.ID: key_id, Attribute.VALUE: cert_der})
        for obj in objs:
            obj.destroy()
        return len(objs)
    except px.PKCS11Error as exc:
        raise token_error(exc, "removing a certificate", token_label) from exc
