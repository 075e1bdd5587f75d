"""Issued certificates over time: days until expiry, the audit trail, audited downloads.

The clock is the context's ``now`` (aware UTC), which tests replace.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Request, Status
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.services.certificates import CertSummary
    from tui_csr.services.context import ServiceContext

#: What ``certs export`` can write: the leaf, the chain above it, or both (leaf first).
EXPORT_PARTS = ("leaf", "chain", "bundle")


@dataclass(frozen=True)
class CertExpiry:
    """An issued certificate with its days until expiry (negative once expired)."""

    request: Request
    certificate: CertSummary
    days_left: int
    state: str  # "expired", "expiring" (within the warning threshold) or "valid"


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days from ``now`` until ``not_after`` (9 for 9 days and 20 hours); once expired,
    minus the whole days since (-2 for 2 days and some hours ago; 0 within the first day, when
    the state says ``expired``)."""
    seconds = (not_after - now).total_seconds()
    whole = math.floor(abs(seconds) / 86400)
    return whole if seconds >= 0 else -whole


class Expiry:
    """Expiry listings, the audit log and audited certificate downloads."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _state(self, not_after: datetime, now: datetime) -> str:
        if not_after <= now:
            return "expired"
        if (not_after - now).total_seconds() <= self.ctx.settings.expiry_warning_days * 86400:
            return "expiring"
        return "valid"

    async def certificates(self, within_days: int | None = None) -> list[CertExpiry]:
        """Issued certificates (retired ones left out), soonest expiry first; with
        ``within_days``, only those whose notAfter is at most that many days from now
        (including those expired already)."""
        from tui_csr.services.certificates import parse_certificate, summarize_certificate

        if within_days is not None and within_days < 0:
            raise InputError("--expiring takes a number of days of 0 or more.",
                             field="expiring")
        issued = await asyncio.to_thread(self.ctx.store.list_requests, Status.ISSUED)
        now = self.ctx.now()
        out = []
        for request in issued:
            summary = summarize_certificate(parse_certificate(request.certificate_pem or ""))
            left = summary.not_after - now
            if within_days is not None and left.total_seconds() > within_days * 86400:
                continue
            out.append(CertExpiry(request, summary, days_left(summary.not_after, now),
                                  self._state(summary.not_after, now)))
        out.sort(key=lambda e: (e.certificate.not_after, e.request.label))
        return out

    async def audit_log(self, since: datetime | None = None) -> list[AuditEntry]:
        """Audit entries at or after ``since`` (all when None), oldest first."""
        entries = await asyncio.to_thread(self.ctx.store.list_audit)
        if since is not None:
            entries = [e for e in entries if e.at >= since]
        return list(reversed(entries))

    async def verify_audit(self) -> tuple[str | None, int]:
        """(None when the audit log's hash chain is intact, else the sentence naming the first
        entry altered, removed or moved; how many entries the log holds)."""
        from tui_csr.store.auditchain import verify_audit_chain

        chain = await asyncio.to_thread(self.ctx.store.audit_chain)
        return verify_audit_chain(chain), len(chain.links)

    async def record_download(self, request: Request, what: str, where: str) -> None:
        """Note in the audit log that ``what`` (``"CSR as DER"``) of ``request`` was written
        to ``where`` (a file, or stdout)."""
        audit = AuditEntry("download", self.ctx.user, request.id,
                           f"{what} of {request.label} to {where}")
        await asyncio.to_thread(self.ctx.store.add_audit, audit)

    async def export(self, request_id: str, part: str, where: str) -> tuple[Request, list]:
        """The certificates of ``part`` (leaf, chain, bundle) of an issued (or retired)
        request, its download recorded in the audit log (``where``: the file, or stdout)."""
        from tui_csr.services.chain import split_bundle

        if part not in EXPORT_PARTS:
            raise InputError(f"Export '{part}' is not one of {', '.join(EXPORT_PARTS)}.",
                             field="part")
        request = await asyncio.to_thread(self.ctx.store.get_request, request_id)
        if not request.certificate_pem:
            raise InputError(f"Request '{request.label}' has no certificate yet; import it "
                             "with tui-csr import-cert.", field="id")
        leaf, chain = split_bundle(request.certificate_pem)
        if part == "chain" and not chain:
            raise InputError(f"The certificate of '{request.label}' was imported without its "
                             "chain; there is no chain to export.", field="part")
        certs = {"leaf": [leaf], "chain": chain, "bundle": [leaf, *chain]}[part]
        await self.record_download(request, f"certificate {part}", where)
        return request, certs
