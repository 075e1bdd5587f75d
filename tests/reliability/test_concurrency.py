"""Several processes generating and deleting requests at once on one store and one token, while
another process reads the store as fast as it can.

Afterwards: no record lost or duplicated, every record's key on the token, no tui-csr key (of
this test's labels) without a record, and the reader never once found the store unreadable.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import Cli
from tests.reliability.conftest import NICE, make_private_token
from tui_csr.service import CsrService
from tui_csr.store.repo import Store

WRITERS = 4
GENERATES = 8  # per writer; every second request is deleted again right after it is made

_WRITER = """
import json, sys
from tui_csr.cli import main
prefix, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ops = []
for i in range(n):
    label = f"{prefix}-{i}"
    rc = main(["generate", "--key-spec", "P-256", "--cn", f"{label}.example", "--group", "Web",
               "--label", label, "--owner", "alice", "--json"])
    ops.append(["generate", label, rc])
    if i % 2:
        ops.append(["delete", label, main(["delete", label, "--yes"])])
with open(log, "w") as fh:
    json.dump(ops, fh)
"""

_READER = """
import json, os, sys, time
from tui_csr.store.repo import Store
data, stop, log = sys.argv[1], sys.argv[2], sys.argv[3]
path = os.path.join(data, "tui-csr.json")
store = Store.open(data)
reads, problems, most = 0, [], 0
while not os.path.exists(stop):
    try:
        # Without the lock, as any other program might: the atomic replace must be enough.
        with open(path, "rb") as fh:
            raw = json.loads(fh.read())
        ids = [d["id"] for d in raw.get("requests", {}).values()]
        # Through the store's own (shared) lock.
        reqs = store.list_requests(None)
        labels = [r.label for r in reqs]
        if len(set(ids)) != len(ids) or len(set(labels)) != len(labels):
            problems.append(f"duplicate at read {reads}: {sorted(labels)}")
        most = max(most, len(reqs))
        reads += 1
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
with open(log, "w") as fh:
    json.dump({"reads": reads, "problems": problems[:20], "most": most}, fh)
