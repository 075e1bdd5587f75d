"""Real generations into the PostgreSQL store: 4 processes x 8 `tui-csr generate` on the session's
SoftHSM token and one database, the processes split over two "hosts" (two config files, two data
folders); and the database lost in the middle of a generation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.backends import postgres as pg_backend
from tests.backends.postgres import ADMIN, USER, PgServer, init_store
from tests.integration.conftest import Cli
from tui_csr.core.models import Group
from tui_csr.service import CsrService
from tui_csr.store.auditchain import verify_audit_chain
from tui_csr.store.postgres import PostgresStore

pytestmark = pytest.mark.xdist_group("postgres")

ROOT = Path(__file__).resolve().parents[2]
WRITERS, GENERATES = 4, 8

_WRITER = """
import json, sys
from tui_csr.cli import main
prefix, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
codes = []
for i in range(n):
    label = f"{prefix}-{i}"
    codes.append(main(["generate", "--key-spec", "P-256", "--cn", f"{label}.example",
                       "--group", "Web", "--label", label, "--json"]))
with open(log, "w") as fh:
    json.dump(codes, fh)
"""


def _hosts(tmp_path: Path, dsn: str, roles: tuple[str, str] = (ADMIN, ADMIN)) -> list[Path]:
    """Two config files, each with its own data folder, naming the same database (as the
    given database roles: one person on each host)."""
    configs = []
    for host, role in zip(("bastion-a", "bastion-b"), roles, strict=True):
        config = tmp_path / f"{host}.toml"
        host_dsn = dsn.replace(f"user={ADMIN}", f"user={role}")
        config.write_text(f'store = "{host_dsn}"\ndata_dir = "{tmp_path / host}"\n')
        configs.append(config)
    return configs


def _env(cli: Cli, config: Path) -> dict[str, str]:
    env = {k: v for k, v in cli.env.items() if k not in ("TUI_CSR_DATA_DIR", "TUI_CSR_ADMINS")}
    return {**env, "TUI_CSR_CONFIG": str(config), "TUI_CSR_PIN": cli.token.pin,
            "PYTHONPATH": str(ROOT)}


def _run_writers(cli: Cli, configs: list[Path], prefix: str,
                 tmp_path: Path) -> tuple[list[list[int]], list[str]]:
    """WRITERS processes of GENERATES generates each, alternating between the two hosts."""
    procs = []
    for k in range(WRITERS):
        log = tmp_path / f"w{k}.json"
        procs.append((subprocess.Popen(
            [sys.executable, "-c", _WRITER, f"{prefix}w{k}", str(GENERATES), str(log)],
            env=_env(cli, configs[k % 2]), cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True), log))
    errors = [proc.communicate(timeout=300)[1] for proc, _ in procs]
    return [json.loads(log.read_text()) for _, log in procs], errors


def _generate_paused(cli: Cli, config: Path, label: str) -> subprocess.Popen:
    """A `generate` stopped (SIGSTOP) right after signing, before its record is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_csr", "generate", "--key-spec", "P-256", "--cn",
         f"{label}.example", "--group", "Web", "--label", label],
        env={**_env(cli, config), "TUI_CSR_TEST_PAUSE_AT": "after-sign"}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "tui-csr: paused at after-sign"
    os.waitpid(proc.pid, os.WUNTRACED)
    return proc


def _resume(proc: subprocess.Popen) -> str:
    os.kill(proc.pid, signal.SIGCONT)
    return proc.communicate(timeout=120)[1]


def _tui_csr(cli: Cli, config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_csr", *args], env=_env(cli, config),
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


async def test_four_processes_eight_generates_two_hosts_one_database(
        postgres_server: PgServer, cli: Cli, service: CsrService, tmp_path: Path) -> None:
    dsn = init_store(postgres_server, role=ADMIN)
    PostgresStore(dsn).add_group(Group("Web"))
    configs = _hosts(tmp_path, dsn, roles=(USER, ADMIN))  # alice on one host, carol on the other
    prefix = f"pg{uuid.uuid4().hex[:6]}"
    codes, errors = _run_writers(cli, configs, prefix, tmp_path)
    assert codes == [[0] * GENERATES] * WRITERS, errors

    store = PostgresStore(dsn)
    records = [r for r in store.list_requests(None) if r.label.startswith(prefix)]
    want = {f"{prefix}w{k}-{i}" for k in range(WRITERS) for i in range(GENERATES)}
    assert sorted(r.label for r in records) == sorted(want)  # 32 records, no duplicate
    assert len({r.id for r in records}) == len({r.key_id for r in records}) == 32
    keys = {k.key_id.hex() for k in await service.token.list_keys()
            if k.label.startswith(prefix)}
    assert keys == {r.key_id for r in records}  # 32 keys, each with its record
    assert not [i for i in store.list_intents() if i.label.startswith(prefix)]
    generated = [e for e in store.list_audit() if e.action == "generate"]
    assert len(generated) == 32  # each under the database role that made it
    assert sorted(e.user for e in generated) == sorted([ADMIN] * 16 + [USER] * 16)
    assert {r.created_by for r in records} == {USER, ADMIN}
    assert verify_audit_chain(store.audit_chain()) is None
    for folder in ("bastion-a", "bastion-b"):  # nothing went to a TinyDB file on either host
        assert not (tmp_path / folder / "tui-csr.json").exists()
    for r in records:
        await service.token.destroy(bytes.fromhex(r.key_id))


async def test_the_database_killed_mid_generation_leaves_no_unreported_key(
        cli: Cli, service: CsrService, tmp_path: Path) -> None:
    """A server of its own is killed while a generation is paused after signing (its intent
    written, its pair on the token, the record not yet written): one sentence, no traceback,
    the pair destroyed; with the server back, the next scan reports nothing of it left."""
    if pg_backend.missing():
        pytest.skip("PostgreSQL not installed")
    server = pg_backend.start(pg_backend.server_folder(), durable=True)
    try:
        dsn = init_store(server, role=ADMIN)
        PostgresStore(dsn).add_group(Group("Web"))
        config = _hosts(tmp_path, dsn)[0]
        label = f"lost{uuid.uuid4().hex[:6]}"
        proc = _generate_paused(cli, config, label)
        made = {k.key_id.hex() for k in await service.token.list_keys() if k.label == label}
        assert len(made) == 1  # the pair is on the token, its intent in the database
        pg_backend.kill(server)
        err = _resume(proc)
        assert proc.returncode == 1
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "is unreachable" in err and "Traceback" not in err
        left = {k.key_id.hex() for k in await service.token.list_keys() if k.label == label}

        server = pg_backend.launch(server.folder, durable=True)
        scan = _tui_csr(cli, config, "orphans", "list", "--json")
        assert scan.returncode == 0, scan.stderr
        for key in left:  # a pair the failed generation could not remove: reported
            assert key in scan.stdout, scan.stdout
            gone = _tui_csr(cli, config, "orphans", "destroy", key, "--yes")
            assert gone.returncode == 0, gone.stderr
        assert not {k.key_id.hex() for k in await service.token.list_keys() if k.label == label}
        again = _tui_csr(cli, config, "orphans", "list", "--json")
        assert again.returncode == 0 and label not in again.stdout
        assert [i for i in PostgresStore(dsn).list_intents() if i.label == label] == []
    finally:
        pg_backend.stop(server)
