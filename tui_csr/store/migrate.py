"""``tui-csr store migrate``: copy a TinyDB store into an empty PostgreSQL store.

The source is read once, under its shared lock, and never written (not even the store id it may
lack). Its audit log must verify first: a copy would otherwise give a tampered log a fresh,
valid chain. Everything is then written in one PostgreSQL transaction, which also reads every
record back and compares it with the source before committing: on any difference nothing is
kept. The PostgreSQL store takes over the TinyDB store's id, so keys it made on a shared token
are still recognised (orphan scans, intents).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_csr.core.models import Group, Intent, Request
from tui_csr.errors import StoreError
from tui_csr.store.auditchain import chain_from_docs, verify_audit_chain
from tui_csr.store.lock import store_lock
from tui_csr.store.pg_session import _fold
from tui_csr.store.postgres import PostgresStore
from tui_csr.store.storage import AtomicJSONStorage

_AUDIT_FIELDS = ("at", "action", "user", "subject", "detail")


@dataclass(frozen=True)
class MigrationReport:
    """What was copied."""

    requests: int
    groups: int
    intents: int
    audit: int
    profiles: int
    store_id: str | None

    def summary(self) -> str:
        """One line for the user."""
        profiles = f", {self.profiles} profiles" if self.profiles else ""
        return (f"{self.requests} requests, {self.groups} groups, {self.intents} intents, "
                f"{self.audit} audit entries{profiles}")


def _ordered(table: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [doc for _, doc in sorted((table or {}).items(), key=lambda item: int(item[0]))]


def read_source(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The TinyDB store's tables as stored (StoreError when it is missing or unreadable)."""
    if not path.exists():
        raise StoreError(f"There is no TinyDB store at {path}; nothing to migrate.")
    with store_lock(path, exclusive=False):
        data = AtomicJSONStorage(path).read()
    return data or {}


def migrate(source_path: Path, target: PostgresStore) -> MigrationReport:
    """Copy the TinyDB store at ``source_path`` into the empty store ``target``; verify."""
    from psycopg.types.json import Jsonb

    data = read_source(Path(source_path))
    where = f"the TinyDB store {source_path}"

    def parse(cls: Any, doc: dict[str, Any]) -> Any:
        try:
            return cls.from_doc(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = doc.get("label") or doc.get("name") or doc.get("id")
            raise StoreError(f"{where.capitalize()} has a damaged record ({name}): {exc}; "
                             "nothing was copied.") from exc

    requests: list[Request] = [parse(Request, d) for d in _ordered(data.get("requests"))]
    groups: list[Group] = [parse(Group, d) for d in _ordered(data.get("groups"))]
    intents: list[Intent] = [parse(Intent, d) for d in _ordered(data.get("intents"))]
    profile_docs = _ordered(data.get("profiles"))
    profiles: list[Any] = []
    if profile_docs:
        from tui_csr.core.profiles import Profile

        profiles = [parse(Profile, d) for d in profile_docs]
    chain = chain_from_docs(_ordered(data.get("audit")))
    problem = verify_audit_chain(chain)
    if problem:
        raise StoreError(f"{where.capitalize()} was not copied: {problem}")
    audit = [tuple(str(link.doc.get(f) or "") for f in _AUDIT_FIELDS) for link in chain.links]
    store_id = next((d["store_id"] for d in (data.get("meta") or {}).values()
                     if isinstance(d.get("store_id"), str)), None)

    with target._writing("migrate a store into this one") as cur:
        counts = {}
        for table in ("requests", "groups", "intents", "audit", "profiles"):
            cur.execute(f"SELECT count(*) FROM tui_csr.{table}")
            row = cur.fetchone()
            counts[table] = int(row[0]) if row else 0
        if any(counts.values()):
            held = ", ".join(f"{n} {t}" for t, n in counts.items() if n)
            raise StoreError(f"The PostgreSQL store ({target.where}) is not empty ({held}); "
                             "migrate only into a new store.")
        if store_id:
            cur.execute("SELECT tui_csr.adopt_store_id(%s)", (store_id,))
        cur.executemany(
            "INSERT INTO tui_csr.requests (id, label, token_label, key_id, status, created, "
            "group_keys, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [target._request_row(r) for r in requests])
        cur.executemany("INSERT INTO tui_csr.groups (name_key, name, doc) VALUES (%s, %s, %s)",
                        [(_fold(g.name), g.name, Jsonb(g.to_doc())) for g in groups])
        cur.executemany("INSERT INTO tui_csr.intents (id, state, key_id, final_key_id, created, "
                        "doc) VALUES (%s, %s, %s, %s, %s, %s)",
                        [(i.id, i.state.value, i.key_id, i.final_key_id, i.created,
                          Jsonb(i.to_doc())) for i in intents])
        cur.executemany("INSERT INTO tui_csr.profiles (name_key, name, version, doc) "
                        "VALUES (%s, %s, %s, %s)",
                        [(_fold(p.name), p.name, p.version, Jsonb(p.to_doc())) for p in profiles])
        cur.executemany("SELECT tui_csr.append_audit(%s, %s, %s, %s, %s)", audit)

        # Read everything back inside the transaction: a difference rolls it all back.
        def back(query: str) -> list[Any]:
            cur.execute(query)
            return [row[0] for row in cur.fetchall()]

        checks = [
            ("requests", [r.to_doc() for r in requests],
             back("SELECT doc FROM tui_csr.requests ORDER BY seq")),
            ("groups", [g.to_doc() for g in groups],
             back("SELECT doc FROM tui_csr.groups ORDER BY name_key")),
            ("intents", [i.to_doc() for i in intents],
             back("SELECT doc FROM tui_csr.intents ORDER BY seq")),
            ("profiles", [p.to_doc() for p in profiles],
             back("SELECT doc FROM tui_csr.profiles ORDER BY name_key")),
        ]
        checks[1] = ("groups", sorted(checks[1][1], key=lambda d: _fold(d["name"])), checks[1][2])
        checks[3] = ("profiles", sorted(checks[3][1], key=lambda d: _fold(d["name"])),
                     checks[3][2])
        cur.execute("SELECT at, action, actor, subject, detail FROM tui_csr.audit ORDER BY seq")
        checks.append(("audit entries", [list(a) for a in audit],
                       [list(row) for row in cur.fetchall()]))
        for what, expected, found in checks:
            if len(expected) != len(found):
                raise StoreError(f"The copy into {target.where} was rolled back: it holds "
                                 f"{len(found)} {what} where the source has {len(expected)}.")
            for number, (want, got) in enumerate(zip(expected, found, strict=True), 1):
                if want != got:
                    raise StoreError(f"The copy into {target.where} was rolled back: {what} "
                                     f"number {number} differs from the source.")
    return MigrationReport(len(requests), len(groups), len(intents), len(audit), len(profiles),
                           store_id)
