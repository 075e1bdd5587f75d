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
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

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


class ChangeListener:
    """LISTENs on :data:`CHANGES_CHANNEL` on a connection of its own, in a daemon thread:
    :attr:`mark` is ``(connections made, notifications received)``, so it moves with every
    committed write of any host, and also when the connection comes back after a loss
    (changes may have been missed meanwhile). Never raises: :attr:`problem` says why it is
    not listening (one sentence naming the database), None while it is."""

    #: Seconds between two checks of the stop flag, and between two reconnection attempts.
    TICK = 0.5

    def __init__(self, session: PgSession) -> None:  # noqa: D107
        self._session = session
        self._stop = threading.Event()
        self._first = threading.Event()  # set once the first connection attempt is over
        self.connections = 0
        self.count = 0
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="tui-csr-pg-listen", daemon=True)
        self._thread.start()

    @property
    def mark(self) -> tuple[int, int]:
        """``(connections made, notifications received)``."""
        return (self.connections, self.count)

    def wait_started(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the first connection attempt is over."""
        self._first.wait(timeout)

    def stop(self) -> None:
        """Stop listening and close the connection (waits a tick at most)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self.TICK * 4)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._session.connect()
            except TuiCsrError as exc:
                self.problem = exc.message
                self._first.set()
                self._stop.wait(self.TICK * 2)
                continue
            try:
                self._listen(conn)
            finally:
                with contextlib.suppress(Exception):
                    conn.close()

    def _listen(self, conn: psycopg.Connection) -> None:
        import psycopg

        try:
            conn.execute(f"LISTEN {CHANGES_CHANNEL}")
            self.connections += 1
            self.problem = None
            self._first.set()
            while not self._stop.is_set():
                for _note in conn.notifies(timeout=self.TICK):
                    self.count += 1
        except psycopg.Error as exc:
            self.problem = (f"The PostgreSQL store ({self._session.where}) is unreachable: "
                            f"{_first_line(exc)}.")
            self._first.set()
            self._stop.wait(self.TICK)


class PgSession:
    """One process's connection to a tui-csr database, and how it runs transactions."""

    #: Seconds an :meth:`administers` verdict is kept (it is asked on the UI's event loop).
    ADMIN_VERDICT_SECONDS = 30.0

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
        self._schema_pending = False
        self._listener: ChangeListener | None = None
        self._verdicts: dict[str, tuple[float, bool]] = {}
        if connect:
            self.check_schema()

    @classmethod
    def opened_later(cls, conninfo: str, **kwargs: Any) -> Self:
        """A store that has not connected yet (e.g. the database is unreachable at start):
        the schema check runs on its first connection, so a wrong version is still refused."""
        store = cls(conninfo, connect=False, **kwargs)
        store._schema_pending = True
        return store

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
            conn = psycopg.connect(self.conninfo, **params)
        except psycopg.Error as exc:
            raise StoreError(f"The PostgreSQL store ({self.where}) is unreachable: "
                             f"{_first_line(exc)}.") from None
        # The documents are jsonb: decode them with the store's codec (orjson where installed,
        # several times faster than the standard library on a 10,000-request list).
        from psycopg.types.json import set_json_loads

        from tui_csr.store import codec

        set_json_loads(codec.loads_one, conn)
        return conn

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
            # A new connection (the first, or after a loss): verdicts kept through an outage
            # are guesses; the database answers again.
            self._verdicts.clear()
            if self._user is None:  # for messages until current_user has been asked
                self._user = self._conn.info.user
            if self._schema_pending:  # see opened_later
                self._schema_pending = False
                try:
                    self.check_schema()
                except BaseException:
                    self._schema_pending = True
                    with contextlib.suppress(Exception):
                        self._conn.close()
                    self._conn = None
                    raise
        assert self._conn is not None
        return self._conn

    def change_mark(self) -> tuple[int, int]:
        """A mark that moves when any session commits a write (LISTEN/NOTIFY on a connection
        of its own, started by the first call, which waits for it to listen), or when that
        connection comes back after a loss. Blocking at most a connect timeout: call it off
        the event loop. :attr:`listen_problem` says why it is not listening."""
        if self._listener is None:
            self._listener = ChangeListener(self)
            self._listener.wait_started(15)
        return self._listener.mark

    @property
    def listen_problem(self) -> str | None:
        """Why :meth:`change_mark` is not listening (one sentence), None when it is."""
        return self._listener.problem if self._listener is not None else None

    def stop_listening(self) -> None:
        """Stop the :meth:`change_mark` listener (a later call starts another)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def close(self) -> None:
        """Close the connection (the next call opens another) and stop the listener."""
        self.stop_listening()
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

    def login_role(self) -> str:
        """The role this store logs in as, without asking the database: the DSN's ``user``,
        else ``PGUSER``, else the OS user (as libpq chooses); :meth:`acting_user` once known."""
        if self._user is not None:
            return self._user
        import getpass
        import os

        try:
            role = dsn_mod.parameters(self.conninfo).get("user")
        except ValueError:
            role = None
        return role or os.environ.get("PGUSER") or getpass.getuser()

    def administers(self, user: str) -> bool:
        """Whether the role ``user`` is a superuser or a member of the admin role (the grants
        enforce the same rule in the database)."""
        role = user
        # The UI asks this on its event loop (header, key bindings): a verdict is kept a while,
        # and an unreachable database keeps the last one (False when none) instead of raising;
        # the database's grants decide anyway.
        now = time.monotonic()
        kept = self._verdicts.get(role)
        if kept is not None and now - kept[0] < self.ADMIN_VERDICT_SECONDS:
            return kept[1]
        try:
            with self._reading() as cur:
                cur.execute("SELECT tui_csr.is_admin(%s)", (role,))
                row = cur.fetchone()
        except StoreError:
            verdict = kept[1] if kept is not None else False
            # asked again a few seconds later (the database may be back)
            self._verdicts[role] = (now - self.ADMIN_VERDICT_SECONDS + 5, verdict)
            return verdict
        verdict = bool(row and row[0])
        self._verdicts[role] = (now, verdict)
        return verdict

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
