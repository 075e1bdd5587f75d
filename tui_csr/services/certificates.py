"""Certificates issued for requests: parsing, summaries, import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tui_csr.core.models import Request
from tui_csr.errors import InputError


@dataclass(frozen=True)
class CertSummary:
    """What an imported certificate says, for the Certificates tab and the import notice."""

    subject: str
    issuer: str
    serial: str  # hex
    not_before: datetime
    not_after: datetime

    @property
    def validity_problem(self) -> str | None:
        """None while valid now; else a warning sentence (expired / not yet valid)."""
        now = datetime.now(UTC)
        if now > self.not_after:
            return f"The certificate expired on {self.not_after:%Y-%m-%d %H:%M} UTC."
        if now < self.not_before:
            return f"The certificate is not valid before {self.not_before:%Y-%m-%d %H:%M} UTC."
        return None


@dataclass(frozen=True)
class ImportResult:
    """A certificate imported for a request."""

    request: Request
    certificate: CertSummary
    warnings: list[str] = field(default_factory=list)


def parse_certificate(data: bytes | str):  # -> cryptography.x509.Certificate
    """A certificate from PEM or DER; InputError when it is neither."""
    from cryptography import x509

    raw = data.encode() if isinstance(data, str) else data
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise InputError(f"This is not an X.509 certificate in PEM or DER form ({exc}).",
                         field="certificate") from exc


def summarize_certificate(cert) -> CertSummary:  # cert: cryptography.x509.Certificate
    """Subject, issuer, serial and validity of ``cert``."""
    return CertSummary(subject=cert.subject.rfc4514_string(),
                       issuer=cert.issuer.rfc4514_string(),
                       serial=f"{cert.serial_number:X}",
                       not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)
