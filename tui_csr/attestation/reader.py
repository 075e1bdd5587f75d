"""A tolerant reader for the certificates of a key attestation.

HSM vendors emit certificates that ``cryptography``'s strict DER reader refuses (Thales Luna
PKCs carry extensions with an explicitly encoded ``critical=FALSE``, ECDSA algorithm
identifiers with NULL parameters, an ECDSA ``s`` without its leading zero). asn1crypto reads
BER and keeps every value's original bytes, so signatures are checked over the bytes the
vendor signed (see :mod:`tui_csr.attestation.signatures`). Nothing here re-encodes a
certificate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from tui_csr.attestation.base import AttestationError, CertSummary

#: RFC 4514 short names, as ``cryptography`` prints them.
_SHORT = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
          "2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
          "0.9.2342.19200300.100.1.1": "UID"}
#: Largest attestation file read (a real one is a few KB).
MAX_INPUT = 1024 * 1024


@dataclass(frozen=True, eq=False)
class AttCert:
    """One certificate as read by asn1crypto, with the facts a chain check needs."""

    der: bytes
    asn1: Any  # asn1crypto.x509.Certificate

    @classmethod
    def load(cls, der: bytes, what: str = "a certificate") -> AttCert:
        """Parse ``der`` (BER tolerated); AttestationError naming ``what`` when it is not one."""
        from asn1crypto import x509 as ax

        try:
            cert = ax.Certificate.load(der)
            tbs = cert["tbs_certificate"]
            # Touch every field used later, so damage shows here and not mid-check.
            _ = (tbs["subject"].native, tbs["issuer"].native, tbs["validity"].native,
                 tbs["serial_number"].native, tbs["subject_public_key_info"].dump(),
                 cert["signature_algorithm"]["algorithm"].native,
                 cert["signature_value"].native)
            for ext in tbs["extensions"] or []:
                _ = (ext["extn_id"].dotted, ext["critical"].native, ext["extn_value"].contents)
        except (ValueError, TypeError, KeyError) as exc:
            raise AttestationError(f"{what[:1].upper()}{what[1:]} is not a readable X.509 "
                                   f"certificate ({exc}).") from exc
        return cls(der=der, asn1=cert)

    # -- names ---------------------------------------------------------------------------------
    @property
    def tbs(self) -> Any:
        return self.asn1["tbs_certificate"]

    @cached_property
    def subject(self) -> str:
        """RFC 4514 string of the subject (as ``cryptography`` writes it)."""
        return rfc4514(self.tbs["subject"]) or "(empty subject)"

    @cached_property
    def issuer(self) -> str:
        """RFC 4514 string of the issuer."""
        return rfc4514(self.tbs["issuer"]) or "(empty issuer)"

    @cached_property
    def common_name(self) -> str:
        """The subject's CN (stripped), else the whole subject: how a link is named."""
        cn = name_attribute(self.tbs["subject"], "2.5.4.3")
        return cn.strip() if cn and cn.strip() else self.subject

    def subject_matches_issuer_of(self, other: AttCert) -> bool:
        """Whether this certificate's subject is ``other``'s issuer (RFC 5280 comparison)."""
        return bool(self.tbs["subject"].hashable == other.tbs["issuer"].hashable)

    @property
    def self_issued(self) -> bool:
        return self.subject_matches_issuer_of(self)

    # -- key and validity ----------------------------------------------------------------------
    @cached_property
    def spki_der(self) -> bytes:
        """The SubjectPublicKeyInfo exactly as encoded in the certificate."""
        return bytes(self.tbs["subject_public_key_info"].dump())

    @property
    def spki_sha256(self) -> str:
        return hashlib.sha256(self.spki_der).hexdigest()

    @cached_property
    def key_description(self) -> str:
        """E.g. ``RSA 2048`` or ``EC P-256`` (``EC secp384r1`` style names mapped)."""
        return describe_spki(self.tbs["subject_public_key_info"])

    @property
    def not_before(self) -> datetime:
        return _utc(self.tbs["validity"]["not_before"].native)

    @property
    def not_after(self) -> datetime:
        return _utc(self.tbs["validity"]["not_after"].native)

    @property
    def serial(self) -> str:
        """Upper-case hex of the serial number."""
        value = int(self.tbs["serial_number"].native)
        return f"{value:X}" if value >= 0 else f"-{-value:X}"

    # -- extensions ----------------------------------------------------------------------------
    @cached_property
    def extensions(self) -> dict[str, tuple[bool, Any]]:
        """OID -> (critical, asn1crypto Extension) for every extension (the first of a repeat)."""
        out: dict[str, tuple[bool, Any]] = {}
        for ext in self.tbs["extensions"] or []:
            out.setdefault(ext["extn_id"].dotted, (bool(ext["critical"].native), ext))
        return out

    def extension_bytes(self, oid: str) -> bytes | None:
        """The extnValue OCTET STRING's content of extension ``oid``, if present."""
        found = self.extensions.get(oid)
        return bytes(found[1]["extn_value"].contents) if found else None

    @cached_property
    def ekus(self) -> tuple[str, ...]:
        """Dotted OIDs of the extendedKeyUsage extension (empty when absent or unreadable)."""
        raw = self.extension_bytes("2.5.29.37")
        if raw is None:
            return ()
        from asn1crypto import x509 as ax

        try:
            return tuple(item.dotted for item in ax.ExtKeyUsageSyntax.load(raw))
        except (ValueError, TypeError):
            return ()

    @cached_property
    def is_ca(self) -> bool | None:
        """basicConstraints cA, or None when the certificate has no basicConstraints."""
        raw = self.extension_bytes("2.5.29.19")
        if raw is None:
            return None
        from asn1crypto import x509 as ax

        try:
            return bool(ax.BasicConstraints.load(raw)["ca"].native)
        except (ValueError, TypeError):
            return None

    def summary(self, role: str = "") -> CertSummary:
        """The :class:`CertSummary` a user reads."""
        return CertSummary(subject=self.subject, issuer=self.issuer, not_before=self.not_before,
                           not_after=self.not_after, serial=self.serial, role=role)