"""


def _run(cli: Cli, prefix: str, tmp_path: Path) -> tuple[list, dict, float]:
    """Start the reader, then the writers; wait for the writers, stop the reader. Returns the
    writers' operations, the reader's summary and the writers' wall time."""
    env = {**cli.env, "TUI_CSR_PIN": cli.token.pin}
    stop = tmp_path / "stop"
    reader_log = tmp_path / "reader.json"
    reader = subprocess.Popen([*NICE, sys.executable, "-c", _READER, str(cli.data_dir), str(stop),
                               str(reader_log)], env=env, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    writers = []
    for k in range(WRITERS):
        log = tmp_path / f"writer{k}.json"
        proc = subprocess.Popen([*NICE, sys.executable, "-c", _WRITER, f"{prefix}w{k}", str(GENERATES),
                                 str(log)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        writers.append((proc, log))
    for proc, _ in writers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    elapsed = time.monotonic() - start
    stop.touch()
    _, reader_err = reader.communicate(timeout=60)
    assert reader.returncode == 0, reader_err
    ops = [op for _, log in writers for op in json.loads(log.read_text())]
    return ops, json.loads(reader_log.read_text()), elapsed


async def test_writers_and_a_reader_on_one_store_and_token(cli: Cli, service: CsrService,
                                                           tmp_path: Path) -> None:
    prefix = f"cc{os.getpid()}"
    ops, seen, elapsed = await asyncio.to_thread(_run, cli, prefix, tmp_path)

    # Every operation of every writer succeeded.
    assert len(ops) == WRITERS * (GENERATES + GENERATES // 2)
    assert [op for op in ops if op[2] != 0] == []

    # The reader saw a whole, duplicate-free store at every one of its reads.
    assert seen["problems"] == [] and seen["reads"] >= 20, (seen, elapsed)
    print(f"\n{WRITERS} writers x ({GENERATES} generate + {GENERATES // 2} delete) in "
          f"{elapsed:.1f} s; reader: {seen['reads']} reads, at most {seen['most']} records")

    # No record lost, none duplicated, none left of the deleted ones.
    records = [r for r in Store.open(cli.data_dir).list_requests(None)
               if r.label.startswith(prefix)]
    want = {f"{prefix}w{k}-{i}" for k in range(WRITERS) for i in range(0, GENERATES, 2)}
    assert sorted(r.label for r in records) == sorted(want)
    assert len({r.id for r in records}) == len(records)
    assert len({r.key_id for r in records}) == len(records)

    # Every record's key pair is on the token; no key of ours is without a record; every
    # generation's intent was closed (no bookkeeping object on the token: no marker).
    keys = {k.key_id.hex(): k for k in await service.token.list_keys()
            if k.label.startswith(prefix)}
    for r in records:
        assert r.key_id in keys and keys[r.key_id].has_private and not keys[r.key_id].marked
    assert set(keys) == {r.key_id for r in records}
    intents = [i for i in Store.open(cli.data_dir).list_intents(None)
               if i.label.startswith(prefix)]
    assert len(intents) == WRITERS * GENERATES and not [i for i in intents if i.state == "open"]

    # The audit trail holds every generate and delete, once.
    audit = [e for e in Store.open(cli.data_dir).list_audit() if prefix in e.detail]
    assert sorted(e.action for e in audit).count("generate") == WRITERS * GENERATES
    assert sorted(e.action for e in audit).count("delete") == WRITERS * GENERATES // 2

    for r in records:
        await service.delete_request(r.id)


# -- writers while another process scans the token ---------------------------------------------

_CHECKED_WRITER = """
import contextlib, io, json, sys
from tui_csr.cli import main
prefix, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ops = []
def run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(argv))
    return rc, err.getvalue()
for i in range(n):
    label = f"{prefix}-{i}"
    rc, err = run("generate", "--key-spec", "P-256", "--cn", f"{label}.example", "--group",
                  "Web", "--label", label)
    ops.append(["generate", label, rc, err])
    if rc == 0 and i % 2:
        rc, err = run("delete", label, "--yes")
        ops.append(["delete", label, rc, err])
with open(log, "w") as fh:
    json.dump(ops, fh)
"""

_SCANNER = """
import contextlib, io, json, os, sys
from tui_csr.cli import main
stop, log = sys.argv[1], sys.argv[2]
scans, failures = 0, []
while not os.path.exists(stop):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["orphans", "list", "--json"])
    scans += 1
    if rc:
        failures.append(err.getvalue().strip())
with open(log, "w") as fh:
    json.dump({"scans": scans, "failures": failures[:10]}, fh)
"""

SCAN_WRITERS = 3
SCAN_GENERATES = 8


def _run_with_scanner(tok, tmp_path: Path) -> tuple[list, dict]:
    env = {**tok.env, "TUI_CSR_PIN": tok.token.pin}
    stop, scan_log = tmp_path / "stop-scan", tmp_path / "scanner.json"
    scanner = subprocess.Popen([*NICE, sys.executable, "-c", _SCANNER, str(stop), str(scan_log)],
                               env=env, stderr=subprocess.PIPE, text=True)
    writers = []
    for k in range(SCAN_WRITERS):
        log = tmp_path / f"checked{k}.json"
        writers.append((subprocess.Popen(
            [*NICE, sys.executable, "-c", _CHECKED_WRITER, f"s{k}", str(SCAN_GENERATES), str(log)],
            env=env, stderr=subprocess.PIPE, text=True), log))
    for proc, _ in writers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    stop.touch()
    _, err = scanner.communicate(timeout=60)
    assert scanner.returncode == 0, err
    ops = [op for _, log in writers for op in json.loads(log.read_text())]
    return ops, json.loads(scan_log.read_text())


def test_writers_while_another_process_scans_the_token(tmp_path: Path) -> None:
    """Orphan scans (the TUI runs one at start) while others generate and delete: a key destroyed
    by another process between the token's search and the reading of its attributes used to
    fail the scan (CKR_OBJECT_HANDLE_INVALID, about one scan in eight here); searches now run
    again. SoftHSM's file store also failed logins, searches and generates of one process while
    another wrote (4 of 26 runs); tui-csr's processes now take turns at each call into SoftHSM
    (tui_csr/hsm/interprocess.py), so not one operation may fail."""
    tok = make_private_token(tmp_path / "scan")
    ops, scans = _run_with_scanner(tok, tmp_path)
    assert scans["failures"] == [] and scans["scans"] >= 5, scans
    assert [op for op in ops if op[2] != 0] == []
    assert len(ops) == SCAN_WRITERS * (SCAN_GENERATES + SCAN_GENERATES // 2)
    made = {op[1] for op in ops if op[0] == "generate"}
    deleted = {op[1] for op in ops if op[0] == "delete"}
    listed = json.loads(tok.cli("list", "--json").out)
    assert sorted(d["label"] for d in listed) == sorted(made - deleted)
    orphans = json.loads(tok.cli("orphans", "list", "--json", pin=tok.token.pin).out)
    assert orphans == {"keys_without_record": [], "records_without_key": []}
    print(f"\n{SCAN_WRITERS} writers x {SCAN_GENERATES} generate (+ deletes) while 1 process "
          f"scanned the token {scans['scans']} times: {len(ops)} operations, none failed")
