"""Requested X.509 extensions for a CSR's extensionRequest: keyUsage, extendedKeyUsage,
basicConstraints and subjectKeyIdentifier (the SAN lives in :mod:`tui_csr.core.san`).

Names are spelled as RFC 5280 and openssl spell them (``digitalSignature``, ``serverAuth``);
an extended key usage may also be a dotted OID. Parsing is case-insensitive and gives the
canonical spelling. The DER is written here by hand, as the rest of the request is (see
:mod:`tui_csr.core.csr`): asn1crypto only parses it. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_csr.core.der import oid_der, tlv  # noqa: F401 - also imported from here
from tui_csr.errors import InputError

#: keyUsage bits in bit order (RFC 5280 4.2.1.3).
KEY_USAGES: tuple[str, ...] = (
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
    "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")
_KU_ALIASES = {name.casefold(): name for name in KEY_USAGES}
_KU_ALIASES["contentcommitment"] = "nonRepudiation"  # the X.509 (2008) name of bit 1

#: extendedKeyUsage purposes (RFC 5280 4.2.1.12; openssl's short names).
EKU_OIDS: dict[str, str] = {
    "serverAuth": "1.3.6.1.5.5.7.3.1", "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3", "emailProtection": "1.3.6.1.5.5.7.3.4",
    "timeStamping": "1.3.6.1.5.5.7.3.8", "OCSPSigning": "1.3.6.1.5.5.7.3.9",
    "anyExtendedKeyUsage": "2.5.29.37.0",
}
_EKU_ALIASES = {name.casefold(): name for name in EKU_OIDS}
_EKU_BY_OID = {oid: name for name, oid in EKU_OIDS.items()}

#: Key usages a key of each family can carry (RFC 5480 3, RFC 8410 5, RFC 4055 1.2).
USAGES_FOR_KEY: dict[str, frozenset[str]] = {
    "RSA": frozenset(KEY_USAGES) - {"keyAgreement", "encipherOnly", "decipherOnly"},
    "EC": frozenset(KEY_USAGES) - {"keyEncipherment", "dataEncipherment"},
    "EdDSA": frozenset({"digitalSignature", "nonRepudiation", "keyCertSign", "cRLSign"}),
}

#: The largest pathLenConstraint accepted (a sanity bound, not a standard one).
PATH_LEN_MAX = 255

_OID_RE = re.compile(r"^[0-2]\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+$")


def _items(value: str | Iterable[str] | None) -> list[str]:
    """Comma-separated text or a list of names, as stripped non-empty items."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in
                                                            str(v).split(",")]
    return [p.strip() for p in parts if p.strip()]


def parse_key_usage(value: str | Iterable[str] | None, field_name: str = "key_usage"
                    ) -> tuple[str, ...]:
    """The key usages named in ``value``, canonical and in bit order; ``none`` gives ()."""
    items = _items(value)
    if [i.casefold() for i in items] == ["none"]:
        return ()
    out: set[str] = set()
    for item in items:
        name = _KU_ALIASES.get(item.casefold())
        if name is None:
            raise InputError(f"Key usage '{item}' is not known; use {', '.join(KEY_USAGES)}.",
                             field=field_name)
        if name in out:
            raise InputError(f"Key usage {name} is given twice.", field=field_name)
        out.add(name)
    return tuple(n for n in KEY_USAGES if n in out)


def parse_eku(value: str | Iterable[str] | None, field_name: str = "eku") -> tuple[str, ...]:
    """The extended key usages in ``value``, in the order given: known purposes by their
    name (a dotted OID of a known one becomes its name), others as dotted OIDs."""
    items = _items(value)
    if [i.casefold() for i in items] == ["none"]:
        return ()
    out: list[str] = []
    for item in items:
        name = _EKU_ALIASES.get(item.casefold())
        if name is None and _OID_RE.match(item):
            name = _EKU_BY_OID.get(item, item)
        if name is None:
            raise InputError(f"Extended key usage '{item}' is neither a known purpose "
                             f"({', '.join(EKU_OIDS)}) nor a dotted OID.", field=field_name)
        if name in out:
            raise InputError(f"Extended key usage {name} is given twice.", field=field_name)
        out.append(name)
    return tuple(out)


