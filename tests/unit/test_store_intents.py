"""Write-ahead intents in the store: recorded before a key pair exists, closed in the same write
as its request (or once the pair is destroyed), replayed from the journal, and kept track of
when a writer is killed at any moment."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.unit.test_store import make_request
from tui_csr.core.models import AuditEntry, Intent, IntentState, utcnow
from tui_csr.errors import InputError, NotFoundError, StoreError
from tui_csr.store import journal
from tui_csr.store.leases import LeaseHeldError
from tui_csr.store.repo import STORE_FILE_NAME, Store

ROOT = Path(__file__).resolve().parents[2]


def make_intent(label: str = "web-01", **changes: object) -> Intent:
    fields: dict[str, object] = {
        "id": uuid.uuid4().hex, "store_id": "f" * 32, "label": label,
        "key_id": os.urandom(20).hex(), "key_spec": "P-256", "token_label": "demo",
        "created_by": "alice", "created": utcnow(), "token_serial": "0123456789abcdef",
    }
    fields.update(changes)
    return Intent(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "data")


@pytest.fixture
def journaled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store counts as large: writes go to the journal (see test_store_journal)."""
    monkeypatch.setattr(journal, "MIN_STORE_BYTES", 1)
    monkeypatch.setattr(journal, "MIN_FOLD_BYTES", 1 << 16)


def test_an_intent_round_trips_and_other_instances_see_it(store: Store, tmp_path: Path) -> None:
    intent = make_intent()
    store.open_intent(intent, AuditEntry("intent", "alice", intent.id))
    other = Store.open(tmp_path / "data")
    assert other.list_intents() == [intent]
    assert other.get_intent(intent.id) == intent
    assert intent.key_ids == (intent.key_id,)
    target = os.urandom(20).hex()
    changed = other.set_intent_target(intent.id, target.upper())
    assert changed.final_key_id == target and changed.key_ids == (intent.key_id, target)
    assert store.get_intent(intent.id) == changed  # the first instance sees the change
    raw = json.loads(store.path.read_bytes())
    assert [d["state"] for d in raw["intents"].values()] == ["open"]
    with pytest.raises(NotFoundError):
        store.get_intent("0" * 32)


