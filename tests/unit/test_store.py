"""Store: CRUD, refusals, file modes, corrupt files and changes made by another instance."""

from __future__ import annotations

import json
import os
import stat
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tui_csr.core.models import AuditEntry, Group, Request, Status, utcnow
from tui_csr.errors import InputError, NotFoundError, StoreError
from tui_csr.store import storage as storage_mod
from tui_csr.store.lock import store_lock
from tui_csr.store.repo import STORE_FILE_NAME, Store

PEM = (
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n" * 8
    + "-----END CERTIFICATE REQUEST-----\n"
)


def make_request(label: str = "web-01", **changes: object) -> Request:
    """A request with every field filled in plausibly."""
    key_id = uuid.uuid4().hex[:16]
    fields: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "label": label,
        "subject": f"CN={label}.example.org,O=Example Ltd,C=GB",
        "subject_fields": {"CN": f"{label}.example.org", "O": "Example Ltd", "C": "GB"},
        "sans": [("dns", f"{label}.example.org"), ("email", "pki@example.org")],
        "key_spec": "RSA3072",
        "hash": "SHA256",
        "scheme": "PKCS1v15",
        "token_label": "demo",
        "key_id": key_id,
        "pkcs11_uri": f"pkcs11:token=demo;id=%{key_id[:2]};object={label};type=private",
        "csr_pem": PEM,
        "groups": ["web"],
        "owner": "alice",
        "created": utcnow(),
        "created_by": "alice",
        "status": Status.PENDING,
        "token_serial": "0123456789abcdef",
        "certificate_pem": None,
        "issued": None,
    }
    fields.update(changes)
    return Request(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "data")


def store_file(store: Store) -> Path:
    return store.path


# -- requests -----------------------------------------------------------------------------------


def test_add_and_get_round_trip(store: Store) -> None:
    req = make_request()
    store.add_request(req)
    assert store.get_request(req.id) == req
    assert store.count_requests() == 1
    assert store.find_request_by_label("web-01") == req
    assert store.find_request_by_label("nope") is None


def test_get_request_by_unique_prefix(store: Store) -> None:
    a = make_request("a", id="abcd1111")
    b = make_request("b", id="abcd2222")
    store.add_request(a)
    store.add_request(b)
    assert store.get_request("abcd1").label == "a"
    with pytest.raises(InputError) as exc:
        store.get_request("abcd")
    assert exc.value.field == "id" and "2 requests" in exc.value.message
    with pytest.raises(NotFoundError):
        store.get_request("abc")  # shorter than 4 characters: no prefix matching


def test_get_missing_request_names_the_id(store: Store) -> None:
    with pytest.raises(NotFoundError) as exc:
        store.get_request("deadbeef")
    assert "deadbeef" in exc.value.message


def test_duplicate_label_and_id_are_refused(store: Store) -> None:
    first = make_request("web-01")
    store.add_request(first)
    with pytest.raises(InputError) as exc:
        store.add_request(make_request("web-01"))
    assert exc.value.field == "label"
    assert exc.value.message == "A request labelled 'web-01' already exists."
    with pytest.raises(InputError) as exc:
        store.add_request(make_request("other", id=first.id))
    assert exc.value.field == "id"
    assert store.count_requests() == 1


def test_list_requests_newest_first_and_by_status(store: Store) -> None:
    now = utcnow()
    old = make_request("old", created=now - timedelta(days=2))
    new = make_request("new", created=now)
    mid = make_request(
        "mid", created=now - timedelta(days=1), status=Status.ISSUED, issued=now,
        certificate_pem="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
    )
    same_second = make_request("same", created=now)
    for req in (old, new, mid, same_second):
        store.add_request(req)
    assert [r.label for r in store.list_requests()] == ["same", "new", "old"]
    assert [r.label for r in store.list_requests(Status.ISSUED)] == ["mid"]
    assert [r.label for r in store.list_requests(None)] == ["same", "new", "mid", "old"]
    assert store.count_requests(Status.ISSUED) == 1


def test_update_request(store: Store) -> None:
    req = make_request()
    store.add_request(req)
    store.add_request(make_request("taken"))
    req.status = Status.ISSUED
    req.issued = utcnow()
    req.groups = ["web", "mail"]
    store.update_request(req, AuditEntry("edit-groups", "bob", req.id, "web, mail"))
    assert store.get_request(req.id) == req
    assert store.list_audit()[0].action == "edit-groups"

    req.label = "taken"
    with pytest.raises(InputError) as exc:
        store.update_request(req)
    assert exc.value.field == "label"
    with pytest.raises(NotFoundError):
        store.update_request(make_request("ghost"))


