"""A PostgreSQL server of the test session's own (Debian ``postgresql``), for the PostgreSQL store.

``initdb`` into a temp dir as the ``postgres`` user, the server listening on a unix socket in
that dir only (``listen_addresses=''``: no TCP), trust authentication on that socket (so a test
connects as any role by naming it: the grants, not passwords, are what the tests are about),
durability off (fsync, synchronous commit: a test server holds nothing worth keeping) unless
a test that kills the server asks for it. The
server runs under ``setpriv --pdeathsig KILL`` and in the daemon registry
(:mod:`tests.backends.procs`), so it never outlives the session; the fixture's finaliser stops it
with a fast shutdown.

Use the session fixture ``postgres_server`` (import it into the test module); each test makes a
database of its own with :meth:`PgServer.new_database`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backends.procs import REGISTRY, BackendError, Daemon, run_step, wait_for

PACKAGES = ("postgresql",)
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in the server's own folder
#: Login roles every test may use: a user, someone with no tui-csr role, an administrator.
USER, STRANGER, ADMIN = "alice", "mallory", "carol"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def missing() -> list[str]:
    """What is not installed (empty when the server can start)."""
    gone = []
    if _bin_dir() is None:
        gone.append("initdb (postgresql)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        gone.append("the postgres user")
    if not shutil.which("setpriv"):
        gone.append("setpriv (util-linux)")
    return gone


@dataclass
class PgServer:
    """A running test server."""

    folder: Path
    daemon: Daemon

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A libpq URI for ``dbname`` as ``user`` over the server's socket."""
        return f"postgresql:///{dbname}?host={self.folder}&port={PORT}&user={user}"

    def execute(self, statement: str, params: tuple = (), dbname: str = "postgres") -> list:
        """Run one statement as the superuser (autocommit); its rows, if any."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(statement, params or None)
            return cur.fetchall() if cur.description else []

    def new_database(self) -> str:
        """A fresh UTF8 database; its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        return name


def init_store(server: PgServer, role: str = ADMIN) -> str:
    """A fresh database with the tui-csr schema (``store init`` as the superuser), alice in the
    user role and carol in the admin role; the DSN for ``role``."""
    import psycopg

    from tui_csr.store import pg_schema

    db = server.new_database()
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        pg_schema.init(conn, pg_schema.Roles("tui_csr_admin", "tui_csr_user"), db)
    server.execute(f"GRANT tui_csr_user TO {USER}")
    server.execute(f"GRANT tui_csr_admin TO {ADMIN}")
    return server.dsn(db, role)


def server_folder() -> Path:
    """A new folder for a server: under /tmp, whatever TMPDIR says (the postgres user must be
    able to reach it, and a unix socket path has at most 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="tui-csr-pg-", dir="/tmp" if os.path.isdir("/tmp")
                                 else None))


def start(folder: Path, *, durable: bool = False) -> PgServer:
    """initdb and start a server in ``folder`` (owned by postgres); ``durable`` keeps fsync and
    synchronous commit on (for tests that kill the server: a commit must survive it)."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    pw = pwd.getpwnam("postgres")
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    as_postgres = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
    run_step("initdb", [*as_postgres, str(bin_dir / "initdb"), "-D", str(folder / "data"),
                        "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], env)
    server = launch(folder, durable=durable)
    for role in (USER, STRANGER, ADMIN):
        server.execute(f"CREATE ROLE {role} LOGIN")
    return server


def launch(folder: Path, *, durable: bool = False) -> PgServer:
    """Start the server of an initdb'd ``folder`` (again, after :func:`kill`); wait until it
    accepts connections."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    pw = pwd.getpwnam("postgres")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    log = folder / "server.log"
    log.touch()
    os.chown(log, pw.pw_uid, pw.pw_gid)
    daemon = REGISTRY.start("postgres", [
        "setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
        "--pdeathsig", "KILL", "--", str(bin_dir / "postgres"),
        "-D", str(folder / "data"), "-k", str(folder), "-p", str(PORT),
        "-c", "listen_addresses=", "-c", "max_connections=100",
        *([] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                              "-c", "full_page_writes=off"])], env, log)
    server = PgServer(folder, daemon)

    def ready() -> bool:
        try:
            server.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - not accepting connections yet
            return False
        return True

    wait_for("PostgreSQL to accept connections", ready, daemon, timeout=30)
    return server


def kill(server: PgServer) -> None:
    """SIGKILL the server and all its processes (a crash; :func:`launch` recovers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.daemon.pid, signal.SIGKILL)
    server.daemon.proc.wait(timeout=10)
    REGISTRY.stop(server.daemon)


def stop(server: PgServer) -> None:
    """Fast shutdown (SIGINT), then whatever the registry must do; remove the folder."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.daemon.pid, signal.SIGINT)
    with contextlib.suppress(Exception):
        server.daemon.proc.wait(timeout=10)
    REGISTRY.stop(server.daemon)
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (skipped, or failed under CI, when not installed)."""
    gone = missing()
    if gone:
        reason = (f"PostgreSQL not installed ({', '.join(gone)}); run scripts/system-deps.sh "
                  f"(Debian: {' '.join(PACKAGES)})")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pytest.importorskip("psycopg")
    folder = server_folder()
    try:
        server = start(folder)
    except BackendError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc}")
    yield server
    stop(server)
