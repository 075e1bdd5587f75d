"""The store contract (tui_csr/store/protocol.py), run alike against both back ends: the TinyDB
file and a PostgreSQL database on the session's own server (tests/backends/postgres.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.backends.postgres import ADMIN, init_store
from tests.unit.test_store import make_request
from tui_csr.core.models import AuditEntry, Group, Intent, IntentState, Status, utcnow
from tui_csr.errors import InputError, NotFoundError, StoreError
from tui_csr.store.auditchain import verify_audit_chain
from tui_csr.store.leases import LeaseHeldError
from tui_csr.store.protocol import RequestStore
from tui_csr.store.repo import Store

pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture(params=["tinydb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RequestStore]:
    """The same contract over each back end (PostgreSQL as an administrator role)."""
    if request.param == "tinydb":
        yield Store.open(tmp_path / "data")
        return
    from tui_csr.store.postgres import PostgresStore

    server = request.getfixturevalue("postgres_server")
    pg = PostgresStore(init_store(server))
    yield pg
    pg.close()


def audit(action: str, subject: str = "x", user: str = ADMIN) -> AuditEntry:
    return AuditEntry(action, user, subject, f"detail of {action}")


def intent(label: str = "k", key_id: str | None = None) -> Intent:
    return Intent(id=uuid.uuid4().hex, store_id="s", label=label,
                  key_id=key_id or uuid.uuid4().hex[:8], key_spec="P-256", token_label="demo",
                  created_by=ADMIN, created=utcnow())


# -- requests ------------------------------------------------------------------------------

def test_requests_round_trip_and_lookups(store: RequestStore) -> None:
    req = make_request("web-01")
    store.add_request(req, audit("generate", req.id))
    assert store.get_request(req.id) == req
    assert store.get_request(req.id[:6]) == req
    assert store.find_request_by_label("web-01") == req
    assert store.find_request_by_label("web-02") is None
    with pytest.raises(NotFoundError):
        store.get_request("ffffffffffff")
    req.owner, req.groups = "bob", ["web", "mail"]
    store.update_request(req, audit("edit-groups", req.id))
    assert store.get_request(req.id).groups == ["web", "mail"]
    assert store.remove_request(req.id, audit("delete", req.id)) == req
    assert store.list_requests(None) == []
    with pytest.raises(NotFoundError):
        store.remove_request(req.id)


def test_list_is_newest_first_by_status_and_counted(store: RequestStore) -> None:
    now = utcnow()
    old = make_request("old", created=now - timedelta(days=2))
    new = make_request("new", created=now)
    same_time = make_request("same", created=now)  # stored after "new": listed before it
    issued = make_request("issued", created=now - timedelta(days=1), status=Status.ISSUED,
                          issued=now)
    for req in (old, new, same_time, issued):
        store.add_request(req)
    assert [r.label for r in store.list_requests()] == ["same", "new", "old"]
    assert [r.label for r in store.list_requests(Status.ISSUED)] == ["issued"]
    assert [r.label for r in store.list_requests(None)] == ["same", "new", "issued", "old"]
    assert store.count_requests() == 4
    assert store.count_requests(Status.PENDING) == 3


def test_ambiguous_prefix_is_refused(store: RequestStore) -> None:
    store.add_request(make_request("a", id="abcd1111" + "0" * 24))
    store.add_request(make_request("b", id="abcd2222" + "0" * 24))
    with pytest.raises(InputError, match="matches 2 requests"):
        store.get_request("abcd")


def test_labels_and_ids_are_unique_and_a_refusal_writes_nothing(store: RequestStore) -> None:
    first = make_request("web-01")
    store.add_request(first, audit("generate", first.id))
    with pytest.raises(InputError) as exc:
        store.add_request(make_request("web-01"), audit("generate", "dup"))
    assert exc.value.field == "label"
    with pytest.raises(InputError) as exc:
        store.add_request(make_request("other", id=first.id), audit("generate", "dup"))
    assert exc.value.field == "id"
    second = make_request("web-02")
    store.add_request(second)
    second.label = "web-01"
    with pytest.raises(InputError) as exc:
        store.update_request(second, audit("edit", second.id))
    assert exc.value.field == "label"
    assert [e.action for e in store.list_audit()] == ["generate"]  # refusals left no entry
    assert store.get_request(second.id).label == "web-02"


def test_renewal_links_both_requests(store: RequestStore) -> None:
    source = make_request("old-key")
    store.add_request(source)
    renewal = make_request("new-key", renews=source.id)
    store.add_request(renewal, renews=source.id)
    assert store.get_request(source.id).renewed_by == renewal.id
    with pytest.raises(InputError, match="already renewed"):
        store.add_request(make_request("third"), renews=source.id)
    with pytest.raises(NotFoundError):
        store.add_request(make_request("fourth"), renews="0" * 32)


# -- groups --------------------------------------------------------------------------------

def test_groups_unique_ignoring_case_sorted_renamed_everywhere(store: RequestStore) -> None:
    store.add_group(Group("Web", policy="tls-server"), audit("group-add", "Web"))
    store.add_group(Group("  mail  "))
    with pytest.raises(InputError, match="already exists"):
        store.add_group(Group("WEB"))
    with pytest.raises(InputError):
        store.add_group(Group("   "))
    assert [g.name for g in store.list_groups()] == ["mail", "Web"]
    assert store.get_group("web").policy == "tls-server"
    req = make_request("r1", groups=["web", "mail"])
    store.add_request(req)
    renamed = store.rename_group("WEB", "Public", audit("group-rename", "Web"))
    assert renamed.name == "Public"
    assert store.get_request(req.id).groups == ["Public", "mail"]
    with pytest.raises(InputError, match="already exists"):
        store.rename_group("Public", "MAIL")
    with pytest.raises(NotFoundError):
        store.get_group("Web")
    updated = store.update_group("public", policy="tls-client", description="d")
    assert (updated.policy, store.get_group("Public").description) == ("tls-client", "d")
    assert store.group_usage() == {"Public": (1, 0), "mail": (1, 0)}
    with pytest.raises(InputError, match="still holds 1 request"):
        store.remove_group("mail")
    store.remove_request(req.id)
    store.remove_group("MAIL", audit("group-remove", "mail"))
    assert [g.name for g in store.list_groups()] == ["Public"]
    with pytest.raises(NotFoundError):
        store.remove_group("mail")


# -- audit ---------------------------------------------------------------------------------

def test_audit_is_newest_first_and_hash_chained(store: RequestStore) -> None:
    base = utcnow()
    for n in range(5):
        store.add_audit(AuditEntry(f"a{n}", ADMIN, "s", "d", at=base + timedelta(seconds=n)))
    assert [e.action for e in store.list_audit()] == ["a4", "a3", "a2", "a1", "a0"]
    assert [e.action for e in store.list_audit(2)] == ["a4", "a3"]
    chain = store.audit_chain()
    assert [link.seq for link in chain.links] == [1, 2, 3, 4, 5]
    assert chain.links[1].prev == chain.links[0].hash
    assert verify_audit_chain(chain) is None
    # The verifier catches an altered, a removed and a reordered entry.
    links = list(chain.links)
    altered = [*links[:2], type(links[2])(3, links[2].prev, links[2].hash,
                                         {**links[2].doc, "detail": "rewritten"}), *links[3:]]
    assert "entry #3" in (verify_audit_chain(altered) or "")
    assert "lacks entry #2" in (verify_audit_chain(links[:1] + links[2:]) or "")
    assert verify_audit_chain([links[1], links[0], *links[2:]]) is not None


# -- intents -------------------------------------------------------------------------------

def test_intents_open_target_record_close(store: RequestStore) -> None:
    first = intent("k1", "aa01")
    store.open_intent(first, audit("intent", first.id))
    with pytest.raises(InputError) as exc:
        store.open_intent(intent("k2", "aa01"))
    assert exc.value.field == "key_id"
    store.add_request(make_request("taken", key_id="bb02"))
    with pytest.raises(InputError, match="taken by request 'taken'"):
        store.open_intent(intent("k3", "bb02"))
    assert store.set_intent_target(first.id, "CC03").final_key_id == "cc03"
    with pytest.raises(InputError):  # the rewrite target is taken too
        store.open_intent(intent("k4", "cc03"))
    req = make_request("k1", key_id="cc03")
    store.add_request(req, audit("generate", req.id), close_intent=first.id)
    recorded = store.get_intent(first.id)
    assert (recorded.state, recorded.request_id) == (IntentState.RECORDED, req.id)
    assert store.list_intents() == []
    assert [i.id for i in store.list_intents(None)] == [first.id]
    with pytest.raises(StoreError, match="already closed"):
        store.close_intent(first.id, IntentState.DESTROYED)
    second = intent("k5")
    store.open_intent(second)
    closed = store.close_intent(second.id, IntentState.ABANDONED)
    assert closed.state is IntentState.ABANDONED
    assert store.close_intent(second.id, IntentState.ABANDONED) == closed  # idempotent
    with pytest.raises(NotFoundError):
        store.get_intent("0" * 32)


def test_a_closed_intent_is_not_closed_by_a_request_again(store: RequestStore) -> None:
    gone = intent("k1")
    store.open_intent(gone)
    store.close_intent(gone.id, IntentState.DESTROYED)
    with pytest.raises(StoreError):
        store.add_request(make_request("k1"), close_intent=gone.id)
    assert store.list_requests(None) == []  # nothing written


def test_leases_are_exclusive_and_seen(store: RequestStore) -> None:
    intent_id = uuid.uuid4().hex
    assert not store.intent_in_progress(intent_id)
    lease = store.intent_lease(intent_id)
    try:
        assert store.intent_in_progress(intent_id)
        with pytest.raises(LeaseHeldError):
            store.intent_lease(intent_id)
    finally:
        lease.release()
    assert not store.intent_in_progress(intent_id)
    with store.intent_lease(intent_id):
        pass
    with pytest.raises(StoreError):
        store.intent_lease("../../etc/passwd")


def test_identity_is_stable(store: RequestStore) -> None:
    first = store.identity()
    assert len(first) == 32 and store.identity() == first


# -- profiles ------------------------------------------------------------------------------

def test_profiles_versioned_unique_and_held_by_groups(store: RequestStore) -> None:
    import dataclasses

    from tui_csr.core.profiles import Profile

    web = Profile("web-tls", version=1, description="web", key_specs=("P-256",), updated=utcnow())
    store.add_profile(web, audit("profile-add", "web-tls"))
    with pytest.raises(InputError, match="already exists"):
        store.add_profile(dataclasses.replace(web, name="WEB-TLS"))
    store.add_profile(Profile("admin-cert", updated=utcnow()))
    assert [p.name for p in store.list_profiles()] == ["admin-cert", "web-tls"]
    assert store.get_profile("Web-TLS") == web
    v2 = dataclasses.replace(web, version=2, description="web v2")
    assert store.update_profile(v2, expected_version=1) == v2
    with pytest.raises(InputError, match="changed meanwhile"):  # a raced edit is refused
        store.update_profile(dataclasses.replace(web, version=2), expected_version=1)
    assert store.get_profile("web-tls").description == "web v2"
    store.add_group(Group("Web", policy="web-tls"))
    with pytest.raises(InputError, match="policy of group 'Web'"):
        store.remove_profile("web-tls")
    store.remove_profile("admin-cert", audit("profile-remove", "admin-cert"))
    with pytest.raises(NotFoundError):
        store.get_profile("admin-cert")
    assert [e.action for e in store.list_audit()][-1] == "profile-add"
    assert verify_audit_chain(store.audit_chain()) is None


def test_intents_closed_long_ago_are_pruned_by_the_next_open(
        store: RequestStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui_csr.store.postgres as pg_module
    import tui_csr.store.repo as repo_module

    old, recent = intent("old"), intent("recent")
    store.open_intent(old)
    store.close_intent(old.id, IntentState.ABANDONED)
    later = utcnow() + timedelta(days=31)
    for module in (repo_module, pg_module):
        monkeypatch.setattr(module, "utcnow", lambda: later)
    store.open_intent(recent)
    assert [i.id for i in store.list_intents(None)] == [recent.id]


def test_audit_order_is_by_time_also_with_fractions_of_a_second(store: RequestStore) -> None:
    base = utcnow()
    store.add_audit(AuditEntry("later", ADMIN, "s", at=base + timedelta(microseconds=500_000)))
    store.add_audit(AuditEntry("earlier", ADMIN, "s", at=base))
    assert [e.action for e in store.list_audit()] == ["later", "earlier"]
    assert verify_audit_chain(store.audit_chain()) is None