def test_remove_request(store: Store) -> None:
    req = make_request()
    store.add_request(req)
    removed = store.remove_request(req.id, AuditEntry("delete", "alice", req.id))
    assert removed == req
    assert store.count_requests() == 0
    with pytest.raises(NotFoundError):
        store.remove_request(req.id)
    assert [e.action for e in store.list_audit()] == ["delete"]


def test_request_and_audit_are_written_together(store: Store) -> None:
    req = make_request()
    store.add_request(req, AuditEntry("generate", "alice", req.id, "RSA-3072"))
    doc = json.loads(store_file(store).read_bytes())
    assert len(doc["requests"]) == 1 and len(doc["audit"]) == 1
    # A refused add writes neither.
    with pytest.raises(InputError):
        store.add_request(make_request(), AuditEntry("generate", "alice", "x"))
    assert len(store.list_audit()) == 1


def test_returned_models_are_copies(store: Store) -> None:
    store.add_request(make_request())
    got = store.get_request(store.list_requests()[0].id)
    got.groups.append("mutated")
    got.subject_fields["CN"] = "mutated"
    again = store.get_request(got.id)
    assert again.groups == ["web"] and again.subject_fields["CN"] == "web-01.example.org"


# -- groups -------------------------------------------------------------------------------------


def test_groups_crud_and_unique_names(store: Store) -> None:
    store.add_group(Group("web", "Web servers", "tls-server", created_by="alice"))
    store.add_group(Group("Mail"))
    with pytest.raises(InputError) as exc:
        store.add_group(Group("WEB"))
    assert exc.value.field == "group" and exc.value.message == "Group 'web' already exists."
    assert store.get_group("WEB").description == "Web servers"
    assert [g.name for g in store.list_groups()] == ["Mail", "web"]
    with pytest.raises(NotFoundError):
        store.get_group("nope")


def test_rename_group_rewrites_requests(store: Store) -> None:
    store.add_group(Group("web"))
    store.add_group(Group("mail"))
    a = make_request("a", groups=["web", "mail"])
    b = make_request("b", groups=["mail"])
    store.add_request(a)
    store.add_request(b)
    renamed = store.rename_group("WEB", "www", AuditEntry("group-rename", "alice", "web", "www"))
    assert renamed.name == "www"
    assert store.get_request(a.id).groups == ["www", "mail"]
    assert store.get_request(b.id).groups == ["mail"]
    assert [g.name for g in store.list_groups()] == ["mail", "www"]
    with pytest.raises(InputError):
        store.rename_group("www", "MAIL")
    store.rename_group("www", "WWW")  # changing only the case is allowed
    assert store.get_request(a.id).groups == ["WWW", "mail"]
    with pytest.raises(NotFoundError):
        store.rename_group("gone", "x")


def test_remove_group_refused_while_used(store: Store) -> None:
    store.add_group(Group("web"))
    store.add_group(Group("empty"))
    for i in range(3):
        store.add_request(make_request(f"r{i}", groups=["web"]))
    with pytest.raises(InputError) as exc:
        store.remove_group("web")
    assert exc.value.field == "group"
    assert exc.value.message == "Group 'web' still holds 3 requests; move or delete them first."
    store.remove_group("EMPTY")
    assert [g.name for g in store.list_groups()] == ["web"]
    with pytest.raises(NotFoundError):
        store.remove_group("empty")


def test_group_usage(store: Store) -> None:
    store.add_group(Group("web"))
    store.add_group(Group("mail"))
    store.add_group(Group("idle"))
    store.add_request(make_request("a", groups=["web", "mail"]))
    store.add_request(make_request("b", groups=["web"], status=Status.ISSUED, issued=utcnow()))
    assert store.group_usage() == {"web": (1, 1), "mail": (1, 0), "idle": (0, 0)}


# -- audit --------------------------------------------------------------------------------------


def test_audit_newest_first_with_limit(store: Store) -> None:
    now = utcnow()
    for i in range(5):
        store.add_audit(AuditEntry("generate", "alice", f"r{i}", at=now - timedelta(minutes=5 - i)))
    store.add_audit(AuditEntry("delete", "bob", "r9", at=now))
    entries = store.list_audit()
    assert [e.subject for e in entries] == ["r9", "r4", "r3", "r2", "r1", "r0"]
    assert [e.subject for e in store.list_audit(limit=2)] == ["r9", "r4"]


