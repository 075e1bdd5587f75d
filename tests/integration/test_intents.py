"""Write-ahead intents on a real token: no bookkeeping object on the token, intents closed with
their records, failures cleaned up and reported, and data folders of earlier versions (with
their CKO_DATA markers) still scanned and repaired.

Tokens of their own (SoftHSM, made per test and only ever loaded by the subprocesses) where a
test counts every object of a class: the session token is shared with other tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import GROUP
from tests.reliability.conftest import PrivateToken, json_out, make_private_token
from tui_csr.core.keyspec import parse_key_spec
from tui_csr.core.models import Intent, IntentState, Request, utcnow
from tui_csr.errors import InputError, StoreError, TokenError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.store.repo import Store

# -- helpers other tests use -------------------------------------------------------------------


async def make_orphan(service: CsrService, spec: str, label: str) -> bytes:
    """A key pair whose generation was killed right after the key was made: an open intent
    whose lease nobody holds, the pair on the token with the intent's CKA_ID, no record."""
    token = service.token
    key_id = await token.new_key_id()
    info = service.token_info
    service.store.open_intent(Intent(
        id=uuid.uuid4().hex, store_id=await service.store_tag(), label=label,
        key_id=key_id.hex(), key_spec=spec, token_label=token.label, created_by="test",
        created=utcnow(), token_serial=info.serial if info else None))
    await token.generate_keypair(parse_key_spec(spec), label, key_id)
    return key_id


#: Counts the objects of each class the logged-in user sees (python-pkcs11, own process).
COUNT_OBJECTS = """
import json, os, pkcs11
lib = pkcs11.lib(os.environ["TUI_CSR_MODULE"])
token = lib.get_token(token_label=os.environ["TUI_CSR_TOKEN"])
counts = {}
with token.open(user_pin=os.environ["TUI_CSR_PIN"]) as session:
    for obj in session.get_objects():
        name = pkcs11.ObjectClass(obj[pkcs11.Attribute.CLASS]).name
        counts[name] = counts.get(name, 0) + 1
print(json.dumps(counts))
"""

#: Makes a key pair the way tui-csr before write-ahead intents did: the pair with a random
#: CKA_ID, and a private CKO_DATA marker (CKA_APPLICATION "tui-csr", CKA_LABEL the store's id,
#: CKA_VALUE the key's CKA_ID in hex). Prints the CKA_ID.
MAKE_LEGACY_KEY = """
import os, sys, pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
tag, label = sys.argv[1], sys.argv[2]
lib = pkcs11.lib(os.environ["TUI_CSR_MODULE"])
token = lib.get_token(token_label=os.environ["TUI_CSR_TOKEN"])
key_id = os.urandom(20)
with token.open(user_pin=os.environ["TUI_CSR_PIN"], rw=True) as session:
    session.create_object({
        Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.PRIVATE: True,
        Attribute.APPLICATION: "tui-csr", Attribute.LABEL: tag,
        Attribute.VALUE: key_id.hex().encode()})
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        local=True)
    params.generate_keypair(
        store=True, label=label, id=key_id,
        public_template={Attribute.VERIFY: True, Attribute.PRIVATE: False},
        private_template={Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                          Attribute.EXTRACTABLE: False, Attribute.SIGN: True,
                          Attribute.DECRYPT: False, Attribute.UNWRAP: False,
                          Attribute.DERIVE: False})
print(key_id.hex())
"""


def object_counts(tok: PrivateToken) -> dict[str, int]:
    """Objects per class on ``tok`` (``{"PRIVATE_KEY": 2, ...}``)."""
    return json_out(tok.python(COUNT_OBJECTS, pin=tok.token.pin))


def legacy_key(tok: PrivateToken, tag: str, label: str) -> str:
    """A key pair and its marker made the old way; its CKA_ID (hex)."""
    run = tok.python(MAKE_LEGACY_KEY, tag, label, pin=tok.token.pin)
    assert run.code == 0, run.err
    return run.out.strip()


