"""Stored profiles: typed in and out, audited, refused for non-admins, and safe with several
processes at once (no lost profile, no lost edit, a whole file after kill -9), like groups."""

from __future__ import annotations

import dataclasses
import json
import signal
import textwrap
import time
from pathlib import Path

import pytest

from tests.unit.test_store_processes import spawn
from tui_csr.config import Settings
from tui_csr.core.models import AuditEntry, Group
from tui_csr.core.profiles import Profile
from tui_csr.errors import InputError, NotFoundError, PermissionDeniedError
from tui_csr.service import CsrService
from tui_csr.store.repo import STORE_FILE_NAME, Store

WORKER = textwrap.dedent(
    '''
    import sys, time
    from pathlib import Path

    from tui_csr.core.models import AuditEntry
    from tui_csr.core.profiles import Profile
    from tui_csr.errors import InputError
    from tui_csr.store.repo import Store

    mode, path = sys.argv[1], Path(sys.argv[2])
    store = Store(path)
    if mode == "add":
        tag, count, go = sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
        while not go.exists():
            time.sleep(0.001)
        for i in range(count):
            store.add_profile(Profile(f"{tag}-{i}", key_specs=("P-256",)),
                              AuditEntry("profile-add", tag, f"{tag}-{i}"))
    elif mode == "edit":
        count, go = int(sys.argv[3]), Path(sys.argv[4])
        while not go.exists():
            time.sleep(0.001)
        done = retries = 0
        while done < count:  # read, change, write back; a raced edit is refused and retried
            current = store.get_profile("shared")
            new = Profile("shared", version=current.version + 1,
                          description=current.description + "x")
            try:
                store.update_profile(new, expected_version=current.version)
                done += 1
            except InputError:
                retries += 1
        print(retries)
    elif mode == "loop":
        i = 0
        while True:
            store.add_profile(Profile(f"{sys.argv[3]}-{i}", description="k" * 200))
            i += 1
    '''
)


@pytest.fixture
def worker(tmp_path: Path) -> Path:
    script = tmp_path / "profile_worker.py"
    script.write_text(WORKER)
    return script


def test_store_round_trip_and_rules(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    p = Profile("web-ev", key_specs=("P-256",), dn_defaults=(("O", "Example"),), ca=False,
                eku=("serverAuth",), eku_allowed=("serverAuth",))
    store.add_profile(p, AuditEntry("profile-add", "alice", "web-ev"))
    assert store.get_profile("WEB-EV") == p
    with pytest.raises(InputError, match="already exists"):
        store.add_profile(Profile("Web-Ev".lower()))
    changed = dataclasses.replace(p, version=2, description="EV")
    store.update_profile(changed, expected_version=1)
    with pytest.raises(InputError, match="was changed meanwhile"):
        store.update_profile(dataclasses.replace(p, version=2), expected_version=1)
    store.add_group(Group("EV", policy="web-ev"))
    with pytest.raises(InputError, match="is the policy of group 'EV'"):
        store.remove_profile("web-ev")
    store.update_group("EV", policy="", description="")
    store.remove_profile("web-ev")
    with pytest.raises(NotFoundError):
        store.get_profile("web-ev")
    assert store.list_profiles() == []
    assert [e.action for e in store.list_audit()] == ["profile-add"]


def test_a_hand_damaged_profile_is_a_store_error_naming_it(tmp_path: Path) -> None:
    from tui_csr.errors import StoreError

    store = Store.open(tmp_path)
    store.add_profile(Profile("ok"))
    doc = json.loads(store.path.read_text())
    doc["profiles"]["1"]["key_specs"] = ["RSA512"]
    store.path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"damaged profile record \(ok\)"):
        Store(store.path).list_profiles()


async def test_service_is_admin_only_audited_and_keeps_builtins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admins=["alice", "bob"])
    admin = CsrService.create(settings, user="alice")
    other = CsrService.create(settings, user="mallory")
    for call in (lambda: other.add_profile(Profile("x")),
                 lambda: other.edit_profile("x", {"ski": True}),
                 lambda: other.remove_profile("x")):
        with pytest.raises(PermissionDeniedError) as info:
            await call()
        assert info.value.message.endswith("'mallory' is not one (administrators: alice, "
                                           "bob).")
    made = await admin.add_profile(Profile("ca2"), copy_of="sub-ca",
                                   changes={"path_len_max": 2})
    assert made.version == 1 and made.ca is True and made.path_len_max == 2
    assert not made.builtin and made.created_by == "alice"
    edited = await admin.edit_profile("ca2", {"path_len": 1})
    assert edited.version == 2 and (await other.get_profile("ca2")) == edited
    with pytest.raises(InputError, match="is built in and cannot be edited"):
        await admin.edit_profile("tls-server", {"ski": True})
    with pytest.raises(InputError, match="is built in and cannot be removed"):
        await admin.remove_profile("generic")
    with pytest.raises(InputError, match="is a built-in name"):
        await admin.add_profile(Profile("smime"))
    with pytest.raises(InputError, match="path length 3 is above the maximum 2"):
        await admin.edit_profile("ca2", {"path_len": 3})
    assert (await other.get_profile("ca2")).version == 2  # a refused edit wrote nothing
    names = [p.name for p in await other.list_profiles()]
    assert names[-1] == "ca2" and names[0] == "tls-server"
    await admin.remove_profile("ca2")
    audit = [(e.action, e.user, e.subject) for e in admin.store.list_audit()]
    assert ("profile-add", "alice", "ca2") in audit
    assert ("profile-edit", "alice", "ca2") in audit
    assert ("profile-remove", "alice", "ca2") in audit
    assert await admin.policy_problem("ca2") == ("'ca2' names no profile: a label without "
                                                 "constraints")
    assert await admin.policy_problem("tls-server") is None
    assert await admin.policy_problem("") is None


@pytest.mark.slow
def test_concurrent_profile_writers_lose_nothing(tmp_path: Path, worker: Path) -> None:
    path = tmp_path / "data" / STORE_FILE_NAME
    Store(path).add_profile(Profile("shared"))
    go = tmp_path / "go"
    adders = [spawn(worker, "add", path, f"p{n}", 15, go) for n in range(3)]
    editors = [spawn(worker, "edit", path, 10, go) for _ in range(2)]
    time.sleep(0.3)
    go.touch()
    for proc in adders + editors:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = Store(path)
    names = {p.name for p in store.list_profiles()}
    assert names == {"shared"} | {f"p{n}-{i}" for n in range(3) for i in range(15)}
    shared = store.get_profile("shared")
    assert shared.version == 21 and shared.description == "x" * 20  # every edit landed once
    assert sum(1 for e in store.list_audit() if e.action == "profile-add") == 45


@pytest.mark.slow
def test_kill_9_mid_profile_write_leaves_a_usable_store(tmp_path: Path, worker: Path) -> None:
    path = tmp_path / "data" / STORE_FILE_NAME
    store = Store(path)
    for round_no in range(3):
        before = len(store.list_profiles())
        proc = spawn(worker, "loop", path, f"k{round_no}")
        try:
            deadline = time.monotonic() + 20
            while len(store.list_profiles()) < before + 3:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        json.loads(path.read_bytes())  # whole JSON
        fresh = Store(path)
        count = len(fresh.list_profiles())
        assert count >= before + 3
        fresh.add_profile(Profile(f"after-{round_no}"))
        assert len(fresh.list_profiles()) == count + 1
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

