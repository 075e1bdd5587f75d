"""Request profiles in the PostgreSQL store (schema version 2): the same rules as the TinyDB
store's ``profiles`` table; changes need the admin role (the database's grants)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui_csr.core.models import AuditEntry
from tui_csr.errors import InputError
from tui_csr.store import refusals
from tui_csr.store.pg_session import PgSession, _fold

if TYPE_CHECKING:
    import psycopg

    from tui_csr.core.profiles import Profile


def _profile_doc(cur: psycopg.Cursor, name: str) -> dict[str, Any] | None:
    cur.execute("SELECT doc FROM tui_csr.profiles WHERE name_key = %s", (_fold(name),))
    row = cur.fetchone()
    return dict(row[0]) if row else None


def add_profile(db: PgSession, profile: Profile, audit: AuditEntry | None = None) -> None:
    """Store a new request profile (names unique ignoring case; administrators only)."""
    from psycopg.types.json import Jsonb

    with db._writing("create request profiles") as cur:
        existing = _profile_doc(cur, profile.name)
        if existing is not None:
            raise refusals.profile_exists(existing['name'])
        cur.execute("INSERT INTO tui_csr.profiles (name_key, name, version, doc) "
                    "VALUES (%s, %s, %s, %s)", (_fold(profile.name), profile.name,
                                                profile.version, Jsonb(profile.to_doc())))
        db._log(cur, audit)


def get_profile(db: PgSession, name: str) -> Profile:
    """The stored profile with this name (any case)."""
    from tui_csr.core.profiles import Profile

    with db._reading() as cur:
        doc = _profile_doc(cur, name)
    if doc is None:
        raise refusals.no_profile(name)
    return db._parse(Profile, doc)


def list_profiles(db: PgSession) -> list[Profile]:
    """Stored profiles, by name."""
    from tui_csr.core.profiles import Profile

    with db._reading() as cur:
        cur.execute("SELECT doc FROM tui_csr.profiles")
        profiles = [db._parse(Profile, row[0]) for row in cur.fetchall()]
    return sorted(profiles, key=lambda p: p.name)


def update_profile(db: PgSession, profile: Profile, *, expected_version: int,
                   audit: AuditEntry | None = None) -> Profile:
    """Replace a stored profile whose version is still ``expected_version``."""
    from psycopg.types.json import Jsonb

    with db._writing("edit request profiles") as cur:
        doc = _profile_doc(cur, profile.name)
        if doc is None:
            raise refusals.no_profile(profile.name)
        if doc.get("version") != expected_version:
            raise refusals.profile_changed(profile.name, doc.get('version'))
        cur.execute("UPDATE tui_csr.profiles SET version = %s, doc = %s WHERE name_key = %s",
                    (profile.version, Jsonb(profile.to_doc()), _fold(profile.name)))
        db._log(cur, audit)
    return profile


def remove_profile(db: PgSession, name: str, audit: AuditEntry | None = None) -> None:
    """Remove a stored profile that no group names as its policy."""
    with db._writing("remove request profiles") as cur:
        doc = _profile_doc(cur, name)
        if doc is None:
            raise refusals.no_profile(name)
        cur.execute("SELECT name, doc->>'policy' FROM tui_csr.groups")
        users = sorted(name for name, policy in cur.fetchall()
                       if (policy or "").strip() == doc["name"])
        if users:
            raise InputError(f"Profile '{doc['name']}' is the policy of group"
                             f"{'s' if len(users) > 1 else ''} "
                             f"{', '.join(repr(u) for u in users)}; change "
                             f"{'their' if len(users) > 1 else 'its'} policy first.",
                             field="profile")
        cur.execute("DELETE FROM tui_csr.profiles WHERE name_key = %s", (_fold(name),))
        db._log(cur, audit)