# -- helpers -------------------------------------------------------------------------------------

def rfc4514(name: Any) -> str:
    """RFC 4514 text of an asn1crypto Name: last RDN first, short names, escaped values."""
    parts = []
    for rdn in reversed(list(name.chosen)):
        atoms = []
        for atv in rdn:
            oid = atv["type"].dotted
            atoms.append(f"{_SHORT.get(oid, oid)}={_escape(_text(atv['value']))}")
        parts.append("+".join(atoms))
    return ",".join(parts)


def name_attribute(name: Any, oid: str) -> str | None:
    """The first value of attribute ``oid`` in an asn1crypto Name, as text."""
    for rdn in name.chosen:
        for atv in rdn:
            if atv["type"].dotted == oid:
                return _text(atv["value"])
    return None


def describe_spki(spki: Any) -> str:
    """``RSA 2048``, ``EC P-256``, ``Ed25519`` ... of an asn1crypto PublicKeyInfo."""
    curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
    try:
        algo = spki.algorithm
        if algo == "rsa" or algo == "rsassa_pss":
            return f"RSA {spki.bit_size}"
        if algo == "ec":
            _kind, curve = spki.curve
            return f"EC {curves.get(str(curve), str(curve))}"
        return {"ed25519": "Ed25519", "ed448": "Ed448"}.get(algo, algo.upper())
    except (ValueError, TypeError, KeyError):
        return "unreadable key"


def _text(value: Any) -> str:
    try:
        native = value.native
    except (ValueError, TypeError):
        native = None
    if isinstance(native, str):
        return native
    if isinstance(native, bytes):
        return native.decode("utf-8", "replace")
    return "#" + bytes(value.dump()).hex()


def _escape(text: str) -> str:
    out = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in text)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- containers ----------------------------------------------------------------------------------

def unarmor_all(data: bytes) -> list[tuple[str, bytes]]:
    """Every PEM block of ``data`` as (type, DER); AttestationError on damaged PEM."""
    from asn1crypto import pem

    try:
        return [(kind, der) for kind, _headers, der in pem.unarmor(data, multiple=True)]
    except (ValueError, binascii.Error) as exc:
        raise AttestationError(f"The attestation file is damaged PEM ({exc}).") from exc


def read_pkcs7(der: bytes, what: str = "The attestation") -> list[AttCert]:
    """The certificates of a (certs-only) PKCS#7 SignedData, BER tolerated, in file order."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der)
        kind = info["content_type"].native
        if kind != "signed_data":
            raise AttestationError(f"{what} is a PKCS#7 {kind}, not SignedData.")
        choices = info["content"]["certificates"]
        raw = [bytes(c.chosen.dump()) for c in choices if c.name == "certificate"] \
            if choices else []
    except AttestationError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise AttestationError(f"{what} is not a PKCS#7 certificate chain ({exc}).") from exc
    if not raw:
        raise AttestationError(f"{what} is a PKCS#7 SignedData without certificates.")
    return [AttCert.load(item, f"certificate {n} of {what.lower()}")
            for n, item in enumerate(raw, 1)]


def decode_base64_der(value: object, what: str) -> bytes:
    """Base64 text (as in a Fortanix response) to bytes; AttestationError naming ``what``."""
    if not isinstance(value, str):
        raise AttestationError(f"The Fortanix key attestation lacks {what}.")
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise AttestationError(f"In the Fortanix key attestation, {what} is not base64 "
                               f"({exc}).") from exc


def read_csr_spki(data: bytes, what: str = "The CSR file") -> bytes:
    """The SubjectPublicKeyInfo of a PKCS#10 CSR (PEM, including ``NEW CERTIFICATE REQUEST``,
    or DER), read tolerantly: Luna's ``cmu requestcertificate`` writes NULL parameters on an
    ECDSA algorithm that ``cryptography`` refuses."""
    from asn1crypto import csr

    der = data
    if data.lstrip().startswith(b"-----BEGIN"):
        blocks = [b for k, b in unarmor_all(data.lstrip()) if k.endswith("CERTIFICATE REQUEST")]
        if len(blocks) != 1:
            raise AttestationError(f"{what} holds {len(blocks)} PEM certificate requests; "
                                   "expected one.")
        der = blocks[0]
    try:
        request = csr.CertificationRequest.load(der)
        return bytes(request["certification_request_info"]["subject_pk_info"].dump())
    except (ValueError, TypeError, KeyError) as exc:
        raise AttestationError(f"{what} is not a PKCS#10 certificate request ({exc}).") from exc