def test_add_request_closes_the_intent_in_the_same_write(store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    intent = make_intent()
    store.open_intent(intent)
    req = make_request(key_id=intent.key_id)
    commits: list[str] = []
    real = store._storage.commit

    def counted(data, changes=None, op=""):
        commits.append(op)
        return real(data, changes, op)

    monkeypatch.setattr(store._storage, "commit", counted)
    store.add_request(req, AuditEntry("generate", "alice", req.id), close_intent=intent.id)
    assert commits == ["add_request"]  # one write: the record and the closed intent together
    closed = store.get_intent(intent.id)
    assert closed.state is IntentState.RECORDED and closed.request_id == req.id
    assert closed.closed is not None
    assert store.list_intents() == []
    assert store.get_request(req.id) == req


def test_a_closed_intent_refuses_a_request_and_nothing_is_written(store: Store) -> None:
    intent = make_intent()
    store.open_intent(intent)
    store.close_intent(intent.id, IntentState.DESTROYED)
    before = store.path.read_bytes()
    with pytest.raises(StoreError, match="already closed"):
        store.add_request(make_request(key_id=intent.key_id), close_intent=intent.id)
    assert store.path.read_bytes() == before
    assert store.list_requests(None) == []
    with pytest.raises(NotFoundError):
        store.add_request(make_request(), close_intent="0" * 32)
    assert store.list_requests(None) == []


def test_a_taken_label_keeps_the_intent_open(store: Store) -> None:
    store.add_request(make_request("web"))
    intent = make_intent("web")
    store.open_intent(intent)
    with pytest.raises(InputError, match="labelled 'web'"):
        store.add_request(make_request("web"), close_intent=intent.id)
    assert store.list_intents() == [intent]


def test_close_states(store: Store) -> None:
    a, b = make_intent("a"), make_intent("b")
    store.open_intent(a)
    store.open_intent(b)
    done = store.close_intent(a.id, IntentState.DESTROYED, AuditEntry("destroy", "x", a.id))
    assert done.state is IntentState.DESTROYED
    assert store.close_intent(a.id, IntentState.DESTROYED) == done  # again: unchanged
    with pytest.raises(StoreError, match="already closed"):
        store.close_intent(a.id, IntentState.ABANDONED)
    with pytest.raises(StoreError, match="already closed"):
        store.set_intent_target(a.id, "00")
    with pytest.raises(ValueError):
        store.close_intent(b.id, IntentState.RECORDED)  # only a request's write records it
    store.close_intent(b.id, IntentState.ABANDONED)
    assert store.list_intents() == []
    assert {i.label: i.state for i in store.list_intents(None)} == {
        "a": IntentState.DESTROYED, "b": IntentState.ABANDONED}
    assert [e.action for e in store.list_audit()] == ["destroy"]


def test_intents_closed_long_ago_are_pruned(store: Store) -> None:
    from datetime import timedelta

    from tui_csr.store.repo import INTENTS_KEPT

    old, recent, still_open = make_intent("old"), make_intent("recent"), make_intent("open")
    for intent in (old, recent, still_open):
        store.open_intent(intent)
    store.close_intent(old.id, IntentState.ABANDONED)
    store.close_intent(recent.id, IntentState.DESTROYED)
    raw = json.loads(store.path.read_bytes())
    for doc in raw["intents"].values():  # "old" was closed, and "open" opened, long ago
        if doc["label"] in ("old", "open"):
            when = (utcnow() - INTENTS_KEPT - timedelta(days=1)).isoformat()
            doc["closed" if doc["label"] == "old" else "created"] = when.replace("+00:00", "Z")
    store.path.write_text(json.dumps(raw))
    store = Store(store.path)
    store.open_intent(make_intent("new"))  # the next generation's write prunes
    assert sorted(i.label for i in store.list_intents(None)) == ["new", "open", "recent"]


def test_a_key_id_in_use_is_refused_before_anything_is_made(store: Store) -> None:
    req = make_request()
    store.add_request(req)
    with pytest.raises(InputError, match="taken by request") as err:
        store.open_intent(make_intent(key_id=req.key_id))
    assert err.value.field == "key_id"
    first = make_intent()
    store.open_intent(first)
    with pytest.raises(InputError, match="being generated"):
        store.open_intent(make_intent(key_id=first.key_id))
    target = os.urandom(20).hex()
    store.set_intent_target(first.id, target)
    with pytest.raises(InputError, match="being generated"):
        store.open_intent(make_intent(key_id=target))
    with pytest.raises(InputError, match="already exists"):
        store.open_intent(first)
    store.close_intent(first.id, IntentState.DESTROYED)
    store.open_intent(make_intent(key_id=first.key_id))  # a destroyed pair's id is free again
    assert len(store.list_intents()) == 1


def test_the_journal_replays_intents(tmp_path: Path, journaled: None) -> None:
    data = tmp_path / "data"
    store = Store.open(data)
    store.add_request(make_request("first"))  # the file exists, whole; later writes append
    whole = store.path.read_bytes()
    intent = make_intent()
    store.open_intent(intent)
    store.set_intent_target(intent.id, "ab" * 20)
    req = make_request("second", key_id="ab" * 20)
    store.add_request(req, close_intent=intent.id)
    other = make_intent("other")
    store.open_intent(other)
    assert store.path.read_bytes() == whole  # all four writes went to the journal
    lines = (data / (STORE_FILE_NAME + ".log")).read_bytes().splitlines()
    assert len(lines) == 4 and all(b'"intents"' in line for line in lines)
    fresh = Store.open(data)  # another process: the file plus the journal's replay
    assert fresh.list_intents() == [other]
    closed = fresh.get_intent(intent.id)
    assert (closed.state, closed.final_key_id, closed.request_id) == (
        IntentState.RECORDED, "ab" * 20, req.id)
    journal.MIN_FOLD_BYTES = 1  # the next write folds the journal into the file
    fresh.close_intent(other.id, IntentState.ABANDONED)
    assert not (data / (STORE_FILE_NAME + ".log")).exists()
    assert {i.label: i.state for i in Store.open(data).list_intents(None)} == {
        "web-01": IntentState.RECORDED, "other": IntentState.ABANDONED}


def test_a_damaged_intent_is_named(store: Store) -> None:
    intent = make_intent("bad")
    store.open_intent(intent)
    raw = json.loads(store.path.read_bytes())
    del next(iter(raw["intents"].values()))["created"]
    store.path.write_text(json.dumps(raw))
    with pytest.raises(StoreError, match=r"damaged intent record \(bad\)"):
        Store(store.path).list_intents()


# -- leases: a generation in progress is nobody's orphan ---------------------------------------

_HOLDER = textwrap.dedent('''
    import sys, time
    from tui_csr.store.repo import Store
    store = Store.open(sys.argv[1])
    with store.intent_lease(sys.argv[2]):
        print("held", flush=True)
        time.sleep(120)
''')


def test_a_lease_is_held_until_its_holder_ends_or_dies(store: Store) -> None:
    intent = make_intent()
    with store.intent_lease(intent.id):
        store.open_intent(intent)
        assert store.intent_in_progress(intent.id)  # this process's own generation too
        with pytest.raises(LeaseHeldError), store.intent_lease(intent.id):
            pass
    assert not store.intent_in_progress(intent.id)
    assert not any(store._leases.iterdir())  # the holder removed its file
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store.path.parent), intent.id],
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        assert store.intent_in_progress(intent.id)
        with pytest.raises(LeaseHeldError, match="Another tui-csr process"), \
                store.intent_lease(intent.id):
            pass
    finally:
        proc.kill()
        proc.wait()
    assert not store.intent_in_progress(intent.id)  # killed: its lock went with it
    assert any(store._leases.iterdir())  # ... though its file stayed
    store.close_intent(intent.id, IntentState.ABANDONED)
    assert not any(store._leases.iterdir())  # closing removes what the dead holder left
    with pytest.raises(StoreError, match="not an intent id"):
        store.intent_in_progress("../x")


