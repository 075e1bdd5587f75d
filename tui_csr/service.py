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
from tui_csr.services.expiry import CertExpiry, Expiry
from tui_csr.services.generation import Generation, Progress
from tui_csr.services.groups import Groups
from tui_csr.services.orphans import OrphanReport, Orphans
from tui_csr.services.profiles import Profiles
from tui_csr.services.renewal import Renewal, RenewOverrides, RetireResult
from tui_csr.services.requests import Requests, RequestView

if TYPE_CHECKING:
    from datetime import datetime

    from tui_csr.attestation import AttestationResult
    from tui_csr.attestation.check import AttestationReport
    from tui_csr.core.dn import DistinguishedName
    from tui_csr.core.models import AuditEntry, Group, Request
    from tui_csr.core.p11uri import KeySelector
    from tui_csr.core.profiles import Profile
    from tui_csr.hsm.describe import TokenDescription
    from tui_csr.hsm.keys import TokenInfo, TokenKey
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.services.certificates import CertSummary, ImportResult
    from tui_csr.store.protocol import RequestStore


_PENDING = Status.PENDING


class CsrService(ServiceContext):
    """The program's use cases over one store and (optionally) one token."""

    def __init__(self, settings: Settings, store: RequestStore, token: AsyncToken | None = None,
                 user: str | None = None) -> None:
        super().__init__(settings, store, token, user)
        self.generation = Generation(self)
        self.requests = Requests(self)
        self.orphans = Orphans(self, self.generation)
        self.groups = Groups(self)
        self.profiles = Profiles(self)
        self.attestations = Attestation(self)
        self.renewal = Renewal(self, self.generation, self.requests)
        self.expiry = Expiry(self)

    @classmethod
    def create(cls, settings: Settings, user: str | None = None, *,
               unreachable_ok: bool = False) -> CsrService:
        """A service over the settings' store; the token is opened later by :meth:`open_token`.
        ``unreachable_ok`` (the TUI): a PostgreSQL store unreachable now connects on first use."""
        from tui_csr.errors import StoreError
        from tui_csr.store.select import open_store, open_store_later

        try:
            store = open_store(settings)  # TinyDB in the data folder, or PostgreSQL
        except StoreError:
            if not (unreachable_ok and settings.store):
                raise
            later = open_store_later(settings)
            return cls(settings, later, user=user or later.login_role())
        return cls(settings, store, user=user or store.acting_user())

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

    async def list_tokens(self) -> list[TokenDescription]:
        """The module's initialised tokens, none selected and no login (the TUI's picker)."""
        from tui_csr.hsm.worker import list_tokens

        self.settings.apply_module_env()
        described = await list_tokens(self.settings.module, self.settings.token_profile)
        return list(described.tokens)

    async def store_change_mark(self) -> tuple[int, ...] | None:
        """A cheap mark that changes when anyone writes the store, read off the loop: the
        TinyDB file's and its journal's change time and size (a large store appends writes
        to the journal: the file itself does not change then); PostgreSQL: the LISTEN/NOTIFY
        counter (see :meth:`PgSession.change_mark`). None when there is nothing to watch."""
        import asyncio

        from tui_csr.store.postgres import PostgresStore
        from tui_csr.store.repo import Store

        store = self.store
        if isinstance(store, PostgresStore):
            return await asyncio.to_thread(store.change_mark)
        if not isinstance(store, Store):
            return None

        def mark() -> tuple[int, ...] | None:
            from tui_csr.store.journal import journal_path_for

            try:
                st = store.path.stat()
            except OSError:
                return None
            try:
                js = journal_path_for(store.path).stat()
                journal: tuple[int, ...] = (js.st_ino, js.st_mtime_ns, js.st_size)
            except OSError:
                journal = ()
            return (st.st_mtime_ns, st.st_size, *journal)

        return await asyncio.to_thread(mark)

    async def login(self, pin: str | None) -> TokenInfo:
        """Log in to the token with ``pin`` (not kept)."""
        self.token_info = await self.require_token().login(pin)
        return self.token_info

    # -- generation --------------------------------------------------------------------------
    def validate(self, params: GenerateParams) -> ValidatedRequest:
        """Every check that needs no token (see :meth:`Generation.validate`)."""
        return self.generation.validate(params)

    async def generate(self, params: GenerateParams,
                       progress: Progress | None = None, *,
                       label_checked: bool = False) -> Request:
        """Generate a key pair and its CSR, and store the request (``label_checked``: the
        caller checked the label on the token, see :func:`tui_csr.batch.token_labels`)."""
        return await self.generation.generate(params, progress, label_checked=label_checked)

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

    async def group_misfits(self, name: str) -> list[tuple[Request, str]]:
        """Pending requests of group ``name`` that its policy (a profile) would refuse now."""
        return await self.groups.misfits(name)

    async def remove_group(self, name: str) -> None:
        """Remove an empty group (administrators only)."""
        await self.groups.remove(name)

    # -- request profiles --------------------------------------------------------------------
    async def list_profiles(self) -> list[Profile]:
        """Built-in and stored request profiles."""
        return await self.profiles.list()

    async def get_profile(self, name: str) -> Profile:
        """One request profile by name."""
        return await self.profiles.get(name)

    async def add_profile(self, profile: Profile, *, copy_of: str | None = None,
                          changes: dict | None = None) -> Profile:
        """Store a new request profile (administrators only, audited)."""
        return await self.profiles.add(profile, copy_of=copy_of, changes=changes)

    async def edit_profile(self, name: str, changes: dict) -> Profile:
        """Change a stored request profile; its version goes up (administrators only)."""
        return await self.profiles.edit(name, changes)

    async def remove_profile(self, name: str) -> None:
        """Remove a stored request profile no group uses (administrators only)."""
        await self.profiles.remove(name)

    async def policy_problem(self, policy: str) -> str | None:
        """None when a group's ``policy`` names a profile (or is empty); else why not."""
        return await self.profiles.policy_problem(policy)

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

    # -- after issuance: renew, retire, existing keys, expiry, audit (issue 16) -----------------
    async def renew(self, request_id: str, overrides: RenewOverrides | None = None, *,
                    same_key: bool = False, progress: Progress | None = None) -> Request:
        """A renewal of the request: a new key pair (or, ``same_key``, its own) and its
        subject, SANs, key spec, hash, groups and owner unless overridden; linked by
        ``renews``."""
        if same_key:
            return await self.renewal.renew_same_key(request_id, overrides)
        return await self.renewal.renew(request_id, overrides, progress)

    async def retire_request(self, request_id: str) -> RetireResult:
        """Retire a request whose renewal has its certificate (its key pair destroyed unless
        the renewal shares it; the record kept as retired)."""
        return await self.renewal.retire(request_id)

    async def match_certificate(self, data: bytes | str) -> Request:
        """The pending request whose key a certificate in ``data`` carries."""
        return await self.renewal.match_certificate(data)

    async def import_certificate_for(self, request_id: str | None, data: bytes | str, *,
                                     retire_old: bool = False
                                     ) -> tuple[ImportResult, RetireResult | None]:
        """Import a certificate and its chain (for the matching pending request when
        ``request_id`` is None), then retire the request it renews when ``retire_old``."""
        return await self.renewal.import_certificate(request_id, data, retire_old=retire_old)

    async def generate_for_key(self, selector: KeySelector, params: GenerateParams, *,
                               key_spec_given: bool = False) -> Request:
        """A CSR and record for a key pair already on the token (``generate --key``)."""
        return await self.renewal.generate_for_key(selector, params,
                                                   key_spec_given=key_spec_given)

    async def certificate_expiry(self, within_days: int | None = None) -> list[CertExpiry]:
        """Issued certificates with days until expiry, soonest first (optionally only those
        expiring within ``within_days``)."""
        return await self.expiry.certificates(within_days)

    async def audit_log(self, since: datetime | None = None) -> list[AuditEntry]:
        """The audit trail, oldest first (from ``since`` on)."""
        return await self.expiry.audit_log(since)

    async def verify_audit(self) -> tuple[str | None, int]:
        """(None or the sentence naming the first tampered audit entry; the entry count)."""
        return await self.expiry.verify_audit()

    async def record_download(self, request: Request, what: str, where: str) -> None:
        """Note a download (a CSR or certificate written out) in the audit log."""
        await self.expiry.record_download(request, what, where)

    async def export_certificate(self, request_id: str, part: str,
                                 where: str) -> tuple[Request, list]:
        """The leaf, chain or bundle of a request's certificate; the download is audited."""
        return await self.expiry.export(request_id, part, where)
