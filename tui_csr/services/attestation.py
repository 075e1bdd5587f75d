"""Key attestation of a request (providers in :mod:`tui_csr.attestation`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry

if TYPE_CHECKING:
    from tui_csr.attestation import AttestationResult
    from tui_csr.attestation.check import AttestationReport
    from tui_csr.attestation.reader import AttCert
    from tui_csr.attestation.roots import PinnedRoot
    from tui_csr.core.models import Request
    from tui_csr.services.context import ServiceContext


class Attestation:
    """Fetch and check a request's key attestation."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def available(self) -> str | None:
        """None when "Download key attestation" can be offered; else the reason it cannot
        (cheap: no token or network call)."""
        from tui_csr.attestation import attestation_support

        return attestation_support(self.ctx.settings, self.ctx.token_info)

    def available_for(self, request: Request) -> str | None:
        """Like :meth:`available`, for one request: one with an imported attestation always
        offers it."""
        return None if request.attestation else self.available()

    @property
    def needs_token(self) -> bool:
        """True when the configured provider reads the token (log in first), False when it
        only uses the network (Fortanix DSM)."""
        return self.ctx.settings.attestation == "luna"

    async def attest(self, request_id: str) -> AttestationResult:
        """The key attestation of a request, checked against its CSR's key. Nothing is written:
        save it with :func:`tui_csr.attestation.save_attestation`."""
        from tui_csr.attestation import AttestationUnsupportedError, make_provider

        request = await asyncio.to_thread(self.ctx.store.get_request, request_id)
        if request.attestation:  # imported: what the admin checked, no token or network
            from tui_csr.attestation.imported import imported_result

            result = await asyncio.to_thread(imported_result, request)
        else:
            reason = self.available()
            if reason:
                raise AttestationUnsupportedError(reason)
            provider = make_provider(self.ctx.settings)
            token = self.ctx.require_token() if provider.needs_token else self.ctx.token
            result = await provider.attest(request, token)
        audit = AuditEntry("attestation", self.ctx.user, request.id,
                           f"{request.label} {result.provider} SHA-256 {result.key_fingerprint}")
        await asyncio.to_thread(self.ctx.store.add_audit, audit)
        return result

    async def attach(self, request_id: str, data: bytes, *,
                     roots: tuple[PinnedRoot, ...] | None = None,
                     extra_certs: list[AttCert] | None = None) -> AttestationReport:
        """Check an attestation file against the request's CSR key and, when every check
        passes, keep it with the request. AttestationError (nothing stored) otherwise."""
        import dataclasses

        from tui_csr.attestation.imported import check_for_request, failure_error
        from tui_csr.attestation.roots import PINNED_ROOTS

        request = await asyncio.to_thread(self.ctx.store.get_request, request_id)
        report, stored = await asyncio.to_thread(
            check_for_request, request, data, roots=roots or PINNED_ROOTS,
            extra_certs=extra_certs)
        if not report.ok:
            raise failure_error(report)
        audit = AuditEntry("attestation-import", self.ctx.user, request.id,
                           f"{request.label} {report.facts.vendor} verified to "
                           f"{report.root.name if report.root else '?'}")
        await asyncio.to_thread(self.ctx.store.update_request,
                                dataclasses.replace(request, attestation=stored), audit)
        return report
