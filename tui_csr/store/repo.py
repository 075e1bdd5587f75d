"""The request store: typed models in, typed models out.

:class:`Store` is the only storage API the rest of the program uses; no TinyDB type crosses it.
Every public method holds the store lock (shared for reads, exclusive for writes) for its whole
read-modify-write, reads the file at most once (a stat when nothing changed, thanks to the
storage's cache) and writes it at most once, so a record and its audit entry land together.

TinyDB runs over an in-memory buffer made fresh for each operation: its query cache and its
remembered next document id never outlive the lock, so a change made by another process is always
seen. TinyDB document ids are internal; a request is identified by its ``id`` field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from tui_csr.core.models import AuditEntry, Group, Intent, IntentState, Request, Status, utcnow
from tui_csr.core.profiles import Profile
from tui_csr.errors import InputError, NotFoundError, StoreError
from tui_csr.store import auditchain, codec, leases, refusals
from tui_csr.store.lock import store_lock
from tui_csr.store.storage import AtomicJSONStorage

STORE_FILE_NAME = "tui-csr.json"
MIN_ID_PREFIX = 4
INTENTS_KEPT = timedelta(days=30)
"""How long a closed intent stays in the store (open ones stay until closed)."""
"""Shortest id prefix :meth:`Store.get_request` accepts in place of a whole id."""

_REQUESTS, _GROUPS, _AUDIT, _META = "requests", "groups", "audit", "meta"
_INTENTS = "intents"
_PROFILES = "profiles"
_Q = Query()


class _Buffer(Storage):
    """Holds the tables for one operation; TinyDB's writes land here, not on disk."""

    def __init__(self, data: dict[str, dict[str, Any]] | None) -> None:
        self.data = data
        self.dirty = False

    def read(self) -> dict[str, dict[str, Any]] | None:
        return self.data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self.data = data
        self.dirty = True


class _Tx:
    """One locked operation: TinyDB tables over a buffer, plus a note of whether we mutated."""

    def __init__(self, data: dict[str, dict[str, Any]] | None) -> None:
        self.buffer = _Buffer(data)
        db = TinyDB(storage=lambda: self.buffer)
        # cache_size=0: no query results are remembered, even within the operation.
        self.requests: Table = db.table(_REQUESTS, cache_size=0)
        self.groups: Table = db.table(_GROUPS, cache_size=0)
        self.audit: Table = db.table(_AUDIT, cache_size=0)
        self.meta: Table = db.table(_META, cache_size=0)
        self.intents: Table = db.table(_INTENTS, cache_size=0)
        self.profiles: Table = db.table(_PROFILES, cache_size=0)
        self.touched = False
        #: (table, document id) of every document this operation changed: a large store
        #: saves just these (see tui_csr.store.journal).
        self.changes: list[tuple[str, str]] = []

    def raw(self, name: str) -> dict[str, dict[str, Any]]:
        """Table ``name`` as stored, ``{doc id: document}``: for scans on hot paths, where a
        TinyDB query costs ~4 us a document (40 ms over 10,000 requests). Read it; change it
        only through :meth:`insert`, :meth:`update` and :meth:`remove`."""
        data = self.buffer.data
        return data.get(name, {}) if data else {}

    def find(self, name: str, match: Callable[[dict[str, Any]], bool]) -> list[Document]:
        """Documents of table ``name`` for which ``match`` is true (copies, with doc_id)."""
        return [Document(doc, int(key)) for key, doc in self.raw(name).items() if match(doc)]

    def insert(self, table: Table, doc: Mapping[str, Any]) -> None:
        # Straight into the buffer: TinyDB's insert copies the whole table twice (ids to int
        # and back), ~10 ms with 10,000 requests. Same id rule as TinyDB: highest id + 1.
        self.touched = True
        if self.buffer.data is None:
            self.buffer.data = {}
        docs = self.buffer.data.setdefault(table.name, {})
        doc_id = str(max(map(int, docs), default=0) + 1)
        docs[doc_id] = dict(doc)
        self.changes.append((table.name, doc_id))
        self.buffer.dirty = True

    def update(
        self, table: Table, fields: Mapping[str, Any] | Callable[[dict], None], doc_ids: list[int]
    ) -> None:
        self.touched = True
        table.update(fields, doc_ids=doc_ids)  # type: ignore[arg-type]
        self.changes += [(table.name, str(i)) for i in doc_ids]

    def remove(self, table: Table, doc_ids: list[int]) -> None:
        self.touched = True
        table.remove(doc_ids=doc_ids)
        self.changes += [(table.name, str(i)) for i in doc_ids]

    def log(self, audit: AuditEntry | None) -> None:
        if audit is not None:
            # Hash-chained to the newest entry (tui_csr.store.auditchain; `audit --verify`).
            newest = auditchain.newest_chained(self.raw(_AUDIT))
            self.insert(self.audit, auditchain.link(audit.to_doc(), newest))

    # -- lookups ----------------------------------------------------------------------------

    def request_doc(self, req_id: str) -> Document | None:
        docs = self.find(_REQUESTS, lambda doc: doc.get("id") == req_id)
        return docs[0] if docs else None

    def intent_doc(self, intent_id: str) -> Document | None:
        docs = self.find(_INTENTS, lambda doc: doc.get("id") == intent_id)
        return docs[0] if docs else None

    def group_docs(self) -> list[Document]:
        return self.groups.all()

    def group_doc(self, name: str) -> Document | None:
        key = _fold(name)
        for doc in self.groups.all():
            if _fold(doc.get("name", "")) == key:
                return doc
        return None

    def requests_naming(self, group_name: str) -> list[Document]:
        key = _fold(group_name)
        return self.requests.search(
            _Q.groups.test(lambda gs: isinstance(gs, list) and any(_fold(g) == key for g in gs))
        )