def eku_oid(name: str) -> str:
    """The dotted OID of an extended key usage (a name from :data:`EKU_OIDS` or an OID)."""
    return EKU_OIDS.get(name, name)


def check_path_len(value: int | str | None) -> int | None:
    """A pathLenConstraint: None, or an integer 0..255."""
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InputError(f"The path length '{value}' is not a whole number.",
                         field="path_len") from None
    if not 0 <= n <= PATH_LEN_MAX:
        raise InputError(f"The path length {n} is out of range; use 0 to {PATH_LEN_MAX}.",
                         field="path_len")
    return n


@dataclass(frozen=True)
class RequestedExtensions:
    """What the CSR asks the CA to put into the certificate, besides the SANs.

    ``ca``: None for no basicConstraints, True/False for ``CA:TRUE``/``CA:FALSE`` (critical).
    """

    key_usage: tuple[str, ...] = ()
    eku: tuple[str, ...] = ()
    ca: bool | None = None
    path_len: int | None = None
    ski: bool = False

    def __post_init__(self) -> None:
        if self.path_len is not None and self.ca is not True:
            raise InputError("A path length applies to a CA request only (basicConstraints "
                             "CA:TRUE).", field="path_len")
        if self.ca is not True and "keyCertSign" in self.key_usage:
            raise InputError("Key usage keyCertSign needs a CA request: RFC 5280 "
                             "allows it only with basicConstraints CA:TRUE.", field="key_usage")
        if {"encipherOnly", "decipherOnly"} & set(self.key_usage) and (
                "keyAgreement" not in self.key_usage):
            raise InputError("Key usages encipherOnly and decipherOnly need keyAgreement.",
                             field="key_usage")

    @property
    def empty(self) -> bool:
        """True when nothing is requested."""
        return not (self.key_usage or self.eku or self.ca is not None or self.ski)

    def check_key(self, family: str, spec_name: str) -> None:
        """Refuse key usages a key of ``family`` (``RSA``, ``EC``, ``EdDSA``) cannot carry."""
        allowed = USAGES_FOR_KEY.get(family, frozenset(KEY_USAGES))
        bad = [u for u in self.key_usage if u not in allowed]
        if bad:
            raise InputError(f"Key usage {', '.join(bad)} does not apply to {spec_name} keys; "
                             f"they allow {', '.join(u for u in KEY_USAGES if u in allowed)}.",
                             field="key_usage")

    def to_doc(self) -> dict[str, Any]:
        """JSON-able form (the request record, ``show --json``)."""
        return {"key_usage": list(self.key_usage), "extended_key_usage": list(self.eku),
                "basic_constraints": None if self.ca is None else {
                    "ca": self.ca, "path_len": self.path_len},
                "subject_key_identifier": self.ski}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> RequestedExtensions:
        """Parse :meth:`to_doc`'s form (None: nothing requested)."""
        if not doc:
            return cls()
        bc = doc.get("basic_constraints")
        return cls(tuple(doc.get("key_usage") or ()), tuple(doc.get("extended_key_usage") or ()),
                   None if bc is None else bool(bc.get("ca")),
                   None if bc is None else bc.get("path_len"),
                   bool(doc.get("subject_key_identifier")))


# -- DER --------------------------------------------------------------------------------------



def extension_der(oid: str, value_der: bytes, critical: bool = False) -> bytes:
    """One Extension: extnID, critical (only when TRUE: DEFAULT FALSE), extnValue."""
    return tlv(0x30, oid_der(oid) + (b"\x01\x01\xff" if critical else b"")
               + tlv(0x04, value_der))


