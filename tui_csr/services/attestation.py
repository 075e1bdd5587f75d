"""Key attestation of a request (providers in :mod:`tui_csr.attestation`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry

if TYPE_CHECKING:
    from tui_csr.attestation import AttestationResult
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
