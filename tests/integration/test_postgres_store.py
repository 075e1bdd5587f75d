"""The PostgreSQL store on the session's own server: concurrent writers on "several hosts", the
database's own refusals (grants, append-only audit), schema versions, `store migrate` of a
1,000-request TinyDB store, `audit --verify` over the moved log, DSN rules and faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg
import pytest

from tests.backends.postgres import ADMIN, STRANGER, USER, PgServer, init_store
from tests.unit.test_store import make_request
from tui_csr.core.models import AuditEntry, Group, Intent, Status, utcnow
from tui_csr.errors import InputError, PermissionDeniedError, StoreError
from tui_csr.store import auditchain, pg_schema
from tui_csr.store.auditchain import verify_audit_chain
from tui_csr.store.postgres import PostgresStore
from tui_csr.store.protocol import RequestStore
from tui_csr.store.repo import STORE_FILE_NAME, Store
from tui_csr.store.storage import AtomicJSONStorage

pytestmark = pytest.mark.xdist_group("postgres")

ROOT = Path(__file__).resolve().parents[2]


def tui_csr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a child process (the test's isolated HOME / XDG environment)."""
    return subprocess.run([sys.executable, "-m", "tui_csr", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})},
                          check=False)


# -- concurrency ---------------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys, uuid
    from tui_csr.core.models import AuditEntry, Intent, utcnow
    from tui_csr.errors import InputError
    from tui_csr.store.postgres import PostgresStore
    from tui_csr.store.repo import Store
    from tests.unit.test_store import make_request

    where, worker = sys.argv[1], int(sys.argv[2])
    store = PostgresStore(where) if where.startswith("postgresql:") else Store.open(where)
    won = 0
    for n in range(8):
        # A generation's store side: lease, intent, then the record closing it (+ audit).
        intent = Intent(id=uuid.uuid4().hex, store_id=store.identity(), label=f"w{worker}-{n}",
                        key_id=uuid.uuid4().hex[:16], key_spec="P-256", token_label="demo",
                        created_by="carol", created=utcnow())
        with store.intent_lease(intent.id):
            store.open_intent(intent)
            req = make_request(f"w{worker}-{n}", key_id=intent.key_id, groups=["Web"])
            store.add_request(req, AuditEntry("generate", "carol", req.id),
                              close_intent=intent.id)
        # And a label every worker wants: exactly one may get it.
        try:
            store.add_request(make_request(f"shared-{n}", groups=["Other"]), AuditEntry("generate", "carol", "s"))
            won += 1
        except InputError:
            pass
    print(won)