# -- kill -9 of a writer at random points -------------------------------------------------------

# The writer stands in for a generation: intent first, then the "key pair" (a file in TOKEN,
# made and removed like a key on a token), its id rewritten, then the record (closing the
# intent in the same write), or, every third one, the pair destroyed and then the intent
# closed. It prints each step once it returned.
_WRITER = textwrap.dedent('''
    import os, sys, uuid
    from pathlib import Path
    from tests.unit.test_store import make_request
    from tests.unit.test_store_intents import make_intent
    from tui_csr.core.models import AuditEntry, IntentState
    from tui_csr.store import journal
    from tui_csr.store.repo import Store

    data, token, first, large = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if large == "1":
        journal.MIN_STORE_BYTES, journal.MIN_FOLD_BYTES = 1, 1 << 14
    store = Store.open(data)

    def durable(path, make):
        if make:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fsync(fd)
            os.close(fd)
        else:
            os.unlink(path)
        dfd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)

    i = first
    while True:
        intent = make_intent(f"k{i}")
        with store.intent_lease(intent.id):
            store.open_intent(intent)
            print("intent", i, intent.id, flush=True)
            durable(token / intent.key_id, True)
            final = uuid.uuid4().hex + "00000000"
            store.set_intent_target(intent.id, final)
            os.rename(token / intent.key_id, token / final)
            if i % 3:
                req = make_request(f"k{i}", key_id=final)
                store.add_request(req, AuditEntry("generate", "w", req.id),
                                  close_intent=intent.id)
                print("recorded", i, req.id, flush=True)
            else:
                durable(token / final, False)
                store.close_intent(intent.id, IntentState.DESTROYED)
                print("destroyed", i, flush=True)
        i += 1
''')


