"""Several processes on one store file: no lost writes, never unreadable, survives kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tui_csr.core.models import Request, Status, utcnow
from tui_csr.store.repo import STORE_FILE_NAME, Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# Run by each child process: `worker.py MODE STORE ARG...`.
WORKER = textwrap.dedent(
    '''
    import json, sys, time, uuid
    from pathlib import Path

    from tui_csr.core.models import Request, Status, utcnow
    from tui_csr.store.repo import Store

    PEM = "-----BEGIN CERTIFICATE REQUEST-----\\n" + "A" * 64 + "\\n-----END CERTIFICATE REQUEST-----\\n"

    def make(label):
        key_id = uuid.uuid4().hex[:16]
        return Request(
            id=uuid.uuid4().hex, label=label, subject=f"CN={label}.example.org,O=Example,C=GB",
            subject_fields={"CN": f"{label}.example.org", "O": "Example", "C": "GB"},
            sans=[("dns", f"{label}.example.org")], key_spec="P-256", hash="SHA256",
            scheme="ECDSA", token_label="demo", key_id=key_id,
            pkcs11_uri=f"pkcs11:token=demo;object={label};type=private", csr_pem=PEM * 20,
            groups=["web"], owner="alice", created=utcnow(), created_by="alice",
            status=Status.PENDING, token_serial="0123456789abcdef",
        )

    mode, path = sys.argv[1], Path(sys.argv[2])
    store = Store(path)
    if mode == "add":
        tag, count, go = sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
        while not go.exists():
            time.sleep(0.001)
        for i in range(count):
            store.add_request(make(f"{tag}-{i}"))
    elif mode == "read":
        stop, go = Path(sys.argv[3]), Path(sys.argv[4])
        while not go.exists():
            time.sleep(0.001)
        reads = 0
        while not stop.exists():
            n = store.count_requests()
            labels = [r.label for r in store.list_requests(None)]
            assert len(labels) >= n, (len(labels), n)
            if path.exists():  # the raw file, read without the lock, is whole at every moment
                raw = json.loads(path.read_bytes())
                assert isinstance(raw, dict)
            reads += 1
        print(reads)
    elif mode == "loop":
        i = 0
        while True:
            store.add_request(make(f"{sys.argv[3]}-{i}"))
            i += 1
    '''
)


def make_request(label: str) -> Request:
    import uuid

    key_id = uuid.uuid4().hex[:16]
    return Request(
        id=uuid.uuid4().hex, label=label, subject=f"CN={label}.example.org,O=Example,C=GB",
        subject_fields={"CN": f"{label}.example.org", "O": "Example", "C": "GB"},
        sans=[("dns", f"{label}.example.org")], key_spec="P-256", hash="SHA256",
        scheme="ECDSA", token_label="demo", key_id=key_id,
        pkcs11_uri=f"pkcs11:token=demo;object={label};type=private",
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n",
        groups=["web"], owner="alice", created=utcnow(), created_by="alice",
        status=Status.PENDING, token_serial="0123456789abcdef",
    )


@pytest.fixture
def worker(tmp_path: Path) -> Path:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return script


def spawn(script: Path, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_concurrent_writers_and_a_reader(tmp_path: Path, worker: Path) -> None:
    path = tmp_path / "data" / STORE_FILE_NAME
    go, stop = tmp_path / "go", tmp_path / "stop"
    writers = [spawn(worker, "add", path, f"p{n}", 50, go) for n in range(4)]
    reader = spawn(worker, "read", path, stop, go)
    time.sleep(0.3)  # let the interpreters start, then release them together
    go.touch()
    try:
        for proc in writers:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    assert int(out) > 0  # the reader did read while the writers ran

    store = Store(path)
    requests = store.list_requests(None)
    assert len(requests) == 200
    assert len({r.id for r in requests}) == 200
    expected = {f"p{n}-{i}" for n in range(4) for i in range(50)}
    assert {r.label for r in requests} == expected


def test_kill_9_mid_write_leaves_a_usable_store(tmp_path: Path, worker: Path) -> None:
    path = tmp_path / "data" / STORE_FILE_NAME
    store = Store(path)
    rng = random.Random(1234)
    for round_no in range(5):
        before = store.count_requests()
        proc = spawn(worker, "loop", path, f"k{round_no}")
        try:
            deadline = time.monotonic() + 10
            target = before + 3 + 4 * round_no
            while store.count_requests() < target:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.03))  # a different moment inside a write each round
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL

        doc = json.loads(path.read_bytes())  # still whole JSON
        assert isinstance(doc["requests"], dict)
        fresh = Store(path)
        count = fresh.count_requests()
        assert count >= target
        fresh.add_request(make_request(f"after-{round_no}"))
        assert fresh.count_requests() == count + 1
        assert store.find_request_by_label(f"after-{round_no}") is not None
        leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        assert leftovers == []
