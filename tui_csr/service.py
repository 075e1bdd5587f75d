"""The one service object the CLI and the TUI call: the use cases of :mod:`tui_csr.services`
composed over one shared context (settings, store, token facade, user).

Each concern is a part with its own module and a declared dependency on the context
(:class:`~tui_csr.services.context.ServiceContext`): generation, requests, orphans, groups,
attestation. This class holds them and names their operations; it adds no behaviour of its own
beyond opening the token. It never imports Textual; the UI awaits these methods inside workers.
Store calls are file I/O, so they run off the event loop with ``asyncio.to_thread``; token calls
go through the token thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tui_csr.config import Settings
from tui_csr.core.models import Status
from tui_csr.core.rules import (  # noqa: F401 - the service's public names
    GenerateParams,
    ValidatedRequest,
    default_label,
    validate_group_name,
    validate_label,
    validate_owner,
    validate_text,
)
from tui_csr.services.attestation import Attestation
from tui_csr.services.context import ServiceContext
from tui_csr.services.generation import Generation, Progress
from tui_csr.services.groups import Groups
from tui_csr.services.orphans import OrphanReport, Orphans
from tui_csr.services.requests import Requests, RequestView
from tui_csr.store.repo import Store

if TYPE_CHECKING:
    from tui_csr.attestation import AttestationResult
    from tui_csr.attestation.check import AttestationReport
    from tui_csr.core.dn import DistinguishedName
    from tui_csr.core.models import Group, Request
    from tui_csr.hsm.keys import TokenInfo, TokenKey
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.services.certificates import CertSummary, ImportResult


_PENDING = Status.PENDING


class CsrService(ServiceContext):
    """The program's use cases over one store and (optionally) one token."""

    def __init__(self, settings: Settings, store: Store, token: AsyncToken | None = None,
                 user: str | None = None) -> None:
        super().__init__(settings, store, token, user)
        self.generation = Generation(self)
        self.requests = Requests(self)
        self.orphans = Orphans(self, self.generation)
        self.groups = Groups(self)
        self.attestations = Attestation(self)

    @classmethod
    def create(cls, settings: Settings, user: str | None = None) -> CsrService:
        """A service over the settings' store; the token is opened later by :meth:`open_token`."""
        return cls(settings, Store.open(settings.data_dir), user=user)

    # -- token -------------------------------------------------------------------------------
    async def open_token(self) -> TokenInfo:
        """Load the module and select the configured token (no login yet)."""
        from tui_csr.hsm.token import Pkcs11Token
        from tui_csr.hsm.worker import AsyncToken

        if self.token is None:
            self.settings.apply_module_env()
            self.token = AsyncToken(Pkcs11Token(self.settings.module, self.settings.token,
                                                self.settings.token_serial,
                                                profile=self.settings.token_profile))
        self.token_info = await self.token.open()
        return self.token_info

    async def login(self, pin: str | None) -> TokenInfo:
        """Log in to the token with ``pin`` (not kept)."""
        self.token_info = await self.require_token().login(pin)
        return self.token_info

    # -- generation --------------------------------------------------------------------------
    def validate(self, params: GenerateParams) -> ValidatedRequest:
        """Every check that needs no token (see :meth:`Generation.validate`)."""
        return self.generation.validate(params)

    async def generate(self, params: GenerateParams,
                       progress: Progress | None = None) -> Request:
        """Generate a key pair and its CSR, and store the request."""
        return await self.generation.generate(params, progress)

    async def spec_support(self) -> dict[str, str | None]:
        """Every key spec name -> None when the token can make it, else why not."""
        return await self.generation.spec_support()

    async def label_problem(self, label: str) -> str | None:
        """None when ``label`` is free and valid; else the reason."""
        return await self.generation.label_problem(label)

    async def suggest_label(self, dn: DistinguishedName) -> str:
        """The default label for ``dn``, unique in the store."""
        return await self.generation.suggest_label(dn)

    # -- requests ----------------------------------------------------------------------------
    async def list_requests(self, status: Status | None = _PENDING) -> list[Request]:
        """Requests in the store (pending by default; None for all), newest first."""
        return await self.requests.list_requests(status)

    async def get_request(self, request_id: str) -> Request:
        """One request by id (or unique id prefix)."""
        return await self.requests.get_request(request_id)

    async def delete_request(self, request_id: str) -> Request:
        """Destroy the request's key pair on the token, then remove the record."""
        return await self.requests.delete_request(request_id)

    async def set_groups(self, request_id: str, groups: Sequence[str],
                         owner: str | None = None, *, change_owner: bool = False) -> Request:
        """Change a request's groups (at least one) and optionally its owner."""
        return await self.requests.set_groups(request_id, groups, owner,
                                              change_owner=change_owner)

    async def view_request(self, request_id: str) -> RequestView:
        """The record and its decoded CSR, the signature verified again."""
        return await self.requests.view_request(request_id)

    async def import_certificate(self, request_id: str, data: bytes | str) -> ImportResult:
        """Import the CA's certificate for a pending request."""
        return await self.requests.import_certificate(request_id, data)

    async def list_certificates(self) -> list[tuple[Request, CertSummary]]:
        """Issued requests with their certificate summaries, newest first."""
        return await self.requests.list_certificates()

    async def token_keys(self) -> list[TokenKey]:
        """Key pairs on the token (for orphan scans and tests)."""
        return await self.requests.token_keys()

    # -- orphans -----------------------------------------------------------------------------
    async def scan_orphans(self) -> OrphanReport:
        """Keys without a record and records without a key."""
        return await self.orphans.scan()

    async def destroy_orphan(self, key_id_hex: str) -> int:
        """Destroy an orphan key pair; returns how many objects went."""
        return await self.orphans.destroy(key_id_hex)

    async def adopt_orphan(self, key_id_hex: str, params: GenerateParams) -> Request:
        """A new CSR and record for an orphan key pair."""
        return await self.orphans.adopt(key_id_hex, params)

    # -- groups ------------------------------------------------------------------------------
    async def list_groups(self) -> list[Group]:
        """All certificate groups, by name."""
        return await self.groups.list()

    async def group_usage(self) -> dict[str, tuple[int, int]]:
        """Per group: (pending requests, issued certificates)."""
        return await self.groups.usage()

    async def add_group(self, name: str, policy: str = "", description: str = "") -> Group:
        """Create a group (administrators only)."""
        return await self.groups.add(name, policy, description)

    async def rename_group(self, old: str, new: str) -> None:
        """Rename a group everywhere (administrators only)."""
        await self.groups.rename(old, new)

    async def edit_group(self, name: str, *, new_name: str | None = None, policy: str,
                         description: str) -> Group:
        """Change a group's name, policy and description (administrators only, audited)."""
        return await self.groups.edit(name, new_name=new_name, policy=policy,
                                      description=description)

    async def remove_group(self, name: str) -> None:
        """Remove an empty group (administrators only)."""
        await self.groups.remove(name)

    # -- key attestation ---------------------------------------------------------------------
    def attestation_available(self) -> str | None:
        """None when "Download key attestation" can be offered; else the reason it cannot."""
        return self.attestations.available()

    @property
    def attestation_needs_token(self) -> bool:
        """True when the configured provider reads the token (log in first)."""
        return self.attestations.needs_token

    async def attestation(self, request_id: str) -> AttestationResult:
        """The key attestation of a request, checked against its CSR's key."""
        return await self.attestations.attest(request_id)

    def attestation_available_for(self, request: Request) -> str | None:
        """Like :meth:`attestation_available` for one request (an imported one is offered)."""
        return self.attestations.available_for(request)

    async def attach_attestation(self, request_id: str, data: bytes, *,
                                 roots: tuple | None = None,
                                 extra_certs: list | None = None) -> AttestationReport:
        """Check an attestation file against the request and keep it with it (see
        :meth:`tui_csr.services.attestation.Attestation.attach`)."""
        return await self.attestations.attach(request_id, data, roots=roots,
                                              extra_certs=extra_certs)
