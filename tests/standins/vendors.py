"""Stand-ins for AWS CloudHSM, YubiHSM 2 and Thales Luna over a real SoftHSM session.

Each is a :class:`Pkcs11Token` subclass whose library, token, session and key objects are thin
wrappers around python-pkcs11's real ones. A wrapper refuses what the vendor's documentation
says its module refuses, with the CKR code the vendor documents, and passes everything else to
SoftHSM unchanged:

- CloudHSM (Client SDK 5): no CKO_DATA objects (CKR_TEMPLATE_INCONSISTENT); certificate objects
  only where certificate storage is enabled (``certificates=True``); CKA_ID is not among the
  attributes that may be modified after creation (CKR_ATTRIBUTE_READ_ONLY); no multi-part
  sign (CKR_FUNCTION_NOT_SUPPORTED).
- YubiHSM 2: CKA_ID is the 16-bit object id (other lengths: CKR_ATTRIBUTE_VALUE_INVALID),
  labels of at most 40 bytes (CKR_ATTRIBUTE_VALUE_INVALID), objects immutable after creation
  (CKR_ATTRIBUTE_READ_ONLY), the PIN is the authentication key's id in 4 hex digits followed by
  its password (``0001password``; anything else: CKR_PIN_INCORRECT).
- Luna: combined ECDSA_SHA256/384/512 listed and served (the stand-in hashes, then SoftHSM
  signs with CKM_ECDSA: what the combined mechanism does inside a Luna).

The library and token strings are what profile selection reads; they follow the vendors'
naming, not a captured module, and are marked as such.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import exceptions as px

from tui_csr.hsm.token import Pkcs11Token


class Rules:
    """What one vendor refuses; the default refuses nothing."""

    library = ("SoftHSM", "Implementation of PKCS11")
    token = ("SoftHSM project", "SoftHSM v2")

    def create_object(self, attrs: dict[Any, Any]) -> None:
        """Raise for an object the vendor cannot create."""

    def key_template(self, template: dict[Any, Any]) -> None:
        """Raise for a key template the vendor refuses."""

    def set_attribute(self, key: Any) -> None:
        """Raise for an attribute the vendor will not change after creation."""

    def sign(self, data: Any) -> None:
        """Raise for a sign call the vendor does not support."""

    def pin(self, pin: str | None) -> str | None:
        """The PIN SoftHSM gets for the one the user typed (or raise)."""
        return pin

    def mechanisms(self, real: set[Any]) -> set[Any]:
        """The mechanism list the vendor's slot shows."""
        return real

    def attribute_values(self, values: dict[Any, Any]) -> dict[Any, Any]:
        """What the vendor answers to a bulk attribute read."""
        return values

    def destroy(self) -> None:
        """Raise when the vendor fails to destroy an object."""


class CloudHSM(Rules):
    """AWS CloudHSM (Client SDK 5), from its PKCS#11 documentation."""

    # Not captured from the module: names as AWS uses them, for profile selection.
    library = ("Amazon Web Services", "AWS CloudHSM PKCS#11 library")
    token = ("Marvell Semiconductor, Inc.", "CloudHSM")

    def __init__(self, certificates: bool = False) -> None:
        self.certificates = certificates

    def create_object(self, attrs: dict[Any, Any]) -> None:
        cls = attrs.get(Attribute.CLASS)
        if cls == ObjectClass.DATA:
            raise px.TemplateInconsistent()
        if cls == ObjectClass.CERTIFICATE and not self.certificates:
            raise px.TemplateInconsistent()

    def set_attribute(self, key: Any) -> None:
        modifiable = {Attribute.LABEL, Attribute.TOKEN, Attribute.ENCRYPT, Attribute.DECRYPT,
                      Attribute.SIGN, Attribute.VERIFY, Attribute.WRAP, Attribute.UNWRAP,
                      Attribute.SENSITIVE, Attribute.DERIVE, Attribute.TRUSTED,
                      Attribute.WRAP_WITH_TRUSTED}
        if key not in modifiable:
            raise px.AttributeReadOnly()

    def sign(self, data: Any) -> None:
        if not isinstance(data, bytes | bytearray):
            raise px.FunctionNotSupported()  # multi-part sign


class YubiHSM2(Rules):
    """YubiHSM 2 (yubihsm_pkcs11.so), from its PKCS#11 documentation."""

    library = ("Yubico (www.yubico.com)", "YubiHSM PKCS#11 Library")
    token = ("Yubico (www.yubico.com)", "YubiHSM")
    _PIN = re.compile(r"^[0-9a-fA-F]{4}(.+)$", re.S)

    def create_object(self, attrs: dict[Any, Any]) -> None:
        self._id_and_label(attrs)

    def key_template(self, template: dict[Any, Any]) -> None:
        self._id_and_label(template)

    def _id_and_label(self, attrs: dict[Any, Any]) -> None:
        key_id = attrs.get(Attribute.ID)
        if key_id is not None and len(key_id) != 2:
            raise px.AttributeValueInvalid()
        label = attrs.get(Attribute.LABEL)
        if label is not None and len(str(label).encode()) > 40:
            raise px.AttributeValueInvalid()

    def set_attribute(self, key: Any) -> None:
        raise px.AttributeReadOnly()  # objects are immutable

    def pin(self, pin: str | None) -> str | None:
        match = self._PIN.match(pin or "")
        if match is None:
            raise px.PinIncorrect()
        return match.group(1)


