"""The PostgreSQL store: :class:`~tui_csr.store.protocol.RequestStore` over a shared database,
for a team of administrators on several hosts (psycopg 3).

Semantics are those of the TinyDB store, kept by the database:

- every read-modify-write is one transaction behind the store-wide write lock (see
  :mod:`tui_csr.store.pg_session`): no lost update between hosts;
- unique ids and labels are also database constraints (a ``psql`` session cannot break them);
- audit entries are appended by ``tui_csr.append_audit()`` in the same transaction as their
  change, hash-chained (see :mod:`tui_csr.store.pg_schema` for the roles and grants);
- an intent's lease is a session advisory lock, seen (and released on death) across hosts.

The acting user is the database role (``current_user``); administrators are superusers and
members of the configured admin role, and the database's grants refuse group and profile changes
from anyone else. Profiles live in :mod:`tui_csr.store.pg_profiles`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tui_csr.core.models import AuditEntry, Group, Intent, IntentState, Request, Status, utcnow
from tui_csr.errors import InputError, NotFoundError, StoreError
from tui_csr.store import leases, pg_profiles, refusals
from tui_csr.store.auditchain import AuditChain, AuditLink
from tui_csr.store.pg_session import AdvisoryLease, PgSession, _fold, _plural, lease_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from tui_csr.core.profiles import Profile

MIN_ID_PREFIX = 4
INTENTS_KEPT = timedelta(days=30)
"""How long a closed intent stays in the store (as in the TinyDB store)."""
_ID_RE = re.compile(r"^[0-9a-f]{8,64}$")


def _parse_time(text: object) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class PostgresStore(PgSession):
    """Requests, groups, intents, profiles and the audit log in a PostgreSQL database."""

    @staticmethod
    def _request_row(req: Request) -> tuple[Any, ...]:
        from psycopg.types.json import Jsonb

        return (req.id, req.label, req.token_label, req.key_id, req.status.value, req.created,
                [_fold(g) for g in req.groups], Jsonb(req.to_doc()))

    # -- requests ---------------------------------------------------------------------------

    def add_request(self, req: Request, audit: AuditEntry | None = None, *,
                    close_intent: str | None = None, renews: str | None = None) -> None:
        """See :meth:`RequestStore.add_request`."""
        from psycopg.types.json import Jsonb

        with self._writing() as cur:
            source = None
            if renews is not None:
                cur.execute("SELECT doc FROM tui_csr.requests WHERE id = %s", (renews,))
                row = cur.fetchone()
                if row is None:
                    raise NotFoundError(f"No request has the id '{renews}'.", field="id")
                source = row[0]
                other = source.get("renewed_by")
                if other and other != req.id:
                    cur.execute("SELECT 1 FROM tui_csr.requests WHERE id = %s", (other,))
                    if cur.fetchone():
                        raise InputError(f"Request '{source.get('label')}' is already renewed "
                                         f"by request {other}.", field="id")
            cur.execute("SELECT id, label FROM tui_csr.requests WHERE id = %s OR label = %s",
                        (req.id, req.label))
            for row_id, _label in cur.fetchall():
                if row_id == req.id:
                    raise InputError(f"A request with id '{req.id}' already exists.", field="id")
                raise refusals.label_taken(req.label)
            if close_intent is not None:
                self._close_in(cur, close_intent, IntentState.RECORDED, request_id=req.id,
                               final_key_id=req.key_id)
            cur.execute("INSERT INTO tui_csr.requests (id, label, token_label, key_id, status, "
                        "created, group_keys, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        self._request_row(req))
            if source is not None:
                cur.execute("UPDATE tui_csr.requests SET doc = %s WHERE id = %s",
                            (Jsonb({**source, "renewed_by": req.id}), renews))
            self._log(cur, audit)

    def get_request(self, req_id: str) -> Request:
        """See :meth:`RequestStore.get_request`."""
        with self._reading() as cur:
            cur.execute("SELECT doc FROM tui_csr.requests WHERE id = %s", (req_id,))
            rows = cur.fetchall()
            if not rows and len(req_id) >= MIN_ID_PREFIX:
                cur.execute("SELECT doc FROM tui_csr.requests WHERE starts_with(id, %s) LIMIT 10",
                            (req_id,))
                rows = cur.fetchall()
                if len(rows) > 1:
                    cur.execute("SELECT count(*) FROM tui_csr.requests WHERE starts_with(id, %s)",
                                (req_id,))
                    count = cur.fetchone()
                    raise InputError(f"The id '{req_id}' matches {count[0] if count else 2} "
                                     "requests; type more of it.", field="id")
        if not rows:
            raise NotFoundError(f"No request has the id '{req_id}'.", field="id")
        return self._parse(Request, rows[0][0])

    def find_request_by_label(self, label: str) -> Request | None:
        """See :meth:`RequestStore.find_request_by_label`."""
        with self._reading() as cur:
            cur.execute("SELECT doc FROM tui_csr.requests WHERE label = %s", (label,))
            row = cur.fetchone()
        return self._parse(Request, row[0]) if row else None

    def list_requests(self, status: Status | None = Status.PENDING) -> list[Request]:
        """See :meth:`RequestStore.list_requests`."""
        from tui_csr.store.codec import gc_paused

        # One GC pause around the whole list: 10,000 documents decoded and turned into models
        # would otherwise run the collector over and over.
        with gc_paused(), self._reading() as cur:
            if status is None:
                cur.execute("SELECT doc FROM tui_csr.requests ORDER BY created DESC, seq DESC")
            else:
                cur.execute("SELECT doc FROM tui_csr.requests WHERE status = %s "
                            "ORDER BY created DESC, seq DESC", (Status(status).value,))
            rows = cur.fetchall()
            return [self._parse(Request, row[0]) for row in rows]

    def update_request(self, req: Request, audit: AuditEntry | None = None) -> None:
        """See :meth:`RequestStore.update_request`."""
        with self._writing() as cur:
            cur.execute("SELECT 1 FROM tui_csr.requests WHERE id = %s", (req.id,))
            if cur.fetchone() is None:
                raise NotFoundError(f"No request has the id '{req.id}'.", field="id")
            cur.execute("SELECT 1 FROM tui_csr.requests WHERE label = %s AND id <> %s",
                        (req.label, req.id))
            if cur.fetchone():
                raise refusals.label_taken(req.label)
            row = self._request_row(req)
            cur.execute("UPDATE tui_csr.requests SET label = %s, token_label = %s, key_id = %s, "
                        "status = %s, created = %s, group_keys = %s, doc = %s WHERE id = %s",
                        (*row[1:], req.id))
            self._log(cur, audit)

    def remove_request(self, req_id: str, audit: AuditEntry | None = None) -> Request:
        """See :meth:`RequestStore.remove_request`."""
        with self._writing() as cur:
            cur.execute("DELETE FROM tui_csr.requests WHERE id = %s RETURNING doc", (req_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError(f"No request has the id '{req_id}'.", field="id")
            removed = self._parse(Request, row[0])
            self._log(cur, audit)
        return removed

    def count_requests(self, status: Status | None = None) -> int:
        """See :meth:`RequestStore.count_requests`."""
        with self._reading() as cur:
            if status is None:
                cur.execute("SELECT count(*) FROM tui_csr.requests")
            else:
                cur.execute("SELECT count(*) FROM tui_csr.requests WHERE status = %s",
                            (Status(status).value,))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    # -- groups -----------------------------------------------------------------------------

    def _group_doc(self, cur: psycopg.Cursor, name: str) -> dict[str, Any] | None:
        cur.execute("SELECT doc FROM tui_csr.groups WHERE name_key = %s", (_fold(name),))
        row = cur.fetchone()
        return dict(row[0]) if row else None

    def add_group(self, group: Group, audit: AuditEntry | None = None) -> None:
        """See :meth:`RequestStore.add_group` (administrators only, by grant)."""
        from psycopg.types.json import Jsonb

        name = group.name.strip()
        if not name:
            raise InputError("A group needs a name.", field="group")
        with self._writing("create certificate groups") as cur:
            existing = self._group_doc(cur, name)
            if existing is not None:
                raise refusals.group_exists(existing['name'])
            doc = {**group.to_doc(), "name": name}
            cur.execute("INSERT INTO tui_csr.groups (name_key, name, doc) VALUES (%s, %s, %s)",
                        (_fold(name), name, Jsonb(doc)))
            self._log(cur, audit)

    def get_group(self, name: str) -> Group:
        """See :meth:`RequestStore.get_group`."""
        with self._reading() as cur:
            doc = self._group_doc(cur, name)
        if doc is None:
            raise refusals.no_group(name)
        return self._parse(Group, doc)

    def list_groups(self) -> list[Group]:
        """See :meth:`RequestStore.list_groups`."""
        with self._reading() as cur:
            cur.execute("SELECT doc FROM tui_csr.groups")
            groups = [self._parse(Group, row[0]) for row in cur.fetchall()]
        return sorted(groups, key=lambda g: (g.name.casefold(), g.name))

    def rename_group(self, old: str, new: str, audit: AuditEntry | None = None) -> Group:
        """See :meth:`RequestStore.rename_group` (administrators only, by grant)."""
        from psycopg.types.json import Jsonb

        new = new.strip()
        if not new:
            raise InputError("A group needs a name.", field="group")
        with self._writing("rename certificate groups") as cur:
            doc = self._group_doc(cur, old)
            if doc is None:
                raise refusals.no_group(old)
            old_key = _fold(doc["name"])
            clash = self._group_doc(cur, new)
            if clash is not None and _fold(clash["name"]) != old_key:
                raise refusals.group_exists(clash['name'])
            cur.execute("SELECT id, doc FROM tui_csr.requests WHERE group_keys @> ARRAY[%s]",
                        (old_key,))
            for req_id, req_doc in cur.fetchall():
                renamed: list[str] = []
                for g in req_doc.get("groups", []):
                    g = new if _fold(g) == old_key else g
                    if g not in renamed:
                        renamed.append(g)
                cur.execute("UPDATE tui_csr.requests SET doc = %s, group_keys = %s WHERE id = %s",
                            (Jsonb({**req_doc, "groups": renamed}), [_fold(g) for g in renamed],
                             req_id))
            renamed_group = {**doc, "name": new}
            cur.execute("UPDATE tui_csr.groups SET name_key = %s, name = %s, doc = %s "
                        "WHERE name_key = %s", (_fold(new), new, Jsonb(renamed_group), old_key))
            self._log(cur, audit)
        return self._parse(Group, renamed_group)

    def update_group(self, name: str, *, policy: str, description: str,
                     audit: AuditEntry | None = None) -> Group:
        """See :meth:`RequestStore.update_group` (administrators only, by grant)."""
        from psycopg.types.json import Jsonb

        with self._writing("change certificate groups") as cur:
            doc = self._group_doc(cur, name)
            if doc is None:
                raise refusals.no_group(name)
            doc = {**doc, "policy": policy, "description": description}
            cur.execute("UPDATE tui_csr.groups SET doc = %s WHERE name_key = %s",
                        (Jsonb(doc), _fold(doc["name"])))
            self._log(cur, audit)
        return self._parse(Group, doc)

    def remove_group(self, name: str, audit: AuditEntry | None = None) -> None:
        """See :meth:`RequestStore.remove_group` (administrators only, by grant)."""
        with self._writing("remove certificate groups") as cur:
            doc = self._group_doc(cur, name)
            if doc is None:
                raise refusals.no_group(name)
            cur.execute("SELECT count(*) FROM tui_csr.requests WHERE group_keys @> ARRAY[%s]",
                        (_fold(doc["name"]),))
            row = cur.fetchone()
            holders = int(row[0]) if row else 0
            if holders:
                raise InputError(f"Group '{doc['name']}' still holds "
                                 f"{_plural(holders, 'request')}; move or delete them first.",
                                 field="group")
            cur.execute("DELETE FROM tui_csr.groups WHERE name_key = %s", (_fold(doc["name"]),))
            self._log(cur, audit)

    def group_usage(self) -> dict[str, tuple[int, int]]:
        """See :meth:`RequestStore.group_usage`."""
        with self._reading() as cur:
            cur.execute("SELECT name FROM tui_csr.groups")
            canonical = {_fold(row[0]): row[0] for row in cur.fetchall()}
            cur.execute("SELECT status, doc->'groups' FROM tui_csr.requests WHERE status <> %s "
                        "ORDER BY seq", (Status.RETIRED.value,))
            rows = cur.fetchall()
        usage = {name: [0, 0] for name in canonical.values()}
        for status, groups in rows:
            slot = 1 if status == Status.ISSUED.value else 0
            named = {_fold(g): g for g in groups or [] if isinstance(g, str)}
            for key, g in named.items():
                name = canonical.setdefault(key, g)
                usage.setdefault(name, [0, 0])[slot] += 1
        return {name: (counts[0], counts[1]) for name, counts in usage.items()}

    # -- audit ------------------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> None:
        """See :meth:`RequestStore.add_audit`."""
        with self._writing("write audit entries") as cur:
            self._log(cur, entry)

    def list_audit(self, limit: int | None = None) -> list[AuditEntry]:
        """See :meth:`RequestStore.list_audit`: newest first by time (parsed, as the TinyDB store
        does: text order would misplace an entry with fractions of a second), then by seq."""
        with self._reading() as cur:
            cur.execute("SELECT seq, at, action, actor, subject, detail FROM tui_csr.audit")
            rows = cur.fetchall()
        rows.sort(key=lambda row: (_parse_time(row[1]), row[0]), reverse=True)
        if limit is not None:
            rows = rows[: max(limit, 0)]
        return [self._parse(AuditEntry, {"at": at, "action": action, "user": actor,
                                         "subject": subject, "detail": detail})
                for _, at, action, actor, subject, detail in rows]

    def audit_chain(self) -> AuditChain:
        """See :meth:`RequestStore.audit_chain` (with the head the store recorded)."""
        with self._reading() as cur:
            cur.execute("SELECT seq, prev, hash, at, action, actor, subject, detail "
                        "FROM tui_csr.audit ORDER BY seq")
            rows = cur.fetchall()
            cur.execute("SELECT seq, hash FROM tui_csr.audit_head")
            head = cur.fetchone()
        links = [AuditLink(int(seq), prev, digest, {"at": at, "action": action, "user": actor,
                                                    "subject": subject, "detail": detail})
                 for seq, prev, digest, at, action, actor, subject, detail in rows]
        return AuditChain(links, (int(head[0]), str(head[1])) if head else None)

    # -- intents ----------------------------------------------------------------------------

    def open_intent(self, intent: Intent, audit: AuditEntry | None = None) -> None:
        """See :meth:`RequestStore.open_intent`."""
        self.open_intents([intent], audit)

    def open_intents(self, intents: Sequence[Intent], audit: AuditEntry | None = None) -> None:
        """See :meth:`RequestStore.open_intents`: one transaction."""
        from psycopg.types.json import Jsonb

        if any(intent.state is not IntentState.OPEN for intent in intents):
            raise ValueError("only an open intent can be recorded")
        if not intents:
            return
        mine: set[str] = set()
        for intent in intents:
            if mine & set(intent.key_ids):
                raise InputError(f"The key id {intent.key_id} is taken by a key pair being "
                                 "generated.", field="key_id")
            mine |= set(intent.key_ids)
        wanted = sorted(mine)
        with self._writing() as cur:
            cur.execute("SELECT id FROM tui_csr.intents WHERE id = ANY(%s) LIMIT 1",
                        ([i.id for i in intents],))
            row = cur.fetchone()
            if row:
                raise InputError(f"An intent with id '{row[0]}' already exists.", field="id")
            cur.execute("SELECT key_id, final_key_id FROM tui_csr.intents WHERE state = %s AND "
                        "(key_id = ANY(%s) OR final_key_id = ANY(%s)) LIMIT 1",
                        (IntentState.OPEN.value, wanted, wanted))
            row = cur.fetchone()
            if row:
                key = row[0] if row[0] in mine else row[1]
                raise InputError(f"The key id {key} is taken by a key pair being "
                                 "generated.", field="key_id")
            cur.execute("SELECT key_id, label FROM tui_csr.requests WHERE key_id = ANY(%s) "
                        "LIMIT 1", (wanted,))
            row = cur.fetchone()
            if row:
                raise InputError(f"The key id {row[0]} is taken by request "
                                 f"'{row[1]}'.", field="key_id")
            cur.executemany(
                "INSERT INTO tui_csr.intents (id, state, key_id, final_key_id, created, doc) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(intent.id, intent.state.value, intent.key_id, intent.final_key_id,
                  intent.created, Jsonb(intent.to_doc())) for intent in intents])
            # As the TinyDB store: intents closed long ago go in the same transaction.
            cutoff = (utcnow() - INTENTS_KEPT).isoformat().replace("+00:00", "Z")
            cur.execute("DELETE FROM tui_csr.intents WHERE state <> %s AND doc->>'closed' < %s",
                        (IntentState.OPEN.value, cutoff))
            self._log(cur, audit)

    def _intent_doc(self, cur: psycopg.Cursor, intent_id: str) -> dict[str, Any] | None:
        cur.execute("SELECT doc FROM tui_csr.intents WHERE id = %s", (intent_id,))
        row = cur.fetchone()
        return dict(row[0]) if row else None

    def _open_intent_doc(self, cur: psycopg.Cursor, intent_id: str) -> dict[str, Any]:
        doc = self._intent_doc(cur, intent_id)
        if doc is None:
            raise NotFoundError(f"No intent has the id '{intent_id}'.", field="intent")
        if doc.get("state") != IntentState.OPEN.value:
            raise StoreError(f"The intent {intent_id} (key '{doc.get('label')}') was already "
                             f"closed ({doc.get('state')}), by another process.")
        return doc

    def _save_intent(self, cur: psycopg.Cursor, doc: dict[str, Any]) -> Intent:
        from psycopg.types.json import Jsonb

        cur.execute("UPDATE tui_csr.intents SET state = %s, final_key_id = %s, doc = %s "
                    "WHERE id = %s", (doc["state"], doc.get("final_key_id"), Jsonb(doc),
                                      doc["id"]))
        return self._parse(Intent, doc)

    def set_intent_target(self, intent_id: str, key_id: str) -> Intent:
        """See :meth:`RequestStore.set_intent_target`."""
        with self._writing() as cur:
            doc = self._open_intent_doc(cur, intent_id)
            return self._save_intent(cur, {**doc, "final_key_id": key_id.lower()})

    def close_intent(self, intent_id: str, state: IntentState,
                     audit: AuditEntry | None = None) -> Intent:
        """See :meth:`RequestStore.close_intent`."""
        if state not in (IntentState.DESTROYED, IntentState.ABANDONED):
            raise ValueError(f"an intent is not closed as {state} by close_intent")
        with self._writing() as cur:
            doc = self._intent_doc(cur, intent_id)
            if doc is not None and doc.get("state") == state.value:
                return self._parse(Intent, doc)
            closed = self._close_in(cur, intent_id, state)
            self._log(cur, audit)
        return closed

    def _close_in(self, cur: psycopg.Cursor, intent_id: str, state: IntentState,
                  request_id: str | None = None, final_key_id: str | None = None) -> Intent:
        doc = self._open_intent_doc(cur, intent_id)
        if final_key_id is not None and final_key_id.lower() != doc.get("key_id"):
            doc = {**doc, "final_key_id": final_key_id.lower()}  # the id the record names
        return self._save_intent(cur, {
            **doc, "state": state.value, "request_id": request_id,
            "closed": utcnow().isoformat().replace("+00:00", "Z")})

    def get_intent(self, intent_id: str) -> Intent:
        """See :meth:`RequestStore.get_intent`."""
        with self._reading() as cur:
            doc = self._intent_doc(cur, intent_id)
        if doc is None:
            raise NotFoundError(f"No intent has the id '{intent_id}'.", field="intent")
        return self._parse(Intent, doc)

    def list_intents(self, state: IntentState | None = IntentState.OPEN) -> list[Intent]:
        """See :meth:`RequestStore.list_intents`."""
        with self._reading() as cur:
            if state is None:
                cur.execute("SELECT doc FROM tui_csr.intents ORDER BY created, seq")
            else:
                cur.execute("SELECT doc FROM tui_csr.intents WHERE state = %s "
                            "ORDER BY created, seq", (IntentState(state).value,))
            rows = cur.fetchall()
        return [self._parse(Intent, row[0]) for row in rows]

    def intent_lease(self, intent_id: str) -> leases.Lease:
        """See :meth:`RequestStore.intent_lease`: a session advisory lock on a connection of
        its own, released when the lease is (or when its process or host dies)."""
        if not _ID_RE.match(intent_id):
            raise StoreError(f"'{intent_id}' is not an intent id.")
        conn = self.connect()
        try:
            with self._errors():
                row = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                   (lease_key(intent_id),)).fetchone()
        except BaseException:
            conn.close()
            raise
        if not row or not row[0]:
            conn.close()
            raise leases.LeaseHeldError(f"Another tui-csr process is working on intent "
                                        f"{intent_id} right now.")
        return AdvisoryLease(conn, intent_id)

    def intent_in_progress(self, intent_id: str) -> bool:
        """See :meth:`RequestStore.intent_in_progress`."""
        # A transaction-level try: if it is free, it is let go again at once (at commit).
        with self._lock, self._errors(), self._transaction() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (lease_key(intent_id),))
            row = cur.fetchone()
        return not (row and row[0])

    # -- profiles (schema version 2; see tui_csr.store.pg_profiles) ------------------------

    def add_profile(self, profile: Profile, audit: AuditEntry | None = None) -> None:
        """Store a new request profile (names unique ignoring case; administrators only)."""
        pg_profiles.add_profile(self, profile, audit)

    def get_profile(self, name: str) -> Profile:
        """The stored profile with this name (any case)."""
        return pg_profiles.get_profile(self, name)

    def list_profiles(self) -> list[Profile]:
        """Stored profiles, by name."""
        return pg_profiles.list_profiles(self)

    def update_profile(self, profile: Profile, *, expected_version: int,
                       audit: AuditEntry | None = None) -> Profile:
        """Replace a stored profile whose version is still ``expected_version``."""
        return pg_profiles.update_profile(self, profile, expected_version=expected_version,
                                          audit=audit)

    def remove_profile(self, name: str, audit: AuditEntry | None = None) -> None:
        """Remove a stored profile that no group names as its policy."""
        pg_profiles.remove_profile(self, name, audit)
