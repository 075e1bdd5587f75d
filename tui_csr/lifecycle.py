"""Request lifecycle use cases: view, import a certificate, orphan scans and their repair.

A mixin of :class:`tui_csr.service.CsrService`, kept apart so each file stays readable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Request, Status, utcnow
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.core.csr import CsrSummary
    from tui_csr.hsm.token import TokenKey
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.service import GenerateParams
    from tui_csr.store.repo import Store


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


@dataclass(frozen=True)
class RequestView:
    """Everything View CSR shows: the record plus what the CSR itself says (re-verified)."""

    request: Request
    csr: CsrSummary


@dataclass(frozen=True)
class OrphanReport:
    """Keys tui-csr made that have no record, and pending records whose key is gone."""

    keys_without_record: list[TokenKey]
    records_without_key: list[Request]

    @property
    def empty(self) -> bool:
        """True when token and store agree."""
        return not self.keys_without_record and not self.records_without_key


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


class LifecycleMixin:
    """View, import, orphans. Expects ``store``, ``token``, ``user`` and ``_token()``."""

    store: Store
    token: AsyncToken | None
    user: str

    def _token(self) -> AsyncToken: ...  # provided by CsrService

    async def store_tag(self) -> str: ...  # provided by CsrService

    async def get_request(self, request_id: str) -> Request: ...  # provided by CsrService

    async def view_request(self, request_id: str) -> RequestView:
        """The record and its decoded CSR, the signature verified again."""
        from tui_csr.core.csr import from_pem_or_der, summarize  # asn1crypto: only when used

        request = await self.get_request(request_id)
        return RequestView(request, summarize(from_pem_or_der(request.csr_pem)))

    async def import_certificate(self, request_id: str, data: bytes | str) -> ImportResult:
        """Import the CA's certificate for a pending request.

        The certificate's public key must equal the request's; it is stored on the token as a
        certificate object with the key's CKA_ID and label, then the request becomes issued.
        A store failure removes the certificate object again.
        """
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from tui_csr.core.csr import from_pem_or_der, summarize

        request = await self.get_request(request_id)
        if request.status is not Status.PENDING:
            raise InputError(f"Request '{request.label}' already has a certificate.",
                             field="certificate")
        cert = parse_certificate(data)
        cert_spki = cert.public_key().public_bytes(Encoding.DER,
                                                   PublicFormat.SubjectPublicKeyInfo)
        csr_spki = summarize(from_pem_or_der(request.csr_pem)).spki_der
        if cert_spki != csr_spki:
            raise InputError(f"This certificate is for another key than request "
                             f"'{request.label}'; nothing was imported.", field="certificate")
        summary = summarize_certificate(cert)
        token = self._token()
        key_id = bytes.fromhex(request.key_id)
        cert_der = cert.public_bytes(Encoding.DER)
        from asn1crypto import x509 as ax509

        parsed = ax509.Certificate.load(cert_der)
        tbs = parsed["tbs_certificate"]
        await token.store_certificate(key_id, request.label, cert_der, tbs["subject"].dump(),
                                      tbs["issuer"].dump(), tbs["serial_number"].dump())
        request.status = Status.ISSUED
        request.certificate_pem = cert.public_bytes(Encoding.PEM).decode("ascii")
        request.issued = utcnow()
        audit = AuditEntry("import-cert", self.user, request.id,
                           f"{request.label} serial {summary.serial} from {summary.issuer}")
        try:
            await asyncio.to_thread(self.store.update_request, request, audit)
        except BaseException:
            await asyncio.shield(token.destroy_certificates(key_id))
            raise
        warnings = [w for w in [summary.validity_problem] if w]
        return ImportResult(request, summary, warnings)

    async def list_certificates(self) -> list[tuple[Request, CertSummary]]:
        """Issued requests with their certificate summaries, newest first."""
        issued = await asyncio.to_thread(self.store.list_requests, Status.ISSUED)
        return [(r, summarize_certificate(parse_certificate(r.certificate_pem or "")))
                for r in issued]

    async def scan_orphans(self) -> OrphanReport:
        """Compare the token with the store: marked keys without a record, and pending records
        (of this token) whose private key is gone."""
        token = self._token()
        keys = await token.list_keys()
        records = await asyncio.to_thread(self.store.list_requests, None)
        known = {r.key_id for r in records}
        on_token = {k.key_id.hex() for k in keys if k.has_private}
        lost = [r for r in records if r.status is Status.PENDING
                and r.token_label == token.label and r.key_id not in on_token]
        tag = await self.store_tag()
        # Only keys whose marker names this store: keys of other data folders sharing the
        # token are theirs, not orphans of ours.
        stray = [k for k in keys if k.marked and k.store_tag == tag
                 and k.key_id.hex() not in known]
        return OrphanReport(stray, lost)

    async def destroy_orphan(self, key_id_hex: str) -> int:
        """Destroy a marked key pair that has no record (refused for keys with a record)."""
        key_id = _key_id(key_id_hex)
        records = await asyncio.to_thread(self.store.list_requests, None)
        if any(r.key_id == key_id.hex() for r in records):
            raise InputError(f"Key {key_id.hex()} belongs to a request; delete the request "
                             "instead.", field="key_id")
        token = self._token()
        tag = await self.store_tag()
        if not any(k.key_id == key_id and k.marked and k.store_tag == tag
                   for k in await token.list_keys()):
            raise InputError(f"Key {key_id.hex()} is not a tui-csr key on token "
                             f"'{token.label}'.", field="key_id")
        count = await token.destroy(key_id)
        await asyncio.to_thread(self.store.add_audit, AuditEntry(
            "destroy-orphan", self.user, key_id.hex(), f"{count} objects destroyed"))
        return count

    async def adopt_orphan(self, key_id_hex: str, params: GenerateParams) -> Request:
        """Make a new CSR for an orphan key (subject, SANs and groups from ``params``) and
        record it, so the key is a request again."""
        key_id = _key_id(key_id_hex)
        token = self._token()
        tag = await self.store_tag()
        match = [k for k in await token.list_keys()
                 if k.key_id == key_id and k.marked and k.store_tag == tag]
        if not match or not match[0].has_private:
            raise InputError(f"Key {key_id.hex()} is not a tui-csr key pair on token "
                             f"'{token.label}'.", field="key_id")
        spki = await token.public_key_spki(key_id)
        return await self._sign_and_record(  # type: ignore[attr-defined]
            params, key_id, match[0].label, spki, action="adopt")


def _key_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.replace(":", "").strip())
    except ValueError as exc:
        raise InputError(f"Key id '{text}' is not hexadecimal.", field="key_id") from exc
    if not value:
        raise InputError("The key id is empty.", field="key_id")
    return value

