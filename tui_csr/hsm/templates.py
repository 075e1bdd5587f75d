"""Key pair templates from a token profile, and the read-back checks after generation.

python-pkcs11 fills in CKA_ENCRYPT/DECRYPT/WRAP/UNWRAP/VERIFY/SIGN/DERIVE itself from its default
capabilities (for EC keys ENCRYPT/DECRYPT=false too), which some tokens refuse (tpm2-pkcs11:
"attr mismatch"). Every capability attribute is therefore given here explicitly: its value, or
``pkcs11.constants.DEFAULT`` where the profile leaves it to the token (python-pkcs11 then sends
nothing for it). Pure: builds dicts and compares values, no PKCS#11 call.
"""

from __future__ import annotations

from typing import Any

from tui_csr.core.keyspec import KeySpec, KeyType
from tui_csr.hsm.keys import REQUIRED_PRIVATE
from tui_csr.hsm.profiles import CAPABILITIES_OFF, TokenProfile

#: Capability attributes by the key object that carries them.
_PUBLIC_CAPS = ("ENCRYPT", "WRAP")
_PRIVATE_CAPS = ("DECRYPT", "UNWRAP", "DERIVE")


def key_templates(profile: TokenProfile, spec: KeySpec, label: str, key_id: bytes, *,
                  always_authenticate: bool = False
                  ) -> tuple[dict[Any, Any], dict[Any, Any], tuple[str, ...]]:
    """(public template, private template, attribute names left to the token)."""
    from pkcs11 import Attribute
    from pkcs11.constants import DEFAULT

    left = profile.left_to_token(spec.key_type is not KeyType.RSA)  # EC and EdDSA alike
    public: dict[Any, Any] = {Attribute.TOKEN: True, Attribute.LABEL: label,
                              Attribute.ID: key_id}
    private: dict[Any, Any] = {
        Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.LABEL: label,
        Attribute.ID: key_id,
    }
    if profile.set_public_flags:
        public[Attribute.PRIVATE] = False
        public[Attribute.VERIFY] = True
    else:
        public[Attribute.VERIFY] = DEFAULT
    for name in _PUBLIC_CAPS:
        public[getattr(Attribute, name)] = DEFAULT if name in left else False
    for name in _PRIVATE_CAPS:
        private[getattr(Attribute, name)] = DEFAULT if name in left else False
    if always_authenticate:
        private[Attribute.ALWAYS_AUTHENTICATE] = True
    if spec.key_type is KeyType.RSA:
        public[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
    names = [n for n in CAPABILITIES_OFF if n in left]
    if not profile.set_public_flags:
        names += ["public PRIVATE", "public VERIFY"]
    return public, private, tuple(names)


def promise_broken(attrs: dict[str, bool]) -> list[str]:
    """The security-promise attributes the private key does not read back as required, as
    ``NAME=value`` (empty when the key is as it must be)."""
    return [f"{name}={attrs.get(name, 'missing')}" for name, want in REQUIRED_PRIVATE.items()
            if attrs.get(name) is not want]


def forced_attributes(private: dict[str, bool], public: dict[str, Any]) -> dict[str, bool]:
    """Capabilities a signing key should not have that the token gave it anyway (reported,
    not refused: tpm2-pkcs11 ties DECRYPT to SIGN on RSA keys)."""
    out = {name: True for name in _PRIVATE_CAPS if private.get(name)}
    out.update({f"public.{name}": True for name in _PUBLIC_CAPS if public.get(name)})
    return out
