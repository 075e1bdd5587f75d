"""kill -9 at the worst moments: in the middle of store writes, and between key generation and
the store write. The next start finds a readable store, loses no acknowledged write, and
``tui-csr orphans`` reports the key that has no record, then destroys or adopts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from tests.integration.conftest import GROUP, Cli
from tests.reliability.conftest import CLI_MAIN, NICE, json_out, run_python
from tui_csr.core.models import Request
from tui_csr.service import CsrService
from tui_csr.store.repo import Store
from tui_csr.store.storage import AtomicJSONStorage

#: Seconds after the writer's first acknowledged write at which it is killed: spread so the
#: kill lands in every phase of a write (serialise, temp file, fsync, backup link, replace).
KILL_DELAYS = (0.0, 0.002, 0.005, 0.009, 0.014, 0.022, 0.035, 0.055, 0.09, 0.15, 0.25, 0.4)
PREFILL = 150  # requests already in the store, so one write takes a few milliseconds

_STORE_WRITER = """
import sys
from tests.reliability.test_crash import fake_request
from tui_csr.core.models import AuditEntry
from tui_csr.store.repo import Store
store = Store.open(sys.argv[1])
first = i = int(sys.argv[2])
while True:
    req = fake_request(i)
    store.add_request(req, AuditEntry("generate", "w", req.id))
    removed = ""
    if i % 3 == 0 and i > first:
        store.remove_request(fake_request(i - 1).id, AuditEntry("delete", "w", str(i - 1)))
        removed = str(i - 1)
    print(f"{i} {removed}", flush=True)  # both operations acknowledged
    i += 1
