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
    pem = b"-----BEGIN" in raw
    try:
        if pem:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        # The parser's own text ("ParseError { kind: ShortData { needed: 89 } }") says nothing
        # to the user: say what was expected and what the data looked like instead.
        what = ("the PEM block does not hold a certificate (a CSR or a key, or cut short?)"
                if pem else "the file is neither PEM text nor a complete DER certificate "
                "(cut short, or another kind of file?)")
        raise InputError(f"This is not an X.509 certificate: {what}.",
                         field="certificate") from exc


def parse_chain(data: bytes | str) -> list:  # -> list[cryptography.x509.Certificate]
    """The certificates after the first in PEM ``data`` (the chain pasted or saved along with
    the certificate); [] for DER or a single certificate. InputError for a block that is not
    a certificate."""
    from cryptography import x509

    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        return []
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise InputError("A PEM block after the certificate is not a certificate; give the "
                         "certificate and its chain only.", field="certificate") from exc
    return certs[1:]


def missing_sans(requested: list[tuple[str, str]], cert) -> list[str]:
    """The SANs the CSR asked for (``(kind, value)`` pairs) that ``cert`` does not carry."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        ext = None
    have: set[tuple[str, str]] = set()
    if ext is not None:
        have |= {("email", v.casefold()) for v in ext.get_values_for_type(x509.RFC822Name)}
        have |= {("dns", v.casefold()) for v in ext.get_values_for_type(x509.DNSName)}
        have |= {("ip", str(v)) for v in ext.get_values_for_type(x509.IPAddress)}
        have |= {("uri", v) for v in ext.get_values_for_type(x509.UniformResourceIdentifier)}
    out = []
    for kind, value in requested:
        key = (kind, value if kind in {"uri", "ip"} else value.casefold())
        if kind == "ip":
            import ipaddress

            key = (kind, str(ipaddress.ip_address(value)))
        if key not in have:
            out.append(f"{kind}:{value}")
    return out


def summarize_certificate(cert) -> CertSummary:  # cert: cryptography.x509.Certificate
    """Subject, issuer, serial and validity of ``cert``."""
    return CertSummary(subject=cert.subject.rfc4514_string(),
                       issuer=cert.issuer.rfc4514_string(),
                       serial=f"{cert.serial_number:X}",
                       not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)
