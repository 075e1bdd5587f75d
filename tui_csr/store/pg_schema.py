"""The PostgreSQL store's schema: versioned migrations, ``store init`` and ``store upgrade``.

Everything lives in the schema ``tui_csr``, owned by the role ``tui_csr_owner`` (NOLOGIN:
nobody works as it). Three roles carry the rules, so that going around tui-csr with ``psql``
does not go around them:

- the **user role** (``tui_csr_user`` unless configured): reads everything, writes requests and
  intents, appends audit entries through ``tui_csr.append_audit()`` only;
- the **admin role** (``tui_csr_admin`` unless configured; a member of the user role): also
  creates, changes and removes groups and profiles. A superuser counts as an administrator;
- **nobody** may UPDATE, DELETE or TRUNCATE the audit log: no role has the grant (the owner
  revoked its own), and a trigger refuses it even to a superuser who has not first disabled
  the trigger. Each entry carries the hash of the previous one (see
  :mod:`tui_csr.store.auditchain`, whose :func:`entry_hash` this SQL reproduces), and the
  newest (seq, hash) is kept in ``audit_head``.

People get in by membership: ``GRANT tui_csr_user TO alice; GRANT tui_csr_admin TO bob;``.
``meta.schema_version`` says which migrations ran; a program older than the schema refuses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_csr.errors import PermissionDeniedError, StoreError

if TYPE_CHECKING:
    import psycopg

SCHEMA = "tui_csr"
OWNER_ROLE = "tui_csr_owner"
#: (class id, object id) of the advisory lock ``init``/``upgrade`` hold ('tcsr', 2).
_MIGRATION_LOCK = (0x74637372, 2)


@dataclass(frozen=True)
class Roles:
    """The role names a store was made with (kept in ``meta``)."""

    admin: str
    user: str


_M1 = """
CREATE TABLE tui_csr.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE tui_csr.requests (
    seq bigserial NOT NULL,
    id text PRIMARY KEY,
    label text NOT NULL CONSTRAINT requests_label_key UNIQUE,
    token_label text NOT NULL,
    key_id text NOT NULL,
    status text NOT NULL,
    created timestamptz NOT NULL,
    group_keys text[] NOT NULL,
    doc jsonb NOT NULL);
CREATE INDEX requests_status ON tui_csr.requests (status);
CREATE INDEX requests_key_id ON tui_csr.requests (key_id);
CREATE INDEX requests_group_keys ON tui_csr.requests USING gin (group_keys);
CREATE TABLE tui_csr.groups (name_key text PRIMARY KEY, name text NOT NULL, doc jsonb NOT NULL);
CREATE TABLE tui_csr.intents (
    seq bigserial NOT NULL,
    id text PRIMARY KEY,
    state text NOT NULL,
    key_id text NOT NULL,
    final_key_id text,
    created timestamptz NOT NULL,
    doc jsonb NOT NULL);
CREATE INDEX intents_state ON tui_csr.intents (state);
CREATE TABLE tui_csr.audit (
    seq bigint PRIMARY KEY,
    at text NOT NULL,
    action text NOT NULL,
    actor text NOT NULL,
    subject text NOT NULL,
    detail text NOT NULL,
    prev text NOT NULL,
    hash text NOT NULL);
CREATE TABLE tui_csr.audit_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL,
    hash text NOT NULL);
INSERT INTO tui_csr.audit_head VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION tui_csr.audit_field(value text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT octet_length(value)::text || ':' || value || E'\\n' $$;

CREATE FUNCTION tui_csr.is_admin(who name) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = who AND rolsuper)
              OR pg_has_role(who, (SELECT value FROM tui_csr.meta
                                   WHERE key = 'admin_role')::name, 'MEMBER') $$;

