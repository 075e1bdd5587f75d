"""The store's journal: a large store appends small writes instead of rewriting the whole file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.unit import test_store
from tui_csr.core.models import AuditEntry, Group, Status, utcnow
from tui_csr.errors import StoreError
from tui_csr.store import journal
from tui_csr.store.repo import STORE_FILE_NAME, Store

ROOT = Path(__file__).resolve().parents[2]


def make_request(label: str, **changes: object):  # -> Request
    """test_store's request, with a key spec the store's record checks accept."""
    return test_store.make_request(label, **{"key_spec": "RSA3072", **changes})


@pytest.fixture
def journaled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store counts as large, and the journal folds in after ~4 KB."""
    monkeypatch.setattr(journal, "MIN_STORE_BYTES", 1)
    monkeypatch.setattr(journal, "MIN_FOLD_BYTES", 4096)


def start(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "data")
    store.add_group(Group("web"))  # the first write makes the file, whole
    return store


def journal_of(store: Store) -> Path:
    return store.path.with_name(STORE_FILE_NAME + ".log")


def test_small_writes_go_to_the_journal_and_every_reader_sees_them(
        tmp_path: Path, journaled: None) -> None:
    store = start(tmp_path)
    whole = store.path.read_bytes()
    req = make_request("a")
    store.add_request(req, AuditEntry("generate", "alice", req.id))
    assert store.path.read_bytes() == whole  # the file was not rewritten
    lines = journal_of(store).read_bytes().splitlines()
    assert len(lines) == 1
    ops = json.loads(lines[0])["ops"]
    assert [op[0] for op in ops] == ["requests", "audit"]
    assert stat.S_IMODE(journal_of(store).stat().st_mode) == 0o600

    other = Store.open(tmp_path / "data")  # a second process, in effect
    assert other.get_request(req.id) == req
    assert other.count_requests() == 1 and len(other.list_audit()) == 1
    b = make_request("b")
    other.add_request(b)
    assert store.find_request_by_label("b") == b  # the first catches up from the journal


def test_updates_removals_and_renames_survive_a_fresh_read(tmp_path: Path,
                                                           journaled: None) -> None:
    store = start(tmp_path)
    a, b = make_request("a", groups=["web"]), make_request("b", groups=["web"])
    store.add_request(a)
    store.add_request(b)
    a.status, a.issued = Status.ISSUED, utcnow()
    store.update_request(a)
    store.remove_request(b.id)
    store.rename_group("web", "www")
    fresh = Store.open(tmp_path / "data")
    got = fresh.get_request(a.id)
    assert got.status is Status.ISSUED and got.groups == ["www"]
    assert fresh.count_requests() == 1
    assert [g.name for g in fresh.list_groups()] == ["www"]


def test_the_journal_is_folded_into_the_file(tmp_path: Path, journaled: None) -> None:
    store = start(tmp_path)
    added = []
    for n in range(12):  # ~1.3 KB a line: the fold comes after about three
        req = make_request(f"r{n}")
        store.add_request(req)
        added.append(req)
    assert journal_of(store).stat().st_size < 4096 + 2000
    on_disk = json.loads(store.path.read_bytes())
    assert len(on_disk["requests"]) >= 3  # folded at least once: the file holds them
    fresh = Store.open(tmp_path / "data")
    assert {r.id for r in fresh.list_requests()} == {r.id for r in added}


def test_a_cut_short_last_line_is_ignored_then_cut_off(tmp_path: Path, journaled: None) -> None:
    store = start(tmp_path)
    first = make_request("first")
    store.add_request(first)
    with open(journal_of(store), "ab") as fh:
        fh.write(b'{"ops": [["requests", "9", {"id": "half')  # a writer killed mid-line
    fresh = Store.open(tmp_path / "data")
    assert [r.label for r in fresh.list_requests()] == ["first"]
    second = make_request("second")
    fresh.add_request(second)
    assert all(line.startswith(b'{"ops"') and line.endswith(b"]]}")
               for line in journal_of(store).read_bytes().splitlines())
    assert {r.label for r in Store.open(tmp_path / "data").list_requests()} == {"first",
                                                                               "second"}