@pytest.fixture
def tok(tmp_path: Path) -> PrivateToken:
    return make_private_token(tmp_path / "own")


def cli_ok(tok: PrivateToken, *args: str):
    run = tok.cli(*args, pin=tok.token.pin)
    assert run.code == 0, run.err
    return run


# -- no bookkeeping object on the token ---------------------------------------------------------

def test_no_code_path_creates_a_data_object(tok: PrivateToken, tmp_path: Path) -> None:
    def data_objects() -> int:
        return object_counts(tok).get("DATA", 0)

    doc = json.loads(cli_ok(tok, "generate", "--key-spec", "P-256", "--cn", "a.example",
                            "--group", GROUP, "--label", "a", "--json").out)
    assert data_objects() == 0
    intents = Store.open(tok.data_dir).list_intents(None)
    assert [(i.label, i.state, i.request_id) for i in intents] == [
        ("a", IntentState.RECORDED, doc["id"])]
    assert doc["key_id"] in intents[0].key_ids
    batch = tmp_path / "b.csv"
    batch.write_text(f"key_spec,cn,group,label\nP-256,b.example,{GROUP},b\n"
                     f"RSA2048,c.example,{GROUP},c\n")
    cli_ok(tok, "generate", "--batch", str(batch), "--json")
    assert data_objects() == 0
    cli_ok(tok, "delete", doc["id"], "--yes")
    assert data_objects() == 0
    # An orphan (a generation killed after the key was made), adopted.
    store = Store.open(tok.data_dir)
    b = store.find_request_by_label("b")
    store.remove_request(b.id)
    kid = bytes.fromhex(b.key_id)
    store.open_intent(Intent(id=uuid.uuid4().hex, store_id=store.identity(), label="b",
                             key_id=kid.hex(), key_spec="P-256", token_label="private",
                             created_by="t", created=utcnow()))
    orphans = json_out(tok.cli("orphans", "list", "--json", pin=tok.token.pin))
    assert [k["key_id"] for k in orphans["keys_without_record"]] == [kid.hex()]
    cli_ok(tok, "orphans", "adopt", kid.hex(), "--cn", "b2.example", "--group", GROUP)
    assert data_objects() == 0
    assert store.list_intents() == []
    counts = object_counts(tok)
    assert counts == {"PRIVATE_KEY": 2, "PUBLIC_KEY": 2}  # b and c, nothing else


async def test_intent_closed_with_its_record_and_the_id_rewritten(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "i.example"},
                                                groups=[GROUP]))
    (intent,) = service.store.list_intents(None)
    assert intent.state is IntentState.RECORDED and intent.request_id == req.id
    assert intent.label == req.label and intent.key_spec == "P-256"
    assert intent.created_by == service.user and intent.store_id == await service.store_tag()
    # SoftHSM lets CKA_ID change: created with a random id, rewritten to the SHA-1 of the key,
    # the target recorded before the rewrite.
    from tui_csr.core.csr import from_pem_or_der, summarize
    from tui_csr.hsm.keys import key_id_for

    spki = summarize(from_pem_or_der(req.csr_pem)).spki_der
    assert req.key_id == intent.final_key_id == key_id_for(spki).hex() != intent.key_id
    assert not service.store.intent_in_progress(intent.id)
    await service.delete_request(req.id)


async def test_a_failed_generation_destroys_the_pair_and_closes_its_intent(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    before = await service.token.object_count()

    def refuse(*_a, **_k):
        raise InputError("A request labelled 'x' already exists.", field="label")

    monkeypatch.setattr(service.store, "add_request", refuse)  # fails at the very last step
    with pytest.raises(InputError, match="already exists"):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "f.example"},
                                              groups=[GROUP], label="fail-late"))
    assert await service.token.object_count() == before
    (intent,) = service.store.list_intents(None)
    assert intent.state is IntentState.DESTROYED
    assert (await service.scan_orphans()).keys_without_record == []