_Model = TypeVar("_Model", Request, Group, AuditEntry, Intent, Profile)


def _check_request(req: Request) -> None:
    """Raise ValueError when a parsed request holds values the program cannot use.

    Runs for every record of every list (10,000 for a large store): plain loops and set
    lookups, no enum calls or nested generators (which doubled the cost of a list).
    """
    for name in ("id", "label", "key_id", "csr_pem", "token_label", "subject"):
        if not isinstance(getattr(req, name), str):
            raise ValueError(f"its {name} is not text")
    # key_spec, hash and scheme are not checked against today's names: the store keeps what it
    # was given (older or other spellings); the CLI and the screens show unknown ones as text.
    for name in ("key_spec", "hash", "scheme"):
        if not isinstance(getattr(req, name), str):
            raise ValueError(f"its {name} is not text")
    try:
        bytes.fromhex(req.key_id)
    except ValueError:
        raise ValueError(f"its key id '{req.key_id}' is not hexadecimal") from None
    for group in req.groups:
        if not isinstance(group, str):
            raise ValueError("its groups are not a list of names")
    for san in req.sans:
        if len(san) != 2 or not isinstance(san[0], str) or not isinstance(san[1], str):
            raise ValueError("its SANs are not (type, value) pairs")


def _fold(name: object) -> str:
    return name.strip().casefold() if isinstance(name, str) else ""