# -- files --------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_and_folder_modes(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "deep" / "data")
    store.add_request(make_request("a"))
    store.add_request(make_request("b"))
    assert store.path.name == STORE_FILE_NAME
    assert mode(store.path.parent) == 0o700
    assert mode(store.path) == 0o600
    assert mode(store.path.with_name(STORE_FILE_NAME + ".bak")) == 0o600
    assert mode(store.path.with_name(STORE_FILE_NAME + ".lock")) == 0o600
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_backup_holds_the_previous_version(store: Store) -> None:
    store.add_request(make_request("a"))
    before = store.path.read_bytes()
    store.add_request(make_request("b"))
    assert store.path.with_name(STORE_FILE_NAME + ".bak").read_bytes() == before


def test_missing_file_is_an_empty_store(store: Store) -> None:
    assert store.list_requests() == []
    assert store.count_requests() == 0
    assert not store.path.exists()  # reading never creates the file


@pytest.mark.parametrize(
    "content",
    [
        b'{"requests":{"1":{"id":"abc","label":"x"',  # truncated JSON
        b'{"requests": 5}',  # valid JSON, not a TinyDB layout
        b"[]",
        b"",  # empty file: truncated, not new
        b"\xff\xfe garbage",
    ],
    ids=["truncated", "table-not-object", "array", "empty", "binary"],
)
def test_corrupt_file_is_reported_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / STORE_FILE_NAME
    path.write_bytes(content)
    store = Store(path)
    for action in (
        store.list_requests,
        store.count_requests,
        lambda: store.add_request(make_request()),
        lambda: store.add_group(Group("web")),
    ):
        with pytest.raises(StoreError) as exc:
            action()
        assert str(path) in exc.value.message
        assert "unreadable" in exc.value.message and "left untouched" in exc.value.message
        assert path.read_bytes() == content
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((STORE_FILE_NAME, ".")))
    assert made == [STORE_FILE_NAME, STORE_FILE_NAME + ".lock"]  # no backup, no temp file


def test_corrupt_message_points_to_backup(store: Store) -> None:
    store.add_request(make_request("a"))
    store.add_request(make_request("b"))
    store.path.write_bytes(b'{"requests": {"1": ')
    with pytest.raises(StoreError) as exc:
        store.get_request("whatever")
    backup = store.path.with_name(STORE_FILE_NAME + ".bak")
    assert f"restore it from {backup}" in exc.value.message
    assert "not valid JSON" in exc.value.message


def test_second_instance_sees_changes(tmp_path: Path) -> None:
    first = Store.open(tmp_path)
    second = Store.open(tmp_path)
    req = make_request()
    first.add_request(req)
    assert first.count_requests() == 1  # warm first's cache
    req.status = Status.ISSUED
    req.issued = utcnow()
    second.update_request(req)
    assert first.get_request(req.id).status is Status.ISSUED
    second.add_request(make_request("other"))
    assert first.count_requests() == 2
    first.remove_request(req.id)
    assert [r.label for r in second.list_requests()] == ["other"]


def test_failed_write_leaves_file_and_memory_unchanged(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_request(make_request("a"))
    before = store.path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_mod.os, "replace", broken_replace)
    with pytest.raises(StoreError) as exc:
        store.add_request(make_request("b"))
    assert "No space left" in exc.value.message
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert [r.label for r in store.list_requests()] == ["a"]
    assert not [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_threads_in_one_process(store: Store) -> None:
    def worker(n: int) -> None:
        for i in range(20):
            store.add_request(make_request(f"t{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_requests() == 80


def test_lock_is_reentrant_in_one_thread(store: Store) -> None:
    with store_lock(store.path), store_lock(store.path):
        store.add_request(make_request())  # takes the lock a third time
        assert store.count_requests() == 1
    with store_lock(store.path, exclusive=False), pytest.raises(RuntimeError):
        store.add_request(make_request("x"))
    assert os.path.exists(str(store.path) + ".lock")


def test_lock_wait_gives_up_with_a_store_error(store: Store) -> None:
    import fcntl

    lock_file = str(store.path) + ".lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: a stranger to store_lock
        with pytest.raises(StoreError) as exc, store_lock(store.path, timeout=0.2):
            pass
        assert "busy" in exc.value.message and lock_file in exc.value.message
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    # The abandoned wait must not keep the lock once it gets it.
    with store_lock(store.path, timeout=2):
        store.add_request(make_request())
    assert store.count_requests() == 1