def _check_nothing_lost(data: Path, token: Path, acked: list[list[str]]) -> None:
    store = Store.open(data)
    requests = {r.key_id: r for r in store.list_requests(None) if r.label != "seed"}
    intents = store.list_intents(None)
    open_ids = {kid for i in intents if i.state is IntentState.OPEN for kid in i.key_ids}
    # Every key pair on the "token" has a record or an open intent: nothing lost track of.
    for pair in os.listdir(token):
        assert pair in requests or pair in open_ids, (pair, intents)
    # The record and its closed intent landed together, never one without the other.
    by_request = {i.request_id: i for i in intents if i.state is IntentState.RECORDED}
    assert {r.id for r in requests.values()} == set(by_request)
    for intent in by_request.values():
        assert requests[intent.final_key_id].id == intent.request_id
    # Every acknowledged step is in the store; no lease is still held.
    by_id = {i.id: i for i in intents}
    for step in acked:
        if step[0] == "intent":
            assert step[2] in by_id
        elif step[0] == "recorded":
            assert any(r.id == step[2] for r in requests.values())
    assert not any(store.intent_in_progress(i.id) for i in intents)


@pytest.mark.slow
@pytest.mark.parametrize("large", [False, True], ids=["whole-file", "journaled"])
def test_kill_9_of_a_writer_loses_track_of_nothing(tmp_path: Path, large: bool) -> None:
    data, token = tmp_path / "data", tmp_path / "token"
    token.mkdir()
    Store.open(data).add_request(make_request("seed"))
    rng = random.Random(20261201)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start, kills_mid_generation = 0, 0
    for _round in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(data), str(token),
                                 str(start), "1" if large else "0"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        acked = [proc.stdout.readline().decode().split()]  # the first intent is written
        assert acked[0], proc.stderr.read()
        for _ in range(rng.randrange(0, 6)):  # a few more steps, then a kill at a random byte
            acked.append(proc.stdout.readline().decode().split())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked += [line.decode().split() for line in proc.stdout.read().splitlines()]
        _check_nothing_lost(data, token, acked)
        kills_mid_generation += bool(Store.open(data).list_intents())
        start = int(acked[-1][1]) + 1
    assert kills_mid_generation > 0  # some kills left a generation half done, and it was found


@pytest.mark.parametrize("point", ["store-write:open_intent", "store-write:set_intent_target",
                                   "store-write:add_request", "store-write:close_intent"])
@pytest.mark.parametrize("large", [False, True], ids=["whole-file", "journaled"])
def test_kill_9_inside_each_store_write(tmp_path: Path, point: str, large: bool) -> None:
    """Killed exactly inside one write (the new file fsynced, not yet renamed; or half of the
    journal line written): that write is lost whole, and what came before holds."""
    data, token = tmp_path / "data", tmp_path / "token"
    token.mkdir()
    Store.open(data).add_request(make_request("seed"))
    # The third generation (i=3) destroys its pair: the only one that calls close_intent.
    start = 3 if point == "store-write:close_intent" else 1
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(data), str(token), str(start),
                             "1" if large else "0"],
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "TUI_CSR_TEST_PAUSE_AT": point},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr.readline().decode() == f"tui-csr: paused at {point}\n"
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)  # it is stopped inside the write it was aimed at
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    acked = [line.decode().split() for line in proc.stdout.read().splitlines()]
    _check_nothing_lost(data, token, acked)
    store = Store.open(data)
    intents = store.list_intents(None)
    if point == "store-write:open_intent":
        assert intents == [] and os.listdir(token) == []  # nothing was made
    else:
        assert [i.state for i in intents] == [IntentState.OPEN]  # found by the next scan
        pairs = os.listdir(token)  # none when killed closing a destroyed pair's intent
        assert len(pairs) == (point != "store-write:close_intent")
        assert set(pairs) <= set(intents[0].key_ids)
    assert [r.label for r in store.list_requests(None)] == ["seed"]