"""


def fake_request(n: int) -> Request:
    """A request record as big as a real one (a 2 KB CSR), without a token."""
    return Request(
        id=f"{n:032x}", label=f"crash-{n}", subject=f"CN=host{n}.example",
        subject_fields={"CN": f"host{n}.example"}, sans=[("dns", f"host{n}.example")],
        key_spec="P-256", hash="SHA256", scheme="ECDSA", token_label="test",
        key_id=f"{n:040x}", pkcs11_uri=f"pkcs11:token=test;object=crash-{n};type=private",
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 2000, groups=["Web"],
        owner=None, created=datetime(2026, 1, 1, tzinfo=UTC), created_by="w")


def test_kill_9_during_store_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "store"
    store = Store.open(data)
    for n in range(1, PREFILL + 1):
        store.add_request(fake_request(n))
    expected = {fake_request(n).id for n in range(1, PREFILL + 1)}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    start = PREFILL + 1
    mid_write = 0
    for delay in KILL_DELAYS:
        proc = subprocess.Popen([*NICE, sys.executable, "-c", _STORE_WRITER, str(data),
                                 str(start)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        acked = [proc.stdout.readline()]  # wait for the first acknowledged write
        assert acked[0].strip(), proc.stderr.read()
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked += proc.stdout.read().splitlines()
        for line in acked:
            added, _, removed = line.decode().strip().partition(" ")
            expected.add(fake_request(int(added)).id)
            if removed:
                expected.discard(fake_request(int(removed)).id)
        nxt = int(acked[-1].split()[0]) + 1  # the iteration the kill interrupted
        mid_write += bool(list(data.glob(".*.tmp")))  # killed between temp file and replace
        # The next start: the file parses, the store opens, nothing acknowledged is missing.
        json.loads((data / "tui-csr.json").read_bytes())
        ids = {r.id for r in Store.open(data).list_requests(None)}
        # Only the interrupted iteration's add (and its delete of the one before) may differ.
        may_remove = {fake_request(nxt - 1).id} if nxt % 3 == 0 and nxt > start else set()
        assert expected - ids <= may_remove, (delay, expected - ids)
        assert ids - expected <= {fake_request(nxt).id}, delay
        expected = ids
        backup = data / "tui-csr.json.bak"
        if backup.exists():
            AtomicJSONStorage(backup).read()  # the backup is a whole store too
        start = nxt + 1
    print(f"\n{len(KILL_DELAYS)} kills, {mid_write} of them left a temp file (mid-write)")
    # A later write clears what the killed writers left (temp files) and works.
    store = Store.open(data)
    store.add_request(fake_request(start))
    assert not list(data.glob(".*.tmp"))
    assert len(store.list_requests(None)) == len(expected) + 1


# -- a key made, then the process killed before its record is written ---------------------------

_KILLED_BEFORE_RECORD = CLI_MAIN + """
import os, signal
from tui_csr.store import repo
def killed(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # the key pair is on the token, the record is not
repo.Store.add_request = killed
main(["generate", "--key-spec", "P-256", "--cn", sys.argv[1], "--group", "Web",
      "--label", sys.argv[1], "--json"])
"""


def _crash_after_keygen(cli: Cli, label: str) -> str:
    """Run generate in a child that is killed right before the store write; the key id."""
    run = run_python(_KILLED_BEFORE_RECORD, {**cli.env, "TUI_CSR_PIN": cli.token.pin}, label)
    assert run.code == -signal.SIGKILL, run.err
    # The next start: the store reads fine, and has no record of the key.
    assert [d for d in json_out(cli("list", "--json")) if d["label"] == label] == []
    orphans = json_out(cli("orphans", "list", "--json"))
    mine = [k for k in orphans["keys_without_record"] if k["label"] == label]
    assert len(mine) == 1, orphans
    assert orphans["records_without_key"] == []
    human = cli("orphans", "list")
    assert human.code == 0 and f"key without a record: {mine[0]['key_id']}" in human.out
    return mine[0]["key_id"]


async def test_killed_between_keygen_and_record_then_destroyed(cli: Cli,
                                                               service: CsrService) -> None:
    label = f"crash-destroy-{os.getpid()}"
    key_id = _crash_after_keygen(cli, label)
    assert await service.token.key_exists(bytes.fromhex(key_id))
    r = cli("orphans", "destroy", key_id)
    assert r.code == 2 and "--yes" in r.err  # asks first
    r = cli("orphans", "destroy", key_id, "--yes")
    assert r.code == 0, r.err
    assert not await service.token.key_exists(bytes.fromhex(key_id))
    assert [k for k in await service.token.list_keys() if k.label == label] == []
    orphans = json_out(cli("orphans", "list", "--json"))
    assert key_id not in {k["key_id"] for k in orphans["keys_without_record"]}
    assert any(e.action == "destroy-orphan" and e.subject == key_id
               for e in Store.open(cli.data_dir).list_audit())


async def test_killed_between_keygen_and_record_then_adopted(cli: Cli,
                                                             service: CsrService) -> None:
    label = f"crash-adopt-{os.getpid()}"
    key_id = _crash_after_keygen(cli, label)
    doc = json_out(cli("orphans", "adopt", key_id, "--cn", "adopted.example", "--group", GROUP,
                       "--json"))
    assert doc["key_id"] == key_id and doc["label"] == label and doc["key_spec"] == "P-256"
    csr = x509.load_pem_x509_csr(doc["csr_pem"].encode())
    assert csr.is_signature_valid
    spki = await service.token.public_key_spki(bytes.fromhex(key_id))
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    assert csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == spki
    assert [d["id"] for d in json_out(cli("list", "--json"))] == [doc["id"]]
    orphans = json_out(cli("orphans", "list", "--json"))
    assert key_id not in {k["key_id"] for k in orphans["keys_without_record"]}
    assert cli("delete", doc["id"], "--yes").code == 0
    assert not await service.token.key_exists(bytes.fromhex(key_id))


# Killed inside key generation: the key pair exists (with its temporary id), nothing after it
# ran. Regression: the marker was written last, so such a key was invisible to the orphan scan.
_KILLED_INSIDE_KEYGEN = CLI_MAIN + """
import os, signal
from tui_csr.hsm import token
def killed(spki):
    os.kill(os.getpid(), signal.SIGKILL)
token.key_id_for = killed
main(["generate", "--key-spec", "P-256", "--cn", sys.argv[1], "--group", "Web",
      "--label", sys.argv[1]])
"""


async def test_killed_inside_key_generation_is_still_found(cli: Cli, service: CsrService) -> None:
    label = f"crash-keygen-{os.getpid()}"
    run = run_python(_KILLED_INSIDE_KEYGEN, {**cli.env, "TUI_CSR_PIN": cli.token.pin}, label)
    assert run.code == -signal.SIGKILL, run.err
    orphans = json_out(cli("orphans", "list", "--json"))
    mine = [k for k in orphans["keys_without_record"] if k["label"] == label]
    assert len(mine) == 1, orphans
    assert cli("orphans", "destroy", mine[0]["key_id"], "--yes").code == 0
    assert [k for k in await service.token.list_keys() if k.label == label] == []


async def test_next_tui_start_offers_the_orphan(cli: Cli, token) -> None:
    """The TUI's next start finds the same key and offers to adopt or destroy it."""
    from textual.widgets import DataTable

    from tests.integration.conftest import make_settings
    from tests.reliability.test_ui_faults import settle
    from tui_csr.ui.app import TuiCsrApp
    from tui_csr.ui.dialogs.orphans import OrphansDialog

    label = f"crash-tui-{os.getpid()}"
    key_id = await asyncio.to_thread(_crash_after_keygen, cli, label)
    service = CsrService.create(make_settings(token, cli.data_dir))
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OrphansDialog) and app.is_running
        table = app.screen.query_one("#keys", DataTable)
        rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert any(label in row for row in rows), rows
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, OrphansDialog)
    await service.token.close()  # on the token thread, after any call the app left running
    r = await asyncio.to_thread(cli, "orphans", "destroy", key_id, "--yes")
    assert r.code == 0, r.err
