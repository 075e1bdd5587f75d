"""What every attestation provider returns, and the checks they share.

No Textual, no python-pkcs11 here: providers reach the token only through
:class:`~tui_csr.hsm.worker.AsyncToken` and the network only off the event loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tui_csr.errors import InputError, TuiCsrError

if TYPE_CHECKING:
    from cryptography import x509

    from tui_csr.attestation.check import AttestationReport
    from tui_csr.core.models import Request
    from tui_csr.hsm.worker import AsyncToken


class AttestationError(TuiCsrError):
    """The attestation could not be fetched, could not be read, or certifies another key."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, field="attestation", code=code)


class AttestationUnsupportedError(InputError):
    """Key attestation is not available here (exit status 2): the message says why."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, field="attestation", code=code)


@dataclass(frozen=True)
class CertSummary:
    """One certificate of an attestation chain, as a user reads it."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    serial: str  # upper-case hex
    role: str = ""  # MIC / HOC / DAC / PKC (Luna), statement / authority / root (Fortanix)

    def lines(self) -> list[str]:
        """Three lines for a terminal: role and subject, issuer, validity and serial."""
        head = f"{self.role}: " if self.role else ""
        return [f"{head}{self.subject}",
                f"    issued by {self.issuer}",
                f"    valid {_day(self.not_before)} to {_day(self.not_after)}, "
                f"serial {self.serial}"]


@dataclass(frozen=True)
class AttestationResult:
    """A key attestation, checked against the request's key, ready to be saved.

    ``data`` is the main file (DER PKCS#7 for Luna, the DSM JSON response for Fortanix);
    ``extra_files`` maps a suffix appended to the chosen file name to more content (Fortanix:
    ``".chain.pem"``). ``chain`` runs from the top of the chain down to the key's own
    certificate. ``attested_spki_der`` is the certified public key, equal to the CSR's.
    """

    provider: str  # "luna" | "fortanix" | "imported"
    format: str  # "pkcs7-der" | "fortanix-json" | "pem-certificates"
    data: bytes
    chain: list[CertSummary]
    attested_spki_der: bytes
    request_id: str
    key_label: str
    description: str  # e.g. "Thales Luna Public Key Confirmation (PKCS#7)"
    object_id: str | None = None  # CKA_OUID (Luna/DPoD) or kid (Fortanix), when known
    extra_files: dict[str, bytes] = field(default_factory=dict)
    #: The facts and checks of :func:`tui_csr.attestation.check.check_attestation`.
    report: AttestationReport | None = None

    @property
    def default_suffix(self) -> str:
        """File name extension for the main file: ``.p7b``, ``.json`` or ``.pem``."""
        return {"fortanix-json": ".json", "pem-certificates": ".pem"}.get(self.format, ".p7b")

    @property
    def key_fingerprint(self) -> str:
        """SHA-256 of the attested SubjectPublicKeyInfo, colon-separated hex."""
        return _hex(hashlib.sha256(self.attested_spki_der).digest())

    def files(self, path: Path) -> list[tuple[Path, bytes]]:
        """Every file to write when the user picks ``path`` for the main file.

        A Luna PKCS#7 is written as PEM when the name ends in ``.pem``, else as DER.
        """
        main = self.data
        if self.format == "pkcs7-der" and path.suffix.lower() == ".pem":
            from asn1crypto import pem

            main = pem.armor("PKCS7", self.data)
        out = [(path, main)]
        out += [(path.with_name(path.name + suffix), data)
                for suffix, data in self.extra_files.items()]
        return out

    def summary_lines(self) -> list[str]:
        """What the CLI prints to stderr (and a dialog can show): the chain and the key check."""
        ident = f" (object {self.object_id})" if self.object_id else ""
        lines = [f"{self.description} for '{self.key_label}'{ident}, "
                 f"{len(self.chain)} certificate{'s' if len(self.chain) != 1 else ''}:"]
        for cert in self.chain:
            lines += ["  " + line for line in cert.lines()]
        if self.report is not None:  # the HSM / key origin facts, then the chain's checks
            lines += [line for line in self.report.fact_lines()[1:]
                      if line.startswith(("HSM:", "Key origin:"))]
            lines += [line for line in self.report.check_lines() if " key: " not in line]
        lines.append(f"The attested public key matches the CSR (SHA-256 {self.key_fingerprint}).")
        return lines


class AttestationProvider(Protocol):
    """One vendor's way to fetch a key attestation for a stored request."""

    name: str
    #: Whether :meth:`attest` needs the logged-in token (Luna) or only the network (Fortanix).
    needs_token: bool

    async def attest(self, request: Request, token: AsyncToken | None) -> AttestationResult:
        """Fetch the attestation of ``request``'s key and check it certifies that key."""
        ...


# -- shared helpers ------------------------------------------------------------------------------

def normalized_spki(cert_or_csr: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    """SubjectPublicKeyInfo DER re-encoded by ``cryptography``, so two encodings of one key
    compare equal."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return cert_or_csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def request_spki(request: Request) -> bytes:
    """The public key (SPKI DER) of the request's CSR."""
    from cryptography import x509

    return normalized_spki(x509.load_pem_x509_csr(request.csr_pem.encode()))


def check_same_spki(attested_spki: bytes, request: Request, what: str) -> bytes:
    """``attested_spki`` when it is the CSR's key (both DER-normalised); else
    :class:`AttestationError`. ``what`` names the certificate."""
    from tui_csr.attestation.roots import spki_hash

    want = request_spki(request)
    if spki_hash(attested_spki) != spki_hash(want):
        raise AttestationError(
            f"{what} certifies a different public key than the CSR of '{request.label}' "
            f"(attested SHA-256 {_short(attested_spki)}, CSR SHA-256 {_short(want)}); "
            "nothing was saved.")
    return want


def _short(spki: bytes) -> str:
    return hashlib.sha256(spki).hexdigest()[:16]


def _hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")
