"""The store protocol: what the services may ask of a store, and what each back end promises.

Two back ends implement it: :class:`tui_csr.store.repo.Store` (TinyDB, one JSON file, the
embedded default for one host) and :class:`tui_csr.store.postgres.PostgresStore` (a shared
database for teams on several hosts). The services type against :class:`RequestStore` only, and
the contract tests (tests/unit/test_store_contract.py) run the same cases against both.

Semantics every back end keeps:

- **Atomic read-modify-write.** Every method that changes something checks and writes in one
  transaction (TinyDB: the exclusive file lock; PostgreSQL: one database transaction behind a
  store-wide write lock), so two processes, on one host or several, never lose each other's
  update and never both pass a uniqueness check.
- **Audit in the same transaction.** The ``audit`` entry a method takes is written in the same
  transaction as the change it describes: both or neither. The audit log is append-only and
  hash-chained (:mod:`tui_csr.store.auditchain`).
- **Unique labels.** A request's key label is unique in the store (so also per token); ids are
  unique. Group names are unique ignoring case. Violations are :class:`InputError` naming the
  field; a missing record is :class:`NotFoundError`; a store that cannot be read or reached is
  :class:`StoreError` (one sentence naming the file or the database host).
- **Typed models** cross the boundary, never a back end's rows or documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tui_csr.core.models import IntentState, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tui_csr.core.models import AuditEntry, Group, Intent, Request
    from tui_csr.core.profiles import Profile
    from tui_csr.store.auditchain import AuditChain
    from tui_csr.store.leases import Lease


class RequestStore(Protocol):
    """Requests, groups, write-ahead intents and the audit log of one store."""

    # -- requests ---------------------------------------------------------------------------
    def add_request(self, req: Request, audit: AuditEntry | None = None, *,
                    close_intent: str | None = None, renews: str | None = None) -> None:
        """Store a new request and its audit entry in one transaction.

        ``close_intent``: the open intent of the request's key pair, closed (``RECORDED``) in
        the same transaction; StoreError when it is not open. ``renews``: the request ``req``
        renews, whose ``renewed_by`` becomes ``req.id`` in the same transaction (NotFoundError
        when it is gone, InputError when an existing request renews it already). InputError
        (``id`` / ``label``) when the id or the label is taken; nothing is written then."""
        ...

    def get_request(self, req_id: str) -> Request:
        """The request with this id, or with this unique id prefix (4+ characters).
        NotFoundError when none has it, InputError when the prefix matches several."""
        ...

    def find_request_by_label(self, label: str) -> Request | None:
        """The request whose key label is exactly ``label``, if any."""
        ...

    def list_requests(self, status: Status | None = Status.PENDING) -> list[Request]:
        """Requests with this status (default pending; ``None``: all), newest first (ties: the
        one stored last first)."""
        ...

    def update_request(self, req: Request, audit: AuditEntry | None = None) -> None:
        """Replace the stored request that has ``req.id`` (NotFoundError when gone; InputError
        when another request has ``req.label``)."""
        ...

    def remove_request(self, req_id: str, audit: AuditEntry | None = None) -> Request:
        """Delete the request with exactly this id; returns what was deleted."""
        ...

    def count_requests(self, status: Status | None = None) -> int:
        """How many requests there are (with this status, if given)."""
        ...

    # -- groups -----------------------------------------------------------------------------
    def add_group(self, group: Group, audit: AuditEntry | None = None) -> None:
        """Store a new group (name stripped; unique ignoring case)."""
        ...

    def get_group(self, name: str) -> Group:
        """The group with this name (any case); NotFoundError when there is none."""
        ...

    def list_groups(self) -> list[Group]:
        """All groups, sorted by name ignoring case."""
        ...

    def rename_group(self, old: str, new: str, audit: AuditEntry | None = None) -> Group:
        """Rename a group and every request's reference to it, in one transaction."""
        ...

    def update_group(self, name: str, *, policy: str, description: str,
                     audit: AuditEntry | None = None) -> Group:
        """Set a group's policy and description."""
        ...

    def remove_group(self, name: str, audit: AuditEntry | None = None) -> None:
        """Delete a group; InputError while any request still names it."""
        ...

    def group_usage(self) -> dict[str, tuple[int, int]]:
        """``{group name: (pending, issued)}`` for every group and every name requests use
        (retired requests are not counted)."""
        ...

    # -- request profiles (administrators' own; built-ins are never stored) ------------------
    def add_profile(self, profile: Profile, audit: AuditEntry | None = None) -> None:
        """Store a new profile (names unique ignoring case: InputError ``profile``)."""
        ...

    def get_profile(self, name: str) -> Profile:
        """The stored profile with this name (any case); NotFoundError when there is none."""
        ...

    def list_profiles(self) -> list[Profile]:
        """The stored profiles, by name."""
        ...

    def update_profile(self, profile: Profile, *, expected_version: int,
                       audit: AuditEntry | None = None) -> Profile:
        """Replace the stored profile named ``profile.name`` if its version is still
        ``expected_version`` (InputError otherwise: another administrator's edit is never lost)."""
        ...

    def remove_profile(self, name: str, audit: AuditEntry | None = None) -> None:
        """Delete a stored profile; InputError while a group's policy names it."""
        ...

    # -- audit ------------------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> None:
        """Append one audit entry (its own transaction)."""
        ...

    def list_audit(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, newest first (at most ``limit``)."""
        ...

    def audit_chain(self) -> AuditChain:
        """The whole audit log oldest first with its hash links, for
        :func:`tui_csr.store.auditchain.verify_audit_chain`."""
        ...

    # -- intents ----------------------------------------------------------------------------
    def open_intent(self, intent: Intent, audit: AuditEntry | None = None) -> None:
        """Durably record an open intent before its key pair is generated; InputError
        (``key_id``) when a request or another open intent uses one of its CKA_IDs. Intents
        closed more than 30 days ago are removed in the same transaction."""
        ...

    def open_intents(self, intents: Sequence[Intent], audit: AuditEntry | None = None) -> None:
        """:meth:`open_intent` for several intents in one durable write or transaction (a
        batch's chunk): all or none; InputError (``key_id``) also when two share a CKA_ID."""
        ...

    def set_intent_target(self, intent_id: str, key_id: str) -> Intent:
        """Record the CKA_ID (hex) the open intent's pair is about to be rewritten to. (Not
        used by generation any more: the record's write names the final id, and an orphan
        scan recognises a rewritten pair by its label; kept for callers of the store.)"""
        ...

    def close_intent(self, intent_id: str, state: IntentState,
                     audit: AuditEntry | None = None) -> Intent:
        """Close an open intent as DESTROYED or ABANDONED (idempotent in the same state);
        StoreError when another process closed it otherwise."""
        ...

    def get_intent(self, intent_id: str) -> Intent:
        """The intent with this id (NotFoundError when none)."""
        ...

    def list_intents(self, state: IntentState | None = IntentState.OPEN) -> list[Intent]:
        """Intents in this state (default open; ``None``: all), oldest first."""
        ...

    def intent_lease(self, intent_id: str) -> Lease:
        """Take the intent's lease (LeaseHeldError when someone holds it). The holder's death
        releases it: a file lock for TinyDB, a database session's advisory lock for
        PostgreSQL (seen from every host)."""
        ...

    def intent_in_progress(self, intent_id: str) -> bool:
        """True while anyone (this process included) holds the intent's lease."""
        ...

    # -- identity ---------------------------------------------------------------------------
    def acting_user(self) -> str | None:
        """Who the store authenticates as acting: the database role (PostgreSQL); None where
        the OS user acts (TinyDB)."""
        ...

    def administers(self, user: str) -> bool | None:
        """Whether the store itself says ``user`` administers groups and profiles (PostgreSQL:
        a superuser or a member of the admin role); None where the settings decide (TinyDB)."""
        ...

    def identity(self) -> str:
        """The store's id (made once, kept): tells this store's keys apart on a shared token."""
        ...