CREATE FUNCTION tui_csr.append_audit(p_at text, p_action text, p_actor text, p_subject text,
                                     p_detail text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
    AS $$
DECLARE
    head record;
    n bigint;
    digest text;
BEGIN
    -- An entry names its author: the session's own role, a role it belongs to, or (for an
    -- administrator copying an older log into the store) anyone.
    IF p_actor IS DISTINCT FROM session_user::text
       AND NOT tui_csr.is_admin(session_user)
       AND NOT EXISTS (SELECT 1 FROM pg_roles
                       WHERE rolname = p_actor AND pg_has_role(session_user, oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'role % may not write audit entries in the name of %',
            session_user, p_actor USING ERRCODE = '42501';
    END IF;
    SELECT h.seq, h.hash INTO head FROM tui_csr.audit_head h FOR UPDATE;
    n := head.seq + 1;
    digest := encode(sha256(convert_to('tui-csr-audit-v1' || E'\\n'
        || tui_csr.audit_field(n::text) || tui_csr.audit_field(head.hash)
        || tui_csr.audit_field(coalesce(p_at, '')) || tui_csr.audit_field(coalesce(p_action, ''))
        || tui_csr.audit_field(coalesce(p_actor, ''))
        || tui_csr.audit_field(coalesce(p_subject, ''))
        || tui_csr.audit_field(coalesce(p_detail, '')), 'UTF8')), 'hex');
    INSERT INTO tui_csr.audit VALUES (n, coalesce(p_at, ''), coalesce(p_action, ''),
        coalesce(p_actor, ''), coalesce(p_subject, ''), coalesce(p_detail, ''), head.hash, digest);
    UPDATE tui_csr.audit_head SET seq = n, hash = digest;
    RETURN n;
END $$;

-- `store migrate`: an empty store takes over the id of the TinyDB store it is copied from, so
-- the keys that store made on a shared token stay recognised as this store's.
CREATE FUNCTION tui_csr.adopt_store_id(p_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
    AS $$
BEGIN
    IF NOT tui_csr.is_admin(session_user) THEN
        RAISE EXCEPTION 'only an administrator may migrate a store into this one'
            USING ERRCODE = '42501';
    END IF;
    IF EXISTS (SELECT 1 FROM tui_csr.requests) OR EXISTS (SELECT 1 FROM tui_csr.intents)
       OR EXISTS (SELECT 1 FROM tui_csr.audit) THEN
        RAISE EXCEPTION 'the store is not empty' USING ERRCODE = '55000';
    END IF;
    UPDATE tui_csr.meta SET value = p_id WHERE key = 'store_id';
END $$;
REVOKE ALL ON FUNCTION tui_csr.adopt_store_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tui_csr.adopt_store_id(text) TO {admin};

CREATE FUNCTION tui_csr.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the tui-csr audit log is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON tui_csr.audit
    FOR EACH ROW EXECUTE FUNCTION tui_csr.refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON tui_csr.audit
    FOR EACH STATEMENT EXECUTE FUNCTION tui_csr.refuse_change();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR TRUNCATE ON tui_csr.audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION tui_csr.refuse_change();

REVOKE ALL ON SCHEMA tui_csr FROM PUBLIC;
GRANT USAGE ON SCHEMA tui_csr TO {user}, {admin};
GRANT SELECT ON ALL TABLES IN SCHEMA tui_csr TO {user};
GRANT INSERT, UPDATE, DELETE ON tui_csr.requests, tui_csr.intents TO {user};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA tui_csr TO {user};
GRANT INSERT, UPDATE, DELETE ON tui_csr.groups TO {admin};
REVOKE ALL ON FUNCTION tui_csr.append_audit(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tui_csr.append_audit(text, text, text, text, text) TO {user};
REVOKE UPDATE, DELETE, TRUNCATE ON tui_csr.audit FROM tui_csr_owner;
REVOKE DELETE, TRUNCATE ON tui_csr.audit_head FROM tui_csr_owner;
"""

_M2 = """
CREATE TABLE tui_csr.profiles (
    name_key text PRIMARY KEY,
    name text NOT NULL,
    version integer NOT NULL,
    doc jsonb NOT NULL);
GRANT SELECT ON tui_csr.profiles TO {user};
GRANT INSERT, UPDATE, DELETE ON tui_csr.profiles TO {admin};
"""

#: Version -> the SQL that brings a store from version - 1 to it. Never edit a released one:
#: add the next.
MIGRATIONS: dict[int, str] = {1: _M1, 2: _M2}
SCHEMA_VERSION = max(MIGRATIONS)
"""The schema version this program reads and writes."""


def _run(cur: psycopg.Cursor, script: str, roles: Roles) -> None:
    from psycopg import sql

    text = script.replace("{user}", "\0u").replace("{admin}", "\0a")
    for statement in _statements(text):
        parts = statement.split("\0")
        composed: list[sql.Composable] = [sql.SQL(parts[0])]
        for part in parts[1:]:
            role = roles.user if part[0] == "u" else roles.admin
            composed += [sql.Identifier(role), sql.SQL(part[1:])]
        cur.execute(sql.Composed(composed))


def _statements(script: str) -> list[str]:
    """Split on ``;`` at the end of a line outside ``$$`` bodies."""
    out, current, in_body = [], [], False
    for line in script.splitlines():
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            if statement:
                out.append(statement)
            current = []
    if "".join(current).strip():
        out.append("\n".join(current).strip())
    return out


def stored_version(cur: psycopg.Cursor) -> int | None:
    """The schema version of the store, or None when it has no tui-csr schema."""
    cur.execute("SELECT to_regclass('tui_csr.meta') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        return None
    cur.execute("SELECT value FROM tui_csr.meta WHERE key = 'schema_version'")
    row = cur.fetchone()
    return int(row[0]) if row else None


def version_problem(version: int | None, where: str) -> str | None:
    """Why a store of schema ``version`` cannot be used by this program, or None."""
    if version is None:
        return (f"The PostgreSQL store ({where}) has no tui-csr schema yet; an administrator "
                "creates it once with `tui-csr store init`.")
    if version > SCHEMA_VERSION:
        return (f"The PostgreSQL store ({where}) has schema version {version}, newer than this "
                f"tui-csr understands ({SCHEMA_VERSION}); install a newer tui-csr on this host.")
    if version < SCHEMA_VERSION:
        return (f"The PostgreSQL store ({where}) has schema version {version}, older than this "
                f"tui-csr needs ({SCHEMA_VERSION}); an administrator runs `tui-csr store "
                "upgrade`.")
    return None


def _ensure_role(cur: psycopg.Cursor, name: str) -> bool:
    from psycopg import sql

    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    if cur.fetchone():
        return False
    cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    return True


def _require_superuser(cur: psycopg.Cursor, where: str, doing: str) -> None:
    cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    if not row or not row[1]:
        who = row[0] if row else "?"
        raise PermissionDeniedError(
            f"`tui-csr store {doing}` needs a PostgreSQL superuser (it creates the roles and the "
            f"schema's owner); the role '{who}' on {where} is not one.", field="store")


def init(conn: psycopg.Connection, roles: Roles, where: str,
         target: int = SCHEMA_VERSION, say: Callable[[str], None] = lambda _: None) -> int:
    """Create the roles that are missing and the schema at version ``target`` (default: the
    newest). Returns the version. StoreError when the store exists already."""
    with conn.transaction(), conn.cursor() as cur:
        _require_superuser(cur, where, "init")
        cur.execute("SHOW server_encoding")
        row = cur.fetchone()
        if not row or row[0].upper() not in ("UTF8", "UTF-8"):
            raise StoreError(f"The database ({where}) has the encoding {row[0] if row else '?'}; "
                             "tui-csr needs a UTF8 database (CREATE DATABASE ... ENCODING "
                             "'UTF8').")
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", _MIGRATION_LOCK)
        version = stored_version(cur)
        if version is not None:
            raise StoreError(f"The PostgreSQL store ({where}) exists already (schema version "
                             f"{version}); `tui-csr store upgrade` brings it up to date.")
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,))
        if cur.fetchone():
            raise StoreError(f"The database ({where}) has a schema '{SCHEMA}' that tui-csr did "
                             "not make (it has no meta table); drop or rename it first.")
        for name in (OWNER_ROLE, roles.user, roles.admin):
            if _ensure_role(cur, name):
                say(f"Created the role {name} (NOLOGIN).")
        from psycopg import sql

        cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(roles.user),
                                                      sql.Identifier(roles.admin)))
        cur.execute(sql.SQL("CREATE SCHEMA tui_csr AUTHORIZATION {}").format(
            sql.Identifier(OWNER_ROLE)))
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        for step in range(1, target + 1):
            _run(cur, MIGRATIONS[step], roles)
        cur.executemany("INSERT INTO tui_csr.meta (key, value) VALUES (%s, %s)", [
            ("schema_version", str(target)), ("store_id", uuid.uuid4().hex),
            ("admin_role", roles.admin), ("user_role", roles.user)])
        cur.execute("RESET ROLE")
    return target


def upgrade(conn: psycopg.Connection, where: str,
            target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Run the migrations the store lacks, up to ``target``; returns (before, after)."""
    from psycopg import sql

    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT rolsuper OR pg_has_role(current_user, %s, 'MEMBER') FROM pg_roles "
                    "WHERE rolname = current_user", (OWNER_ROLE,))
        row = cur.fetchone()
        if not row or not row[0]:
            raise PermissionDeniedError(
                f"`tui-csr store upgrade` needs a PostgreSQL superuser or a member of "
                f"{OWNER_ROLE}; this role on {where} is neither.", field="store")
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", _MIGRATION_LOCK)
        before = stored_version(cur)
        if before is None:
            raise StoreError(version_problem(None, where) or "")
        if before > SCHEMA_VERSION:
            raise StoreError(version_problem(before, where) or "")
        cur.execute("SELECT key, value FROM tui_csr.meta WHERE key IN ('admin_role', 'user_role')")
        stored: dict[str, str] = dict(cur.fetchall())
        roles = Roles(admin=stored["admin_role"], user=stored["user_role"])
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        for step in range(before + 1, target + 1):
            _run(cur, MIGRATIONS[step], roles)
        if target > before:
            cur.execute("UPDATE tui_csr.meta SET value = %s WHERE key = 'schema_version'",
                        (str(target),))
        cur.execute("RESET ROLE")
    return before, max(before, target)