class Luna(Rules):
    """Thales Luna: lists (and serves) the combined ECDSA_SHA* mechanisms."""

    library = ("SafeNet", "Chrystoki")
    token = ("Safenet, Inc.", "LunaSA 7")
    COMBINED = {Mechanism.ECDSA_SHA256: "sha256", Mechanism.ECDSA_SHA384: "sha384",
                Mechanism.ECDSA_SHA512: "sha512"}

    def __init__(self) -> None:
        self.combined_used: list[str] = []

    def mechanisms(self, real: set[Any]) -> set[Any]:
        return real | set(self.COMBINED)


class _Wrapped:
    def __init__(self, real: Any, rules: Rules) -> None:
        self._real = real
        self._rules = rules

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Object(_Wrapped):
    """A key or other object: attribute changes and signing pass the vendor's rules."""

    def __getitem__(self, key: Any) -> Any:
        return self._real[key]

    def get_attributes(self, keys: Any) -> dict[Any, Any]:
        return self._rules.attribute_values(self._real.get_attributes(keys))

    def destroy(self) -> None:
        self._rules.destroy()
        self._real.destroy()

    def __setitem__(self, key: Any, value: Any) -> None:
        self._rules.set_attribute(key)
        self._real[key] = value

    def sign(self, data: Any, **kwargs: Any) -> Any:
        self._rules.sign(data)
        mech = kwargs.get("mechanism")
        if isinstance(self._rules, Luna) and mech in Luna.COMBINED:
            self._rules.combined_used.append(mech.name)
            digest = hashlib.new(Luna.COMBINED[mech], data).digest()
            return self._real.sign(digest, **{**kwargs, "mechanism": Mechanism.ECDSA})
        return self._real.sign(data, **kwargs)


def _wrap_all(objs: Iterable[Any], rules: Rules) -> list[_Object]:
    return [_Object(o, rules) for o in objs]


class _Params(_Wrapped):
    def generate_keypair(self, **kwargs: Any) -> tuple[_Object, _Object]:
        for key in ("public_template", "private_template"):
            self._rules.key_template(kwargs.get(key) or {})
        pub, priv = self._real.generate_keypair(**kwargs)
        return _Object(pub, self._rules), _Object(priv, self._rules)


class _Session(_Wrapped):
    def get_objects(self, attrs: dict[Any, Any] | None = None) -> Any:
        return iter(_wrap_all(self._real.get_objects(attrs or {}), self._rules))

    def create_object(self, attrs: dict[Any, Any]) -> Any:
        self._rules.create_object(attrs)
        return _Object(self._real.create_object(attrs), self._rules)

    def create_domain_parameters(self, *args: Any, **kwargs: Any) -> _Params:
        return _Params(self._real.create_domain_parameters(*args, **kwargs), self._rules)

    def generate_keypair(self, *args: Any, **kwargs: Any) -> tuple[_Object, _Object]:
        for key in ("public_template", "private_template"):
            self._rules.key_template(kwargs.get(key) or {})
        pub, priv = self._real.generate_keypair(*args, **kwargs)
        return _Object(pub, self._rules), _Object(priv, self._rules)


class _Slot(_Wrapped):
    def get_token(self) -> _Token:
        return _Token(self._real.get_token(), self._rules)

    def get_mechanisms(self) -> set[Any]:
        return self._rules.mechanisms(set(self._real.get_mechanisms()))

    def get_mechanism_info(self, mech: Any) -> Any:
        if mech in Luna.COMBINED and isinstance(self._rules, Luna):
            return self._real.get_mechanism_info(Mechanism.ECDSA)
        return self._real.get_mechanism_info(mech)


class _Token(_Wrapped):
    @property
    def slot(self) -> _Slot:
        return _Slot(self._real.slot, self._rules)

    @property
    def manufacturer_id(self) -> str:
        return self._rules.token[0]

    @property
    def model(self) -> str:
        return self._rules.token[1]

    def open(self, *, user_pin: Any = None, **kwargs: Any) -> _Session:
        if isinstance(user_pin, str):
            user_pin = self._rules.pin(user_pin)
        return _Session(self._real.open(user_pin=user_pin, **kwargs), self._rules)


class _Lib(_Wrapped):
    @property
    def manufacturer_id(self) -> str:
        return self._rules.library[0]

    @property
    def library_description(self) -> str:
        return self._rules.library[1]

    def get_slots(self, *args: Any, **kwargs: Any) -> list[_Slot]:
        return [_Slot(s, self._rules) for s in self._real.get_slots(*args, **kwargs)]


class VendorToken(Pkcs11Token):
    """The real Pkcs11Token over the wrapped module: ``rules`` decides what is refused."""

    def __init__(self, module: str, label: str, rules: Rules,
                 profile: str | None = None) -> None:
        super().__init__(module, label, profile=profile)
        self.rules = rules

    def load(self) -> Any:
        lib = super().load()
        if not isinstance(lib, _Lib):
            self._lib = lib = _Lib(lib, self.rules)
        return lib