def key_usage_value(usages: Sequence[str]) -> bytes:
    """DER of the KeyUsage BIT STRING (named bits: trailing zero bits removed, RFC 5280 / X.690
    11.2.2)."""
    bits = 0
    top = -1
    for name in usages:
        i = KEY_USAGES.index(name)
        bits |= 1 << i
        top = max(top, i)
    if top < 0:
        return b"\x03\x01\x00"
    nbytes = top // 8 + 1
    unused = nbytes * 8 - (top + 1)
    value = bytearray(nbytes)
    for i in range(top + 1):
        if bits >> i & 1:
            value[i // 8] |= 0x80 >> (i % 8)
    return tlv(0x03, bytes([unused]) + bytes(value))


def eku_value(purposes: Sequence[str]) -> bytes:
    """DER of ExtKeyUsageSyntax."""
    return tlv(0x30, b"".join(oid_der(eku_oid(p)) for p in purposes))


def basic_constraints_value(ca: bool, path_len: int | None) -> bytes:
    """DER of BasicConstraints (cA omitted when FALSE: DEFAULT FALSE)."""
    body = b"\x01\x01\xff" if ca else b""
    if ca and path_len is not None:
        n = path_len.to_bytes(max(1, (path_len.bit_length() + 8) // 8), "big")
        body += tlv(0x02, n)
    return tlv(0x30, body)


def subject_key_identifier(spki_der: bytes) -> bytes:
    """RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value."""
    from asn1crypto import keys

    bits = keys.PublicKeyInfo.load(spki_der)["public_key"].contents[1:]
    return hashlib.sha1(bits).digest()


def extensions_der(ext: RequestedExtensions, spki_der: bytes) -> list[bytes]:
    """The DER Extension elements for ``ext``, in a fixed order (BC, KU, EKU, SKI)."""
    out: list[bytes] = []
    if ext.ca is not None:
        out.append(extension_der("2.5.29.19", basic_constraints_value(ext.ca, ext.path_len),
                                 critical=True))
    if ext.key_usage:
        out.append(extension_der("2.5.29.15", key_usage_value(ext.key_usage), critical=True))
    if ext.eku:
        out.append(extension_der("2.5.29.37", eku_value(ext.eku)))
    if ext.ski:
        out.append(extension_der("2.5.29.14", tlv(0x04, subject_key_identifier(spki_der))))
    return out


@dataclass(frozen=True)
class ExtensionView:
    """One extension as a CSR carries it, decoded (View CSR, ``show --text``)."""

    name: str
    critical: bool
    values: list[str] = field(default_factory=list)


def read_extensions(exts: Any) -> list[ExtensionView]:
    """Decode the requested extensions (an asn1crypto ``Extensions``) other than the SAN."""
    out: list[ExtensionView] = []
    for ext in exts:
        oid = ext["extn_id"].dotted
        critical = bool(ext["critical"].native)
        parsed = ext["extn_value"].parsed
        if oid == "2.5.29.17":
            continue
        if oid == "2.5.29.15":
            bits = parsed.native  # set of asn1crypto names
            names = {"digital_signature": "digitalSignature",
                     "non_repudiation": "nonRepudiation",
                     "key_encipherment": "keyEncipherment",
                     "data_encipherment": "dataEncipherment", "key_agreement": "keyAgreement",
                     "key_cert_sign": "keyCertSign", "crl_sign": "cRLSign",
                     "encipher_only": "encipherOnly", "decipher_only": "decipherOnly"}
            out.append(ExtensionView("keyUsage", critical,
                                     [n for k, n in names.items() if k in bits]))
        elif oid == "2.5.29.37":
            out.append(ExtensionView("extendedKeyUsage", critical,
                                     [_EKU_BY_OID.get(p.dotted, p.dotted) for p in parsed]))
        elif oid == "2.5.29.19":
            ca = bool(parsed["ca"].native)
            values = [f"CA:{'TRUE' if ca else 'FALSE'}"]
            if parsed["path_len_constraint"].native is not None:
                values.append(f"pathlen:{parsed['path_len_constraint'].native}")
            out.append(ExtensionView("basicConstraints", critical, values))
        elif oid == "2.5.29.14":
            out.append(ExtensionView("subjectKeyIdentifier", critical,
                                     [parsed.native.hex(":").upper()]))
        else:
            out.append(ExtensionView(oid, critical, [ext["extn_value"].contents.hex()]))
    return out