async def test_a_store_write_that_landed_but_failed_keeps_the_key(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record's write reached the disk, then failed (the folder's fsync): the request is
    stored and its intent closed, so its key pair must stay, however the write ended."""
    from tui_csr.store import storage

    failing = {"on": False}
    real_fsync, real_add = storage.fsync_dir, service.store.add_request

    def fsync_dir(folder):
        real_fsync(folder)
        if failing["on"]:
            raise OSError(5, "Input/output error")

    def add_request(*args, **kwargs):
        failing["on"] = True
        try:
            return real_add(*args, **kwargs)
        finally:
            failing["on"] = False

    monkeypatch.setattr(storage, "fsync_dir", fsync_dir)
    monkeypatch.setattr(service.store, "add_request", add_request)
    with pytest.raises(StoreError, match="could not be written"):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "w.example"},
                                              groups=[GROUP], label="landed"))
    monkeypatch.undo()
    (req,) = [r for r in await service.list_requests() if r.label == "landed"]
    assert await service.token.key_exists(bytes.fromhex(req.key_id))
    (intent,) = service.store.list_intents(None)
    assert intent.state is IntentState.RECORDED and intent.request_id == req.id
    assert (await service.scan_orphans()).empty
    await service.delete_request(req.id)


async def test_a_destroy_that_fails_is_reported_and_the_intent_stays_open(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    token = service.token

    async def sign_fails(*_a, **_k):
        raise TokenError("While signing the CSR on token 't': CKR_DEVICE_ERROR.",
                         field="token", code="CKR_DEVICE_ERROR")

    async def destroy_fails(_key_id):
        raise TokenError("While destroying the key: CKR_DEVICE_REMOVED.", field="token")

    monkeypatch.setattr(token, "sign", sign_fails)
    monkeypatch.setattr(token, "destroy", destroy_fails)
    with pytest.raises(TokenError) as err:
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "d.example"},
                                              groups=[GROUP], label="undestroyable"))
    message = err.value.message
    assert message.startswith("While signing the CSR")  # the first failure comes first
    assert "`tui-csr orphans`" in message and "CKR_DEVICE_REMOVED" in message
    assert "\n" not in message and err.value.code == "CKR_DEVICE_ERROR"
    (intent,) = service.store.list_intents()
    assert intent.label == "undestroyable"
    monkeypatch.undo()
    report = await service.scan_orphans()  # the next scan finds the pair
    assert [k.label for k in report.keys_without_record] == ["undestroyable"]
    (key,) = report.keys_without_record
    assert key.intent == intent and key.has_private and key.has_public
    assert await service.destroy_orphan(key.key_id.hex()) == 2
    assert service.store.get_intent(intent.id).state is IntentState.DESTROYED
    assert (await service.scan_orphans()).empty


async def test_the_scan_leaves_generations_in_progress_alone(service: CsrService) -> None:
    key_id = await make_orphan(service, "P-256", "in-progress")
    (intent,) = service.store.list_intents()
    with service.store.intent_lease(intent.id):  # its worker is alive after all
        assert (await service.scan_orphans()).keys_without_record == []
        with pytest.raises(InputError, match="right now"):
            await service.destroy_orphan(key_id.hex())
        with pytest.raises(InputError, match="right now"):
            await service.adopt_orphan(key_id.hex(), GenerateParams(
                key_spec="", fields={"CN": "x"}, groups=[GROUP]))
    (key,) = (await service.scan_orphans()).keys_without_record  # its worker died
    assert key.key_id == key_id
    await service.destroy_orphan(key_id.hex())


async def test_a_rewritten_pair_is_found_by_its_label_and_a_running_one_left_alone(
        service: CsrService) -> None:
    """The CKA_ID rewrite target is not in the store: a pair rewritten to the SHA-1 of its
    public key is attributed by the intent's label. While its generation runs, nobody claims
    it, not even an older dead intent with the same label (a generation killed before its key);
    once its worker is gone it is one orphan, of the newest intent; the older one is closed
    as abandoned only once that key is gone."""
    from tui_csr.hsm.keys import key_id_for

    store, token, info = service.store, service.token, service.token_info

    async def intent(label: str) -> Intent:
        made = Intent(id=uuid.uuid4().hex, store_id=await service.store_tag(), label=label,
                      key_id=(await token.new_key_id()).hex(), key_spec="P-256",
                      token_label=token.label, created_by="t", created=utcnow(),
                      token_serial=info.serial if info else None)
        store.open_intent(made)
        return made

    dead = await intent("same-label")  # killed before its key was made
    running = await intent("same-label")
    with store.intent_lease(running.id) as _lease:
        pair = await token.generate_keypair(parse_key_spec("P-256"), "same-label",
                                            bytes.fromhex(running.key_id))
        target = key_id_for(pair.spki_der)
        assert await token.set_key_id(pair.key_id, target) == target
        assert target.hex() not in running.key_ids + dead.key_ids
        assert (await service.scan_orphans()).keys_without_record == []
        assert store.get_intent(dead.id).state is IntentState.OPEN  # its key may be that one
        with pytest.raises(InputError, match="right now"):
            await service.destroy_orphan(target.hex())
    (key,) = (await service.scan_orphans()).keys_without_record  # its worker died
    assert (key.key_id, key.intent, key.has_private, key.has_public) == (
        target, store.get_intent(running.id), True, True)
    assert await service.destroy_orphan(target.hex()) == 2
    assert store.get_intent(running.id).state is IntentState.DESTROYED
    assert (await service.scan_orphans()).empty
    assert store.get_intent(dead.id).state is IntentState.ABANDONED


async def test_an_intent_without_its_pair_is_closed_quietly(service: CsrService) -> None:
    store = service.store
    token = service.token
    info = service.token_info
    dead = Intent(id=uuid.uuid4().hex, store_id=await service.store_tag(), label="never-made",
                  key_id=(await token.new_key_id()).hex(), key_spec="P-256",
                  token_label=token.label, created_by="t", created=utcnow(),
                  token_serial=info.serial if info else None)
    other = Intent(id=uuid.uuid4().hex, store_id=dead.store_id, label="other-token",
                   key_id=(await token.new_key_id()).hex(), key_spec="P-256",
                   token_label="elsewhere", created_by="t", created=utcnow(),
                   token_serial="not-this-one")
    store.open_intent(dead)
    store.open_intent(other)
    assert (await service.scan_orphans()).empty
    assert store.get_intent(dead.id).state is IntentState.ABANDONED
    assert store.list_intents() == [other]  # another token's intent: not ours to judge here


# -- data folders of earlier versions ------------------------------------------------------------

def test_a_data_folder_of_an_earlier_version(tok: PrivateToken) -> None:
    store = Store.open(tok.data_dir)
    tag = store.identity()
    recorded = legacy_key(tok, tag, "old-recorded")  # made and recorded by the old version
    store.add_request(Request(
        id=uuid.uuid4().hex, label="old-recorded", subject="CN=old.example",
        subject_fields={"CN": "old.example"}, sans=[], key_spec="P-256", hash="SHA256",
        scheme="ECDSA", token_label="private", key_id=recorded,
        pkcs11_uri="pkcs11:token=private;object=old-recorded;type=private",
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n", groups=[GROUP], owner=None,
        created=utcnow(), created_by="old"))
    adopt = legacy_key(tok, tag, "old-adopt")  # the old version was killed before the record
    destroy = legacy_key(tok, tag, "old-destroy")
    foreign = legacy_key(tok, "0" * 32, "other-folder")  # another data folder's key
    assert object_counts(tok) == {"DATA": 4, "PRIVATE_KEY": 4, "PUBLIC_KEY": 4}

    orphans = json_out(tok.cli("orphans", "list", "--json", pin=tok.token.pin))
    assert sorted((k["key_id"], k["label"], k["legacy"])
                  for k in orphans["keys_without_record"]) == sorted(
        [(adopt, "old-adopt", True), (destroy, "old-destroy", True)])
    assert orphans["records_without_key"] == []
    # The recorded key's marker is not needed any more: the scan removed it.
    assert object_counts(tok) == {"DATA": 3, "PRIVATE_KEY": 4, "PUBLIC_KEY": 4}

    doc = json.loads(cli_ok(tok, "orphans", "adopt", adopt, "--cn", "adopted.example",
                            "--group", GROUP, "--json").out)
    assert doc["key_id"] == adopt and doc["label"] == "old-adopt"
    assert object_counts(tok)["DATA"] == 2  # adopted: its marker went
    r = cli_ok(tok, "orphans", "destroy", destroy, "--yes")
    assert "destroyed 2 objects" in r.err
    assert object_counts(tok) == {"DATA": 1, "PRIVATE_KEY": 3, "PUBLIC_KEY": 3}
    # The other data folder's key and marker are untouched, and never reported.
    orphans = json_out(tok.cli("orphans", "list", "--json", pin=tok.token.pin))
    assert orphans == {"keys_without_record": [], "records_without_key": []}
    r = tok.cli("orphans", "destroy", foreign, "--yes", pin=tok.token.pin)
    assert r.code == 2 and "not a tui-csr key" in r.err
    # Deleting the old version's request removes its key (its marker went at the scan).
    cli_ok(tok, "delete", doc["id"], "--yes")
    store_ids = {r.label for r in Store.open(tok.data_dir).list_requests(None)}
    assert store_ids == {"old-recorded"}
    cli_ok(tok, "delete", "old-recorded", "--yes")
    assert object_counts(tok) == {"DATA": 1, "PRIVATE_KEY": 1, "PUBLIC_KEY": 1}


# -- a chunk of intents in one write (a batch), on both stores ----------------------------------

@pytest.mark.parametrize("kind", ["tinydb", "postgres"])
def test_open_intents_writes_all_or_none(kind: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    if kind == "postgres":
        from tests.backends.postgres import ADMIN, init_store
        from tui_csr.store.postgres import PostgresStore

        store = PostgresStore(init_store(request.getfixturevalue("postgres_server"),
                                         role=ADMIN))
    else:
        store = Store.open(tmp_path / "data")

    def make(label: str, key_id: str) -> Intent:
        return Intent(id=uuid.uuid4().hex, store_id=store.identity(), label=label,
                      key_id=key_id, key_spec="P-256", token_label="t", created_by="t",
                      created=utcnow())

    first = [make("a", "a1"), make("b", "b1"), make("c", "c1")]
    store.open_intents(first)
    assert [i.label for i in store.list_intents()] == ["a", "b", "c"]
    # One id taken by an open intent, or twice in the chunk, or by a request: nothing written.
    for chunk in ([make("d", "d1"), make("e", "b1")], [make("f", "f1"), make("g", "f1")]):
        with pytest.raises(InputError) as err:
            store.open_intents(chunk)
        assert err.value.field == "key_id"
    store.add_request(Request(
        id=uuid.uuid4().hex, label="r", subject="CN=r", subject_fields={"CN": "r"}, sans=[],
        key_spec="P-256", hash="SHA256", scheme="ECDSA", token_label="t", key_id="e1",
        pkcs11_uri="pkcs11:token=t;object=r;type=private", csr_pem="x", groups=[], owner=None,
        created=utcnow(), created_by="t"), close_intent=first[0].id)
    with pytest.raises(InputError, match="taken by request 'r'"):
        store.open_intents([make("h", "h1"), make("i", "e1")])
    assert [i.label for i in store.list_intents()] == ["b", "c"]
    # The record's write named the id it recorded (the intent's was a1).
    assert store.get_intent(first[0].id).final_key_id == "e1"
    store.open_intents([])  # nothing to write: no write
    assert [i.label for i in store.list_intents(None)] == ["a", "b", "c"]