def test_a_damaged_line_makes_the_store_unreadable_and_untouched(tmp_path: Path,
                                                                 journaled: None) -> None:
    store = start(tmp_path)
    store.add_request(make_request("a"))
    path = journal_of(store)
    path.write_bytes(path.read_bytes() + b"not json\n")
    before = (store.path.read_bytes(), path.read_bytes())
    fresh = Store.open(tmp_path / "data")
    for action in (fresh.list_requests, lambda: fresh.add_request(make_request("b"))):
        with pytest.raises(StoreError) as exc:
            action()
        assert "journal" in exc.value.message and "left untouched" in exc.value.message
    assert (store.path.read_bytes(), path.read_bytes()) == before


def test_a_journal_that_outlived_its_fold_changes_nothing(tmp_path: Path,
                                                          journaled: None) -> None:
    store = start(tmp_path)
    a = make_request("a")
    store.add_request(a)
    a.owner = "bob"
    store.update_request(a)
    stale = journal_of(store).read_bytes()
    store._storage.write(store._storage.read())  # fold: the file now holds both writes
    assert not journal_of(store).exists()
    journal_of(store).write_bytes(stale)  # as if the process died before removing it
    fresh = Store.open(tmp_path / "data")
    assert fresh.list_requests() == [a] and fresh.get_request(a.id).owner == "bob"


def test_large_store_takes_the_journal_without_any_setting(tmp_path: Path) -> None:
    store = start(tmp_path)
    data = store._storage.read()
    data["requests"] = {str(n + 1): make_request(f"bulk{n}").to_doc() for n in range(1000)}
    store._storage.write(data)
    assert store.path.stat().st_size >= journal.MIN_STORE_BYTES
    whole = store.path.read_bytes()
    store.add_request(make_request("one-more"))
    assert store.path.read_bytes() == whole and journal_of(store).exists()
    assert Store.open(tmp_path / "data").count_requests() == 1001


WRITER = textwrap.dedent('''
    import sys, uuid
    sys.path.insert(0, sys.argv[3])
    from tests.unit.test_store_journal import make_request
    from tui_csr.store.repo import Store
    store = Store(sys.argv[1])
    for i in range(15):
        store.add_request(make_request(f"{sys.argv[2]}-{i}"))
''')


@pytest.mark.slow
def test_concurrent_writers_on_a_large_store(tmp_path: Path) -> None:
    store = start(tmp_path)
    data = store._storage.read()
    data["requests"] = {str(n + 1): make_request(f"bulk{n}").to_doc() for n in range(1000)}
    store._storage.write(data)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), f"w{n}",
                               str(ROOT)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stderr=subprocess.PIPE, text=True) for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    labels = {r.label for r in Store(store.path).list_requests(None)}
    assert len(labels) == 1045
    assert {f"w{n}-{i}" for n in range(3) for i in range(15)} <= labels


LOOPER = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[3])
    from tests.unit.test_store_journal import make_request
    from tui_csr.store.repo import Store
    store = Store(sys.argv[1])
    i = 0
    while True:
        store.add_request(make_request(f"{sys.argv[2]}-{i}"))
        i += 1
''')


@pytest.mark.slow
def test_kill_9_mid_append_leaves_a_usable_store(tmp_path: Path) -> None:
    import signal
    import time

    store = start(tmp_path)
    data = store._storage.read()
    data["requests"] = {str(n + 1): make_request(f"bulk{n}").to_doc() for n in range(1000)}
    store._storage.write(data)
    for round_no in range(3):
        before = store.count_requests()
        proc = subprocess.Popen([sys.executable, "-c", LOOPER, str(store.path), f"k{round_no}",
                                 str(ROOT)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while store.count_requests() < before + 5 + round_no:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.002)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        fresh = Store(store.path)
        count = fresh.count_requests()
        assert count >= before + 5 + round_no
        fresh.add_request(make_request(f"after-{round_no}"))
        assert Store(store.path).count_requests() == count + 1
