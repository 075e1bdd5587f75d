"""The PostgreSQL store's connection to its database: transactions, the store-wide write lock,
errors as one sentence naming the database, identities, and the intents' leases.

:class:`PgSession` is the layer :class:`tui_csr.store.postgres.PostgresStore` builds its tables
on: one autocommit connection guarded by a lock (one transaction at a time per process), a
read in a REPEATABLE READ READ ONLY transaction (one snapshot), a write in a READ COMMITTED
transaction that first takes the store-wide advisory lock (``pg_advisory_xact_lock``): it then
sees every change committed before it and none can slip in before it commits, so no update is
lost between hosts, as the TinyDB file lock serialises the processes of one host.

An intent's lease (:class:`AdvisoryLease`) is a session-level advisory lock on a connection of
its own: the server drops it when the holder's connection goes, whichever host it ran on.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tui_csr.core.models import AuditEntry
from tui_csr.errors import InputError, PermissionDeniedError, StoreError, TuiCsrError
from tui_csr.store import dsn as dsn_mod
from tui_csr.store import leases, pg_schema

if TYPE_CHECKING:
    import psycopg

WRITE_LOCK_TIMEOUT = 30
"""Seconds a write waits for another session's (as the TinyDB store's file lock)."""
#: (class id, object id) of the store-wide write lock ('tcsr', 1).
WRITE_LOCK = (0x74637372, 1)
CHANGES_CHANNEL = "tui_csr_changed"
"""The NOTIFY channel every committed write signals (payload: what it did, e.g. "create
certificate groups"; "write" for most)."""
_Model = TypeVar("_Model")


def _fold(name: object) -> str:
    return name.strip().casefold() if isinstance(name, str) else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


def lease_key(intent_id: str) -> int:
    """The advisory lock key (signed 64-bit) of an intent's lease."""
    digest = hashlib.sha256(b"tui-csr-lease:" + intent_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLease(leases.Lease):
    """An intent's lease: a session advisory lock on a connection of its own."""

    def __init__(self, conn: psycopg.Connection, intent_id: str) -> None:  # noqa: D107
        # Not the file lease's __init__: nothing is made on disk.
        self.key = lease_key(intent_id)
        self.path = Path(f"pg_advisory_lock/{self.key}")
        self._fd = None
        self._conn: psycopg.Connection | None = conn

    def release(self) -> None:
        """Unlock and close the lease's connection (idempotent). Unlocked first: a closed
        connection's server process lets go of its locks only when it has exited."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a broken connection has lost the lock already
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        with contextlib.suppress(Exception):
            conn.close()


class PgSession:
    """One process's connection to a tui-csr database, and how it runs transactions."""

    def __init__(self, conninfo: str, *, admin_role: str = "tui_csr_admin",
                 user_role: str = "tui_csr_user", connect: bool = True) -> None:
        problem = dsn_mod.password_problem(conninfo)
        if problem:
            raise InputError(f"The store DSN is refused: {problem}.", field="store")
        self.conninfo = conninfo
        self.where = dsn_mod.describe(conninfo)
        self.admin_role = admin_role
        self.user_role = user_role
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._user: str | None = None
        self.schema_version: int | None = None
        if connect:
            self.check_schema()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    def describe(self) -> str:
        """Where the store is (database and host; never a secret)."""
        return f"PostgreSQL {self.where}"

    # -- connections ------------------------------------------------------------------------

    def connect(self, **extra: Any) -> psycopg.Connection:
        """A new autocommit connection (StoreError, naming the host, when it fails)."""
        try:
            import psycopg
        except ImportError:
            raise StoreError("The PostgreSQL store needs psycopg 3, which is not installed: "
                             "pip install 'tui-csr[postgresql]'.") from None

        params: dict[str, Any] = {"autocommit": True, "application_name": "tui-csr"}
        if "connect_timeout" not in dsn_mod.parameters(self.conninfo):
            params["connect_timeout"] = 10
        params.update(extra)
        try:
            return psycopg.connect(self.conninfo, **params)
        except psycopg.Error as exc:
            raise StoreError(f"The PostgreSQL store ({self.where}) is unreachable: "
                             f"{_first_line(exc)}.") from None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
            if self._user is None:  # for messages until current_user has been asked
                self._user = self._conn.info.user
        return self._conn

    def close(self) -> None:
        """Close the connection (the next call opens another)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def check_schema(self) -> int:
        """The store's schema version; StoreError when this program cannot use it."""
        with self._reading() as cur:
            cur.execute("SELECT current_user")
            row = cur.fetchone()
            self._user = str(row[0]) if row else None
            version = pg_schema.stored_version(cur)
        problem = pg_schema.version_problem(version, self.where)
        if problem:
            raise StoreError(problem)
        self.schema_version = version
        return version  # type: ignore[return-value]

    @contextmanager
    def _errors(self, what: str = "") -> Iterator[None]:
        """psycopg's errors as the program's: one sentence naming the database."""
        import psycopg
        from psycopg import errors as pg

        try:
            yield
        except TuiCsrError:
            raise
        except pg.InsufficientPrivilege as exc:
            if not what:
                raise PermissionDeniedError(
                    f"The database role '{self._user or '?'}' may not use the tui-csr store on "
                    f"{self.where}; an administrator grants it with `GRANT {self.user_role} TO "
                    f"{self._user or 'ROLE'}` (PostgreSQL: {_first_line(exc)}).") from None
            doing = what
            raise PermissionDeniedError(
                f"Only an administrator can {doing}; the database role '{self._user or '?'}' "
                f"is not a member of {self.admin_role} (PostgreSQL: {_first_line(exc)}).",
                field="group" if "group" in doing else None) from None
        except pg.UniqueViolation as exc:
            constraint = getattr(exc.diag, "constraint_name", "") or ""
            if "label" in constraint:
                raise InputError("A request with this label already exists.",
                                 field="label") from None
            raise InputError(f"The record exists already ({_first_line(exc)}).") from None
        except pg.LockNotAvailable:
            raise StoreError(f"The PostgreSQL store ({self.where}) is busy: another session has "
                             f"held its write lock for over {WRITE_LOCK_TIMEOUT} s. Try again, or "
                             "look for a stuck tui-csr session (pg_stat_activity).") from None
        except psycopg.OperationalError as exc:
            # The connection may be gone (server stopped, network): the next call reconnects.
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self._conn = None
            raise StoreError(f"The PostgreSQL store ({self.where}) is unreachable: "
                             f"{_first_line(exc)}.") from None
        except psycopg.Error as exc:
            raise StoreError(f"The PostgreSQL store ({self.where}) refused the operation: "
                             f"{_first_line(exc)}.") from None

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        """A transaction and its cursor. A connection found dead at BEGIN (the server was
        restarted, an idle session was cut) is replaced once: nothing had been done on it yet.
        A connection lost later in the transaction is a StoreError (see :meth:`_errors`)."""
        import psycopg

        with contextlib.ExitStack() as stack:
            conn = self._connection()
            try:
                stack.enter_context(conn.transaction())
            except psycopg.OperationalError:
                if not (conn.closed or conn.broken):
                    raise
                self._conn = None
                conn = self._connection()
                stack.enter_context(conn.transaction())
            yield stack.enter_context(conn.cursor())

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Cursor]:
        with self._lock, self._errors(), self._transaction() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cur

    @contextmanager
    def _writing(self, what: str = "") -> Iterator[psycopg.Cursor]:
        """One serialised read-modify-write transaction; ``what`` names it for refusals."""
        with self._lock, self._errors(what), self._transaction() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{WRITE_LOCK_TIMEOUT}s'")
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", WRITE_LOCK)
            yield cur
            # Delivered at commit (never for a rolled-back write): other hosts' live views
            # LISTEN on this channel to refresh.
            cur.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, what or "write"))

    # -- identity ---------------------------------------------------------------------------

    def acting_user(self) -> str:
        """The database role this store acts as (``current_user``)."""
        if self._user is None:
            with self._reading() as cur:
                cur.execute("SELECT current_user")
                row = cur.fetchone()
                self._user = str(row[0]) if row else "?"
        return self._user

    def administers(self, user: str) -> bool:
        """Whether the role ``user`` is a superuser or a member of the admin role (the grants
        enforce the same rule in the database)."""
        role = user
        with self._reading() as cur:
            cur.execute("SELECT tui_csr.is_admin(%s)", (role,))
            row = cur.fetchone()
        return bool(row and row[0])

    def identity(self) -> str:
        """The store's id, made by ``store init`` (or copied from a migrated TinyDB store)."""
        with self._reading() as cur:
            cur.execute("SELECT value FROM tui_csr.meta WHERE key = 'store_id'")
            row = cur.fetchone()
        if not row:
            raise StoreError(f"The PostgreSQL store ({self.where}) has no store id; run "
                             "`tui-csr store init` again on an empty database.")
        return str(row[0])

    # -- parsing ----------------------------------------------------------------------------

    def _parse(self, cls: type[_Model], doc: Mapping[str, Any]) -> _Model:
        try:
            return cls.from_doc(dict(doc))  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = doc.get("label") or doc.get("name") or doc.get("id")
            raise StoreError(f"The PostgreSQL store ({self.where}) has a damaged "
                             f"{cls.__name__.lower()} record ({name}): {exc}.") from exc

    def _log(self, cur: psycopg.Cursor, audit: AuditEntry | None) -> None:
        if audit is None:
            return
        doc = audit.to_doc()
        cur.execute("SELECT tui_csr.append_audit(%s, %s, %s, %s, %s)",
                    (doc["at"], doc["action"], doc["user"], doc["subject"], doc["detail"] or ""))