""")


@pytest.mark.parametrize("backend", ["postgresql", "tinydb"])
def test_four_processes_eight_writes_each_lose_nothing(backend: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    """The same concurrent load on both back ends (the store contract, across processes)."""
    if backend == "postgresql":
        dsn = init_store(request.getfixturevalue("postgres_server"))
        open_store: Callable[[], RequestStore] = partial(PostgresStore, dsn)
    else:
        dsn = str(tmp_path / "data")
        open_store = partial(Store.open, Path(dsn))
    open_store().add_group(Group("Web"))
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), dsn, str(w)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    store = open_store()
    requests = store.list_requests(None)
    labels = [r.label for r in requests]
    assert len(labels) == len(set(labels)) == 40  # 32 own + 8 shared, no duplicate
    assert sum(int(out) for out, _ in results) == 8  # each shared label went to one worker
    assert store.list_intents() == []  # every intent closed by its record
    assert store.group_usage()["Web"] == (32, 0)
    chain = store.audit_chain()
    assert len(chain.links) == 40  # one entry per record, none lost, none for a refusal
    assert verify_audit_chain(chain) is None


def test_two_config_files_two_data_folders_one_database(postgres_server: PgServer,
                                                        tmp_path: Path) -> None:
    """Two "hosts" (config file + data folder each) see one store through the CLI."""
    dsn = init_store(postgres_server)
    env: dict[str, str] = {}
    configs = []
    for host in ("bastion-a", "bastion-b"):
        config = tmp_path / f"{host}.toml"
        config.write_text(f'store = "{dsn}"\ndata_dir = "{tmp_path / host}"\n')
        configs.append(str(config))
    made = tui_csr("--config", configs[0], "groups", "add", "Web", env=env)
    assert made.returncode == 0, made.stderr
    seen = tui_csr("--config", configs[1], "groups", "list", "--json", env=env)
    assert seen.returncode == 0, seen.stderr
    assert '"Web"' in seen.stdout
    assert not (tmp_path / "bastion-a" / STORE_FILE_NAME).exists()  # no TinyDB file made


# -- the database's own rules --------------------------------------------------------------

def test_a_non_admin_role_cannot_create_a_group_through_tui_csr_nor_by_sql(
        postgres_server: PgServer) -> None:
    dsn = init_store(postgres_server, role=USER)
    # Through tui-csr: the CLI asks the store whether the role administers (it does not).
    refused = tui_csr("--store", dsn, "groups", "add", "Web")
    assert refused.returncode == 1
    assert "error: Only an administrator can create certificate groups" in refused.stderr
    assert f"'{USER}'" in refused.stderr and "Traceback" not in refused.stderr
    # The store layer, asked directly (no service check in front): the database refuses.
    with pytest.raises(PermissionDeniedError, match=f"'{USER}' is not a member of tui_csr_admin"):
        PostgresStore(dsn).add_group(Group("Web"), AuditEntry("group-add", USER, "Web"))
    # By SQL with its own credentials.
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tui_csr.groups VALUES ('web', 'Web', '{}')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT tui_csr.adopt_store_id('x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # audit in another's name
            conn.execute("SELECT tui_csr.append_audit('t', 'a', %s, 's', 'd')", (ADMIN,))
    assert PostgresStore(dsn).list_groups() == []
    # The administrator role can, and a role without any tui-csr role cannot even read.
    admin_dsn = dsn.replace(f"user={USER}", f"user={ADMIN}")
    made = tui_csr("--store", admin_dsn, "groups", "add", "Web")  # no OS admin list needed
    assert made.returncode == 0, made.stderr
    stranger = PostgresStore(dsn.replace(f"user={USER}", f"user={STRANGER}"), connect=False)
    with pytest.raises(PermissionDeniedError, match="GRANT tui_csr_user TO mallory"):
        stranger.list_groups()


def test_the_audit_log_is_append_only_for_every_role(postgres_server: PgServer) -> None:
    dsn = init_store(postgres_server)
    PostgresStore(dsn).add_audit(AuditEntry("generate", ADMIN, "r1"))
    db = dsn.split("///")[1].split("?")[0]
    for role in (USER, ADMIN):
        with psycopg.connect(postgres_server.dsn(db, role), autocommit=True) as conn:
            for statement in ("UPDATE tui_csr.audit SET detail = 'x'",
                              "DELETE FROM tui_csr.audit", "TRUNCATE tui_csr.audit",
                              "UPDATE tui_csr.audit_head SET seq = 0",
                              "INSERT INTO tui_csr.audit VALUES (9, 't', 'a', 'u', 's', 'd', "
                              "'p', 'h')"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    # Even the superuser is stopped by the trigger (unless it disables it first).
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        postgres_server.execute("DELETE FROM tui_csr.audit", dbname=db)
    assert len(PostgresStore(dsn).audit_chain().links) == 1


# -- schema --------------------------------------------------------------------------------

def test_init_upgrade_and_version_refusals(postgres_server: PgServer) -> None:
    db = postgres_server.new_database()
    su = postgres_server.dsn(db)
    with pytest.raises(StoreError, match="has no tui-csr schema yet.*store init"):
        PostgresStore(su)
    # A non-superuser may not init.
    refused = tui_csr("--store", postgres_server.dsn(db, USER), "store", "init")
    assert refused.returncode == 1 and "needs a PostgreSQL superuser" in refused.stderr
    with psycopg.connect(su, autocommit=True) as conn:  # an older program's schema
        pg_schema.init(conn, pg_schema.Roles("tui_csr_admin", "tui_csr_user"), db, target=1)
    with pytest.raises(StoreError, match="schema version 1, older .* store upgrade"):
        PostgresStore(su)
    up = tui_csr("--store", su, "store", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"from schema version 1 to {pg_schema.SCHEMA_VERSION}" in up.stdout
    assert PostgresStore(su).schema_version == pg_schema.SCHEMA_VERSION
    again = tui_csr("--store", su, "store", "init")
    assert again.returncode == 1 and "exists already" in again.stderr
    status = tui_csr("--store", su, "store", "status")
    assert "acting as role 'postgres', an administrator" in status.stdout
    # A store made by a newer program is refused with a sentence, by the library and the CLI.
    postgres_server.execute("UPDATE tui_csr.meta SET value = '99' WHERE key = 'schema_version'",
                            dbname=db)
    with pytest.raises(StoreError, match="schema version 99, newer than this tui-csr"):
        PostgresStore(su)
    listed = tui_csr("--store", su, "list")
    assert listed.returncode == 1
    assert listed.stderr.startswith("error: The PostgreSQL store (database '")
    assert "newer than this tui-csr understands" in listed.stderr


def test_store_init_creates_missing_roles(postgres_server: PgServer, tmp_path: Path) -> None:
    db = postgres_server.new_database()
    config = tmp_path / "c.toml"
    config.write_text(f'store = "{postgres_server.dsn(db)}"\nstore_admin_role = "pki_admins"\n'
                      'store_user_role = "pki_users"\n')
    made = tui_csr("--config", str(config), "store", "init")
    assert made.returncode == 0, made.stderr
    assert "Created the role pki_admins" in made.stderr
    assert "GRANT pki_users TO <role>" in made.stdout
    postgres_server.execute("GRANT pki_admins TO carol")
    carol = PostgresStore(postgres_server.dsn(db, ADMIN), admin_role="pki_admins")
    carol.add_group(Group("Web"))  # the admin role holds the user role's rights too
    carol.add_request(make_request("r1", groups=["Web"]))
    assert carol.administers(ADMIN) and not carol.administers(USER)


# -- DSN rules and faults ------------------------------------------------------------------

def test_a_password_in_the_dsn_is_refused_and_never_echoed(tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    for args, env in (
            (["--store", f"postgresql://carol:{secret}@db.example/tui", "list"], {}),
            (["--store", f"host=db.example password={secret}", "list"], {}),
            (["list"], {"TUI_CSR_STORE": f"postgresql://db.example/tui?password={secret}"}),
            (["store", "migrate", "--to", f"postgresql://u:{secret}@h/d"], {})):
        run = tui_csr(*args, env=env)
        assert run.returncode == 2, (args, run.stderr)
        assert "password" in run.stderr and ".pgpass" in run.stderr
        assert secret not in run.stderr + run.stdout
    config = tmp_path / "c.toml"
    config.write_text(f'store = "postgresql://u:{secret}@h/d"\n')
    run = tui_csr("--config", str(config), "list")
    assert run.returncode == 2 and secret not in run.stderr


def test_tls_and_service_settings_pass_through() -> None:
    from tui_csr.store import dsn

    text = ("postgresql://db1.example:5433/tui?sslmode=verify-full"
            "&sslrootcert=/etc/ssl/pki-root.pem")
    store = PostgresStore(text, connect=False)
    assert store.conninfo == text  # handed to libpq unchanged
    assert dsn.parameters(text)["sslrootcert"] == "/etc/ssl/pki-root.pem"
    assert store.describe() == "PostgreSQL database 'tui' on db1.example port 5433"
    assert dsn.password_problem("service=tui-csr sslmode=require") is None
    assert dsn.describe("service=tui-csr") == "the PostgreSQL service 'tui-csr'"


def test_an_unreachable_server_is_one_sentence(tmp_path: Path) -> None:
    dsn = f"postgresql:///tui?host={tmp_path}&port=5999&user=carol&connect_timeout=2"
    with pytest.raises(StoreError) as exc:
        PostgresStore(dsn)
    message = str(exc.value)
    assert message.startswith(f"The PostgreSQL store (database 'tui' on {tmp_path} port 5999) "
                              "is unreachable: ")
    assert "\n" not in message
    run = tui_csr("--store", dsn, "list")
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "is unreachable" in run.stderr and "Traceback" not in run.stderr


def test_a_connection_cut_while_idle_is_replaced_and_one_cut_mid_write_is_one_sentence(
        postgres_server: PgServer) -> None:
    import threading

    dsn = init_store(postgres_server)
    store = PostgresStore(dsn)
    store.add_group(Group("Web"))
    cut = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s "
           "AND application_name = 'tui-csr'")
    postgres_server.execute(cut, (ADMIN,))  # e.g. the server restarted between two commands
    assert [g.name for g in store.list_groups()] == ["Web"]  # a new connection, nothing lost

    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            store.add_group(Group("Mail"))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    with psycopg.connect(postgres_server.dsn(dsn.split("///")[1].split("?")[0])) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x74637372, 1))
        writer = threading.Thread(target=write)
        writer.start()
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                   "AND application_name = 'tui-csr' AND wait_event_type = 'Lock'")
        for _ in range(500):  # until the write waits for the lock (in the middle of it)
            if postgres_server.execute(waiting, (ADMIN,))[0][0]:
                break
            threading.Event().wait(0.01)
        postgres_server.execute(cut, (ADMIN,))
        writer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], StoreError), outcome
    assert "is unreachable" in str(outcome[0]) and "\n" not in str(outcome[0])
    assert [g.name for g in store.list_groups()] == ["Web"]  # the cut write left nothing
    store.add_group(Group("Mail"))  # and the store works on


# -- migration and audit --verify ----------------------------------------------------------

def _tinydb_store(folder: Path, count: int) -> Store:
    """A TinyDB store with ``count`` requests (each with its audit entry), groups and intents:
    the bulk written through the storage in one go (1,000 separate adds take ~10 s), the rest
    through the Store."""
    store = Store.open(folder)
    store.add_group(Group("Web", policy="tls-server"), AuditEntry("group-add", "alice", "Web"))
    store.add_group(Group("Mail"), AuditEntry("group-add", "alice", "Mail"))
    data = AtomicJSONStorage(store.path).read() or {}
    requests, audit = data.setdefault("requests", {}), data.setdefault("audit", {})
    newest = auditchain.newest_chained(audit)
    for n in range(count):
        req = make_request(f"req-{n:04d}", groups=["Web"] if n % 3 else ["Web", "Mail"],
                           status=Status.ISSUED if n % 10 == 0 else Status.PENDING,
                           owner=None if n % 7 == 0 else "alice",
                           subject_fields={"CN": f"réq-{n}.example.org"})
        requests[str(n + 1)] = req.to_doc()
        newest = auditchain.link(AuditEntry("generate", "alice", req.id, f"n={n}").to_doc(),
                                 newest)
        audit[str(len(audit) + 1)] = newest
    AtomicJSONStorage(store.path).write(data)
    for n in range(3):
        store.open_intent(Intent(id=uuid.uuid4().hex, store_id=store.identity(), label=f"i{n}",
                                 key_id=f"ee{n:02d}", key_spec="RSA2048", token_label="demo",
                                 created_by="alice", created=utcnow()),
                          AuditEntry("intent", "alice", f"i{n}"))
    return store


def test_migrate_1000_requests_every_record_equal_and_audit_verified(
        postgres_server: PgServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = _tinydb_store(data_dir, 1000)
    before_bytes = source.path.read_bytes()
    dsn = init_store(postgres_server)
    env = {"TUI_CSR_DATA_DIR": str(data_dir)}

    verify = tui_csr("audit", "--verify", env=env)
    if "unrecognized arguments: --verify" in verify.stderr:
        pytest.fail("`tui-csr audit --verify` is not wired yet (tui_csr/cli/commands/audit.py)")
    assert verify.returncode == 0, verify.stderr

    moved = tui_csr("store", "migrate", "--to", dsn, env=env)
    assert moved.returncode == 0, moved.stderr
    assert "Copied 1000 requests, 2 groups, 3 intents, 1005 audit entries" in moved.stdout
    assert source.path.read_bytes() == before_bytes  # the source is left untouched

    target = PostgresStore(dsn)
    assert target.identity() == source.identity()  # its keys stay this store's keys
    for status in (None, Status.PENDING, Status.ISSUED):
        assert target.list_requests(status) == source.list_requests(status)
    assert target.list_groups() == source.list_groups()
    assert target.list_intents(None) == source.list_intents(None)
    assert target.group_usage() == source.group_usage()
    assert [e.to_doc() for e in target.list_audit()] == [e.to_doc() for e in source.list_audit()]

    after = tui_csr("--store", dsn, "audit", "--verify")
    assert after.returncode == 0, after.stderr
    # A second migration into the now full store is refused.
    again = tui_csr("store", "migrate", "--to", dsn, env=env)
    assert again.returncode == 1 and "is not empty (1000 requests" in again.stderr

    # The superuser alters one row (disabling the trigger for its session): detected.
    db = dsn.split("///")[1].split("?")[0]
    with psycopg.connect(postgres_server.dsn(db), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE tui_csr.audit SET actor = 'mallory' WHERE seq = 500")
    tampered = tui_csr("--store", dsn, "audit", "--verify")
    assert tampered.returncode == 1
    assert "entry #500" in tampered.stderr and "altered" in tampered.stderr
    problem = verify_audit_chain(target.audit_chain())
    assert problem is not None and "#500" in problem


def test_migrate_refuses_a_tampered_source_and_writes_nothing(postgres_server: PgServer,
                                                               tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = _tinydb_store(data_dir, 5)
    data = AtomicJSONStorage(source.path).read() or {}
    data["audit"].pop("3")  # an entry removed by hand
    AtomicJSONStorage(source.path).write(data)
    dsn = init_store(postgres_server)
    run = tui_csr("store", "migrate", "--to", dsn, env={"TUI_CSR_DATA_DIR": str(data_dir)})
    assert run.returncode == 1
    assert "was not copied: The audit log lacks entry #3" in run.stderr
    assert PostgresStore(dsn).count_requests() == 0


def test_a_write_waits_for_another_sessions_write_then_says_busy(
        postgres_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui_csr.store.pg_session as pg_module

    dsn = init_store(postgres_server)
    store = PostgresStore(dsn)
    monkeypatch.setattr(pg_module, "WRITE_LOCK_TIMEOUT", 1)
    with psycopg.connect(dsn) as other:  # another host's transaction, stuck mid-write
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x74637372, 1))
        with pytest.raises(StoreError, match="is busy: another session has held its write lock"):
            store.add_group(Group("Web"))
        assert store.list_groups() == []  # reads do not wait
    store.add_group(Group("Web"))  # the lock is free again
    assert [g.name for g in store.list_groups()] == ["Web"]


def test_every_committed_write_is_notified_and_a_refused_one_is_not(
        postgres_server: PgServer) -> None:
    from tui_csr.store.pg_session import CHANGES_CHANNEL

    dsn = init_store(postgres_server)
    store = PostgresStore(dsn)
    with psycopg.connect(dsn, autocommit=True) as listener:  # another host's live view
        listener.execute(f"LISTEN {CHANGES_CHANNEL}")
        store.add_group(Group("Web"))
        with pytest.raises(InputError):
            store.add_group(Group("web"))  # refused: rolled back, nothing to refresh
        store.add_request(make_request("r1"))
        got = [n.payload for n in listener.notifies(timeout=1, stop_after=3)]
    assert got == ["create certificate groups", "write"]