def _parse_time(text: object) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso_z(when: datetime) -> str:
    """``2026-12-01T10:00:00Z``: how models store times (so such strings sort by time)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Store:
    """The shared request store: requests, groups and the audit trail in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._storage = AtomicJSONStorage(self.path)
        self._leases = leases.lease_dir_for(self.path)

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """The store in ``data_dir`` (created with mode 0700 if missing)."""
        return cls(Path(data_dir) / STORE_FILE_NAME)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _parse(self, cls: type[_Model], doc: Mapping[str, Any]) -> _Model:
        """``cls.from_doc(doc)``, where a damaged or hand-edited record is a StoreError naming
        the file and the record, never a KeyError from deep inside."""
        try:
            model = cls.from_doc(doc)  # type: ignore[arg-type]  # a Mapping: read only
            if isinstance(model, Request):
                _check_request(model)
            return model
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = {Request: "request", Group: "group", AuditEntry: "audit",
                    Intent: "intent", Profile: "profile"}.get(cls, "a")
            name = doc.get("label") or doc.get("name") if isinstance(doc, Mapping) else None
            reason = f"the field {exc} is missing" if isinstance(exc, KeyError) else str(exc)
            backup = self.path.with_name(self.path.name + ".bak")
            raise StoreError(
                f"The store {self.path} has a damaged {what} record"
                f"{f' ({name})' if isinstance(name, str) else ''}: {reason.rstrip('.')}. It was "
                f"left untouched; correct the record, or restore {backup} if it is good."
            ) from exc

    # -- sessions ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[_Tx]:
        with store_lock(self.path, exclusive=False):
            yield _Tx(self._storage.read())

    @contextmanager
    def _writing(self, op: str = "") -> Iterator[_Tx]:
        """One locked read-modify-write; ``op`` names it for tui_csr.crashpoint (tests)."""
        with store_lock(self.path, exclusive=True):
            tx = _Tx(self._storage.read())
            try:
                yield tx
                if tx.buffer.dirty and tx.buffer.data is not None:
                    self._storage.remove_stale_temp_files()
                    self._storage.commit(tx.buffer.data, tx.changes, op)
            except BaseException:
                # The buffer shares its dicts with the storage's cache: never let a half-done
                # change survive in memory when it did not reach the file.
                if tx.touched:
                    self._storage.invalidate()
                raise

    # -- requests ---------------------------------------------------------------------------

    def add_request(self, req: Request, audit: AuditEntry | None = None, *,
                    close_intent: str | None = None, renews: str | None = None) -> None:
        """Store a new request (and its audit entry, in the same write).

        ``close_intent``: the id of the open intent of the request's key pair, closed in this
        same write (so no moment exists where the pair has a record and an open intent, or
        neither). Raises InputError when the id or the label is already taken, StoreError when
        the intent is not open (nothing is written then).

        ``renews``: the id of the request ``req`` renews; its ``renewed_by`` is set to ``req.id``
        in this same write (NotFoundError when it is gone; InputError when a request that still
        exists renews it already).
        """
        with self._writing("add_request") as tx:
            source = None
            if renews is not None:
                source = tx.request_doc(renews)
                if source is None:
                    raise NotFoundError(f"No request has the id '{renews}'.", field="id")
                other = source.get("renewed_by")
                if other and other != req.id and tx.request_doc(other) is not None:
                    raise InputError(f"Request '{source.get('label')}' is already renewed by "
                                     f"request {other}.", field="id")
            for doc in tx.find(_REQUESTS, lambda d: d.get("id") == req.id
                               or d.get("label") == req.label):
                if doc.get("id") == req.id:
                    raise InputError(f"A request with id '{req.id}' already exists.", field="id")
                raise refusals.label_taken(req.label)
            if close_intent is not None:
                self._close_in(tx, close_intent, IntentState.RECORDED, request_id=req.id,
                               final_key_id=req.key_id)
            tx.insert(tx.requests, req.to_doc())
            if source is not None:
                tx.update(tx.requests, {"renewed_by": req.id}, [source.doc_id])
            tx.log(audit)

    def get_request(self, req_id: str) -> Request:
        """The request with this id, or with this unique id prefix (at least 4 characters)."""
        with self._reading() as tx:
            doc = tx.request_doc(req_id)
            if doc is None and len(req_id) >= MIN_ID_PREFIX:
                matches = tx.find(_REQUESTS, lambda d: isinstance(d.get("id"), str)
                                  and d["id"].startswith(req_id))
                if len(matches) > 1:
                    raise InputError(
                        f"The id '{req_id}' matches {len(matches)} requests; type more of it.",
                        field="id",
                    )
                doc = matches[0] if matches else None
            if doc is None:
                raise NotFoundError(f"No request has the id '{req_id}'.", field="id")
            return self._parse(Request, doc)

    def find_request_by_label(self, label: str) -> Request | None:
        """The request whose key label is exactly ``label``, if any."""
        with self._reading() as tx:
            docs = tx.find(_REQUESTS, lambda d: d.get("label") == label)
            return self._parse(Request, docs[0]) if docs else None

    def list_requests(self, status: Status | None = Status.PENDING) -> list[Request]:
        """Requests with this status (``None``: all), newest first."""
        want = None if status is None else Status(status).value
        with self._reading() as tx, codec.gc_paused():
            # Raw documents, no TinyDB copies: from_doc copies what it keeps.
            rows = [(self._parse(Request, doc), int(key)) for key, doc in tx.raw(_REQUESTS).items()
                    if want is None or doc.get("status") == want]
        rows.sort(key=lambda row: (row[0].created, row[1]), reverse=True)
        return [req for req, _ in rows]

    def update_request(self, req: Request, audit: AuditEntry | None = None) -> None:
        """Replace the stored request that has ``req.id`` with ``req``."""
        with self._writing() as tx:
            doc = tx.request_doc(req.id)
            if doc is None:
                raise NotFoundError(f"No request has the id '{req.id}'.", field="id")
            for other in tx.requests.search(_Q.label == req.label):
                if other.get("id") != req.id:
                    raise InputError(
                        f"A request labelled '{req.label}' already exists.", field="label"
                    )
            tx.update(tx.requests, req.to_doc(), [doc.doc_id])
            tx.log(audit)

    def remove_request(self, req_id: str, audit: AuditEntry | None = None) -> Request:
        """Delete the request with exactly this id; returns what was deleted."""
        with self._writing() as tx:
            doc = tx.request_doc(req_id)
            if doc is None:
                raise NotFoundError(f"No request has the id '{req_id}'.", field="id")
            removed = self._parse(Request, doc)
            tx.remove(tx.requests, [doc.doc_id])
            tx.log(audit)
            return removed

    def count_requests(self, status: Status | None = None) -> int:
        """How many requests there are (with this status, if given)."""
        with self._reading() as tx:
            docs = tx.raw(_REQUESTS)
            if status is None:
                return len(docs)
            want = Status(status).value
            return sum(1 for doc in docs.values() if doc.get("status") == want)

    # -- groups -----------------------------------------------------------------------------

    def add_group(self, group: Group, audit: AuditEntry | None = None) -> None:
        """Store a new group; names are unique ignoring case."""
        name = group.name.strip()
        if not name:
            raise InputError("A group needs a name.", field="group")
        with self._writing() as tx:
            existing = tx.group_doc(name)
            if existing is not None:
                raise refusals.group_exists(existing['name'])
            doc = group.to_doc()
            doc["name"] = name
            tx.insert(tx.groups, doc)
            tx.log(audit)

    def get_group(self, name: str) -> Group:
        """The group with this name (any case)."""
        with self._reading() as tx:
            doc = tx.group_doc(name)
            if doc is None:
                raise refusals.no_group(name)
            return self._parse(Group, doc)

    def list_groups(self) -> list[Group]:
        """All groups, sorted by name (ignoring case)."""
        with self._reading() as tx:
            groups = [self._parse(Group, doc) for doc in tx.group_docs()]
        return sorted(groups, key=lambda g: (g.name.casefold(), g.name))

    def rename_group(self, old: str, new: str, audit: AuditEntry | None = None) -> Group:
        """Rename a group and every request's reference to it, in one write."""
        new = new.strip()
        if not new:
            raise InputError("A group needs a name.", field="group")
        with self._writing() as tx:
            doc = tx.group_doc(old)
            if doc is None:
                raise refusals.no_group(old)
            clash = tx.group_doc(new)
            if clash is not None and clash.doc_id != doc.doc_id:
                raise refusals.group_exists(clash['name'])
            old_key = _fold(doc["name"])

            def rewrite(request_doc: dict) -> None:
                renamed: list[str] = []
                for g in request_doc.get("groups", []):
                    g = new if _fold(g) == old_key else g
                    if g not in renamed:
                        renamed.append(g)
                request_doc["groups"] = renamed

            holders = [d.doc_id for d in tx.requests_naming(old_key)]
            if holders:
                tx.update(tx.requests, rewrite, holders)
            tx.update(tx.groups, {"name": new}, [doc.doc_id])
            tx.log(audit)
            return self._parse(Group, {**doc, "name": new})

    def update_group(self, name: str, *, policy: str, description: str,
                     audit: AuditEntry | None = None) -> Group:
        """Set a group's policy and description (and its audit entry, in the same write)."""
        with self._writing() as tx:
            doc = tx.group_doc(name)
            if doc is None:
                raise refusals.no_group(name)
            tx.update(tx.groups, {"policy": policy, "description": description}, [doc.doc_id])
            tx.log(audit)
            return self._parse(Group, {**doc, "policy": policy, "description": description})

    def remove_group(self, name: str, audit: AuditEntry | None = None) -> None:
        """Delete a group; refused while any request still names it."""
        with self._writing() as tx:
            doc = tx.group_doc(name)
            if doc is None:
                raise refusals.no_group(name)
            holders = tx.requests_naming(doc["name"])
            if holders:
                raise InputError(
                    f"Group '{doc['name']}' still holds {_plural(len(holders), 'request')}; "
                    "move or delete them first.",
                    field="group",
                )
            tx.remove(tx.groups, [doc.doc_id])
            tx.log(audit)

    def group_usage(self) -> dict[str, tuple[int, int]]:
        """``{group name: (pending, issued)}`` for every group, plus names requests use."""
        with self._reading() as tx:
            canonical: dict[str, str] = {_fold(d["name"]): str(d["name"])
                                         for d in tx.group_docs() if d.get("name")}
            usage = {name: [0, 0] for name in canonical.values()}
            for doc in tx.requests.all():
                if doc.get("status") == Status.RETIRED.value:
                    continue  # kept for the audit trail only
                slot = 1 if doc.get("status") == Status.ISSUED.value else 0
                named = {_fold(g): g for g in doc.get("groups") or [] if isinstance(g, str)}
                for key, g in named.items():
                    name = canonical.setdefault(key, g)
                    usage.setdefault(name, [0, 0])[slot] += 1
        return {name: (counts[0], counts[1]) for name, counts in usage.items()}

    # -- profiles (request profiles administrators keep; built-ins are not stored) -----------

    def _profile_doc(self, tx: _Tx, name: str) -> Document | None:
        docs = tx.find(_PROFILES, lambda d: _fold(d.get("name")) == _fold(name))
        return docs[0] if docs else None

    def add_profile(self, profile: Profile, audit: AuditEntry | None = None) -> None:
        """Store a new profile; names are unique ignoring case."""
        with self._writing("add_profile") as tx:
            existing = self._profile_doc(tx, profile.name)
            if existing is not None:
                raise refusals.profile_exists(existing['name'])
            tx.insert(tx.profiles, profile.to_doc())
            tx.log(audit)

    def get_profile(self, name: str) -> Profile:
        """The stored profile with this name (any case)."""
        with self._reading() as tx:
            doc = self._profile_doc(tx, name)
            if doc is None:
                raise refusals.no_profile(name)
            return self._parse(Profile, doc)

    def list_profiles(self) -> list[Profile]:
        """The stored profiles, by name."""
        with self._reading() as tx:
            profiles = [self._parse(Profile, doc) for doc in tx.raw(_PROFILES).values()]
        return sorted(profiles, key=lambda p: p.name)

    def update_profile(self, profile: Profile, *, expected_version: int,
                       audit: AuditEntry | None = None) -> Profile:
        """Replace the stored profile named ``profile.name``, whose version must still be
        ``expected_version`` (another administrator's edit in between is refused, not lost)."""
        with self._writing("update_profile") as tx:
            doc = self._profile_doc(tx, profile.name)
            if doc is None:
                raise refusals.no_profile(profile.name)
            if doc.get("version") != expected_version:
                raise refusals.profile_changed(profile.name, doc.get('version'))
            tx.update(tx.profiles, profile.to_doc(), [doc.doc_id])
            tx.log(audit)
            return profile

    def remove_profile(self, name: str, audit: AuditEntry | None = None) -> None:
        """Delete a stored profile; refused while a group's policy names it."""
        with self._writing("remove_profile") as tx:
            doc = self._profile_doc(tx, name)
            if doc is None:
                raise refusals.no_profile(name)
            users = sorted(g.get("name", "") for g in tx.group_docs()
                           if (g.get("policy") or "").strip() == doc.get("name"))
            if users:
                raise InputError(f"Profile '{doc['name']}' is the policy of group"
                                 f"{'s' if len(users) > 1 else ''} "
                                 f"{', '.join(repr(u) for u in users)}; change "
                                 f"{'their' if len(users) > 1 else 'its'} policy first.",
                                 field="profile")
            tx.remove(tx.profiles, [doc.doc_id])
            tx.log(audit)

    # -- audit ------------------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> None:
        """Append one audit entry."""
        with self._writing() as tx:
            tx.log(entry)

    def list_audit(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, newest first (at most ``limit`` of them)."""
        with self._reading() as tx:
            docs = tx.audit.all()
        # Sort on the timestamp alone and build models only for the entries returned.
        docs.sort(key=lambda doc: (_parse_time(doc.get("at")), doc.doc_id), reverse=True)
        if limit is not None:
            docs = docs[: max(limit, 0)]
        return [self._parse(AuditEntry, doc) for doc in docs]

    def audit_chain(self) -> auditchain.AuditChain:
        """The whole audit log oldest first with its hash links (see
        :func:`tui_csr.store.auditchain.verify_audit_chain`)."""
        with self._reading() as tx:
            return auditchain.chain_from_docs(tx.raw(_AUDIT).values())

    # -- intents (write-ahead records of key generations) -----------------------------------

    def open_intent(self, intent: Intent, audit: AuditEntry | None = None) -> None:
        """Durably record ``intent`` before its key pair is generated (see
        :class:`~tui_csr.core.models.Intent`). Hold its lease (:meth:`intent_lease`) first.

        Raises InputError (field ``key_id``) when a request or another open intent already uses
        its CKA_ID, so the caller can choose another id before anything is on the token.
        """
        self._open_intents([intent], audit, "open_intent")

    def open_intents(self, intents: Sequence[Intent], audit: AuditEntry | None = None) -> None:
        """:meth:`open_intent` for several intents in one durable write (a batch opens a chunk
        of requests at once): all or none. InputError (``key_id``) also when two of them share
        a CKA_ID. Hold every lease first."""
        self._open_intents(intents, audit, "open_intents")

    def _open_intents(self, intents: Sequence[Intent], audit: AuditEntry | None,
                      op: str) -> None:
        if any(intent.state is not IntentState.OPEN for intent in intents):
            raise ValueError("only an open intent can be recorded")
        if not intents:
            return
        with self._writing(op) as tx:
            taken = {k for doc in tx.raw(_INTENTS).values()
                     if doc.get("state") == IntentState.OPEN.value
                     for k in (doc.get("key_id"), doc.get("final_key_id")) if k}
            ids = {doc.get("id") for doc in tx.raw(_INTENTS).values()}
            for intent in intents:
                if intent.id in ids:
                    raise InputError(f"An intent with id '{intent.id}' already exists.",
                                     field="id")
                ids.add(intent.id)
                wanted = set(intent.key_ids)
                if wanted & taken:
                    raise InputError(f"The key id {intent.key_id} is taken by a key pair being "
                                     "generated.", field="key_id")
                taken |= wanted
            new = {k for intent in intents for k in intent.key_ids}
            for doc in tx.raw(_REQUESTS).values():
                if doc.get("key_id") in new:
                    raise InputError(f"The key id {doc.get('key_id')} is taken by request "
                                     f"'{doc.get('label')}'.", field="key_id")
            for intent in intents:
                tx.insert(tx.intents, intent.to_doc())
            # Closed intents only explain the past (the audit trail keeps that too): the ones
            # closed long ago go in this same write, so the table does not grow for ever.
            cutoff = _iso_z(utcnow() - INTENTS_KEPT)
            old = [int(key) for key, doc in tx.raw(_INTENTS).items()
                   if doc.get("state") != IntentState.OPEN.value
                   and isinstance(doc.get("closed"), str) and doc["closed"] < cutoff]
            if old:
                tx.remove(tx.intents, old)
            tx.log(audit)

    def set_intent_target(self, intent_id: str, key_id: str) -> Intent:
        """Record the CKA_ID (hex) the open intent's pair is about to be rewritten to. Called
        before the rewrite: a crash during it leaves objects under either id, both known."""
        with self._writing("set_intent_target") as tx:
            doc = self._open_intent_doc(tx, intent_id)
            tx.update(tx.intents, {"final_key_id": key_id.lower()}, [doc.doc_id])
            return self._parse(Intent, {**doc, "final_key_id": key_id.lower()})

    def close_intent(self, intent_id: str, state: IntentState,
                     audit: AuditEntry | None = None) -> Intent:
        """Close an open intent whose pair was confirmed destroyed (``DESTROYED``), or never
        made (``ABANDONED``); a request closes its own in :meth:`add_request`. Closing an
        intent again in the same state returns it unchanged."""
        if state not in (IntentState.DESTROYED, IntentState.ABANDONED):
            raise ValueError(f"an intent is not closed as {state} by close_intent")
        with self._writing("close_intent") as tx:
            doc = tx.intent_doc(intent_id)
            if doc is not None and doc.get("state") == state.value:
                return self._parse(Intent, doc)
            closed = self._close_in(tx, intent_id, state)
            tx.log(audit)
        leases.discard(self._leases, intent_id)  # a dead holder's file, if any
        return closed

    def _close_in(self, tx: _Tx, intent_id: str, state: IntentState,
                  request_id: str | None = None, final_key_id: str | None = None) -> Intent:
        doc = self._open_intent_doc(tx, intent_id)
        fields = {"state": state.value, "closed": _iso_z(utcnow()), "request_id": request_id}
        if final_key_id is not None and final_key_id.lower() != doc.get("key_id"):
            fields["final_key_id"] = final_key_id.lower()  # the id the record names (rewritten)
        tx.update(tx.intents, fields, [doc.doc_id])
        return self._parse(Intent, {**doc, **fields})

    def _open_intent_doc(self, tx: _Tx, intent_id: str) -> Document:
        doc = tx.intent_doc(intent_id)
        if doc is None:
            raise NotFoundError(f"No intent has the id '{intent_id}'.", field="intent")
        if doc.get("state") != IntentState.OPEN.value:
            raise StoreError(f"The intent {intent_id} (key '{doc.get('label')}') was already "
                             f"closed ({doc.get('state')}), by another process.")
        return doc

    def get_intent(self, intent_id: str) -> Intent:
        """The intent with this id."""
        with self._reading() as tx:
            doc = tx.intent_doc(intent_id)
            if doc is None:
                raise NotFoundError(f"No intent has the id '{intent_id}'.", field="intent")
            return self._parse(Intent, doc)

    def list_intents(self, state: IntentState | None = IntentState.OPEN) -> list[Intent]:
        """Intents in this state (``None``: all), oldest first."""
        want = None if state is None else IntentState(state).value
        with self._reading() as tx:
            rows = [(self._parse(Intent, doc), int(key)) for key, doc in tx.raw(_INTENTS).items()
                    if want is None or doc.get("state") == want]
        rows.sort(key=lambda row: (row[0].created, row[1]))
        return [intent for intent, _ in rows]

    def intent_lease(self, intent_id: str) -> leases.Lease:
        """Take the lease of ``intent_id`` (see :mod:`tui_csr.store.leases`), for a ``with``
        block or until ``release()``: before :meth:`open_intent`, kept until the intent is
        closed or the work on it ends. Raises :class:`~tui_csr.store.leases.LeaseHeldError`
        when someone else holds it."""
        return leases.hold(self._leases, intent_id)

    def intent_in_progress(self, intent_id: str) -> bool:
        """True while some process (or task) holds the intent's lease: its pair is being made
        or handled now, and is nobody's orphan."""
        return leases.is_held(self._leases, intent_id)

    # -- identity ---------------------------------------------------------------------------

    def acting_user(self) -> str | None:
        """Who the store says is acting: None for this store (the OS user acts)."""
        return None

    def administers(self, user: str) -> bool | None:
        """Whether the store itself says ``user`` administers groups: None for this store (one
        host's files: the settings decide, see :meth:`Settings.is_admin`)."""
        return None

    def identity(self) -> str:
        """This store's id (a UUID made on first use and kept in the ``meta`` table).

        Intents carry it, and so did the token markers of earlier versions: an orphan scan
        claims only the keys made for this store, not those of another data folder that shares
        the token."""
        with self._reading() as tx:
            for doc in tx.raw(_META).values():
                if isinstance(doc.get("store_id"), str):
                    return doc["store_id"]
        with self._writing() as tx:
            for doc in tx.raw(_META).values():  # another process may have made it meanwhile
                if isinstance(doc.get("store_id"), str):
                    return doc["store_id"]
            store_id = uuid.uuid4().hex
            tx.insert(tx.meta, {"store_id": store_id})
            return store_id
