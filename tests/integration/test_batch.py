"""`generate --batch` on the real token: all-or-nothing validation, a clean stop midway, output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import GROUP, Cli
from tui_csr import batch
from tui_csr.cli.commands import generate_batch as cli_mod
from tui_csr.errors import StoreError
from tui_csr.service import CsrService


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*docs: dict) -> str:
    return "".join(json.dumps(d) + "\n" for d in docs)


async def test_invalid_batch_is_refused_whole_with_line_numbers(
        cli: Cli, service: CsrService, tmp_path: Path) -> None:
    before = await service.token.object_count()
    path = write(tmp_path, "b.csv", (
        "key_spec,cn,dns,group,label\n"
        f"P-256,ok.example.com,ok.example.com,{GROUP},ok-1\n"
        f"RSA1024,weak,,{GROUP},\n"
        f"P-256,,,{GROUP},\n"
        f"P-256,dup,,{GROUP},ok-1\n"
        "P-256,nogroup,,Nope,\n"
        f"P-256,badsan,not a name,{GROUP},\n"))
    r = cli("generate", "--batch", str(path))
    assert r.code == 2, r.err
    errors = r.err.strip().splitlines()
    assert [e.split(":")[1].strip() for e in errors[:-1]] == [
        "line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "RSA below 2048" in errors[0] and "CN is required" in errors[1]
    assert "label 'ok-1' is also used on line 2" in errors[2]
    assert "Group 'Nope' does not exist" in errors[3] and "DNS name" in errors[4]
    assert errors[-1] == ("error: The batch was refused: 5 of 6 requests are invalid; nothing "
                          "was generated.")
    assert "Traceback" not in r.err and r.out == ""
    assert await service.token.object_count() == before
    assert json.loads(cli("list", "--json").out) == []


async def test_label_already_on_the_token_refuses_before_any_key(
        cli: Cli, service: CsrService, tmp_path: Path) -> None:
    first = cli("generate", "--key-spec", "P-256", "--cn", "taken", "--group", GROUP,
                "--label", "taken-on-token", "--json")
    assert first.code == 0, first.err
    # Forget the record, keep the key: the label is now used on the token only.
    service.store.remove_request(json.loads(first.out)["id"])
    before = await service.token.object_count()
    path = write(tmp_path, "b.jsonl", jsonl(
        {"key_spec": "P-256", "cn": "one", "group": GROUP, "label": "fresh-1"},
        {"key_spec": "P-256", "cn": "two", "group": GROUP},
        {"key_spec": "P-256", "cn": "three", "group": GROUP, "label": "taken-on-token"}))
    r = cli("generate", "--batch", str(path))
    assert r.code == 2, r.err
    assert r.err.splitlines()[0] == ("error: line 3: Key label 'taken-on-token' is already "
                                     "used on token 'test'.")
    assert await service.token.object_count() == before
    assert service.store.count_requests() == 0


async def test_batch_jsonl_json_output(cli: Cli, service: CsrService, tmp_path: Path) -> None:
    before = await service.token.object_count()
    path = write(tmp_path, "b.jsonl", jsonl(
        {"key_spec": "P-256", "cn": "a.example.com", "dns": ["a.example.com"], "group": GROUP},
        {"key_spec": "RSA2048", "dn": "CN=b.example.com,O=Ex", "pss": True, "groups": [GROUP],
         "email": ["pki@example.com"], "owner": "alice", "label": "b-key"},
        {"key_spec": "P-384", "cn": "a.example.com", "group": GROUP}))
    r = cli("generate", "--batch", str(path), "--json")
    assert r.code == 0, r.err
    docs = [json.loads(line) for line in r.out.splitlines()]
    assert len(docs) == 3
    stored = {d["id"]: d for d in json.loads(cli("list", "--json").out)}
    for doc in docs:
        assert doc == stored[doc["id"]]  # the same object as `generate --json` and `list --json`
        assert x509.load_pem_x509_csr(doc["csr_pem"].encode()).is_signature_valid
    assert docs[1]["label"] == "b-key" and docs[1]["signature"] == "RSASSA-PSS"
    assert docs[1]["owner"] == "alice"
    # Two lines with the same CN and no label get distinct default labels.
    assert docs[0]["label"] != docs[2]["label"]
    assert docs[2]["label"].startswith("a.example.com-")
    assert await service.token.object_count() == before + 6  # 3 x (public, private): no marker
    assert "generated 3 requests" in r.err


def test_batch_csv_from_stdin_plain_output(cli: Cli) -> None:
    text = (f"key_spec,cn,o,c,group,label\nP-256,csv1,Example,GB,{GROUP},csv-1\n"
            f"P-256,csv2,,,{GROUP},csv-2\n")
    r = cli("generate", "--batch", "-", stdin=text)
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    assert [row[1] for row in rows] == ["csv-1", "csv-2"]
    assert rows[0][3] == "CN=csv1,O=Example,C=GB"
    listed = json.loads(cli("list", "--json").out)
    assert sorted(d["label"] for d in listed) == ["csv-1", "csv-2"]


def test_batch_refuses_single_request_flags(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "b.jsonl", jsonl({"key_spec": "P-256", "cn": "a", "group": GROUP}))
    r = cli("generate", "--batch", str(path), "--cn", "x", "--group", GROUP)
    assert r.code == 2 and "--batch takes every request from the file" in r.err
    assert "--cn" in r.err and "--group" in r.err


async def test_failure_midway_keeps_what_was_made_and_nothing_half_made(
        service: CsrService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "b.jsonl", jsonl(*[
        {"key_spec": "P-256", "cn": f"mid{i}.example.com", "group": GROUP, "label": f"mid-{i}"}
        for i in range(1, 6)]))
    before = await service.token.object_count()
    keys_before = {k.key_id for k in await service.token_keys()}

    # The third store write fails (a full disk, say): its key is already on the token.
    real_add = service.store.add_request
    calls = {"n": 0}

    def flaky_add(req, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError(f"The store {service.store.path} could not be written: No space "
                             "left on device.")
        return real_add(req, *args, **kwargs)

    monkeypatch.setattr(service.store, "add_request", flaky_add)

    async def same_service(settings, *, token):
        return service

    async def no_login(svc):
        return None

    monkeypatch.setattr(cli_mod, "open_service", same_service)
    monkeypatch.setattr(cli_mod, "login", no_login)
    args = argparse.Namespace(batch=str(path), json=True)
    with pytest.raises(batch.BatchStopped) as stop:
        await cli_mod.run_batch_command(args, service.settings)
    assert stop.value.exit_code == 1
    assert stop.value.line.number == 3 and len(stop.value.made) == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["mid-1", "mid-2"]
    assert err.splitlines()[0].startswith("error: line 3: The store ")
    assert "2 of 5 requests were generated and stored" in stop.value.message
    assert "lines 3-5 were not generated" in stop.value.message

    stored = service.store.list_requests()
    assert sorted(r.label for r in stored) == ["mid-1", "mid-2"]
    keys_after = {k.key_id: k for k in await service.token_keys()}
    new_keys = set(keys_after) - keys_before
    assert new_keys == {bytes.fromhex(r.key_id) for r in stored}
    assert all(keys_after[k].has_private for k in new_keys)
    assert service.store.list_intents() == []  # every generation's intent was closed
    assert await service.token.object_count() == before + 4  # 2 x (public, private); nothing of line 3
    assert not await service.token.label_in_use("mid-3")


async def test_run_batch_stops_on_a_token_failure(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_csr.batch import parse_batch

    lines, problems = parse_batch(jsonl(*[
        {"key_spec": "P-256", "cn": f"sig{i}", "group": GROUP, "label": f"sig-{i}"}
        for i in range(1, 4)]), "jsonl")
    assert problems == [] and batch.validate_batch(service, lines) == []
    before = await service.token.object_count()
    real = service.token._token
    original = real.sign
    calls = {"n": 0}

    def failing_sign(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            from tui_csr.errors import TokenError

            raise TokenError("The token failed while signing the CSR.", code="CKR_DEVICE_ERROR")
        return original(*args, **kwargs)

    monkeypatch.setattr(real, "sign", failing_sign)
    made: list[str] = []
    with pytest.raises(batch.BatchStopped) as stop:
        await batch.run_batch(service, lines, on_made=lambda line, req: made.append(req.label))
    assert made == ["sig-1"] and stop.value.line.number == 2
    assert "CKR_DEVICE_ERROR" in str(stop.value.cause)
    assert await service.token.object_count() == before + 2  # one pair (no marker)
    assert [r.label for r in service.store.list_requests()] == ["sig-1"]


async def test_durable_writes_per_request(service: CsrService,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A generate makes two durable store writes (the intent, the record that closes it); a
    batch opens the intents of a chunk of lines in one write, then one record per line."""
    from tui_csr.batch import CHUNK, parse_batch
    from tui_csr.core.models import IntentState

    store = service.store
    writes: list[tuple[str, int]] = []
    def counting(name: str):
        real = getattr(store, name)

        def counted(*args, **kwargs):
            first = args[0] if args else None
            writes.append((name, len(first) if isinstance(first, list) else 1))
            return real(*args, **kwargs)

        return counted

    for name in ("open_intent", "open_intents", "set_intent_target", "add_request",
                 "close_intent"):
        monkeypatch.setattr(store, name, counting(name))
    await service.generate(batch_params("one"))
    assert writes == [("open_intent", 1), ("add_request", 1)]
    writes.clear()
    size = CHUNK + 3
    lines, problems = parse_batch(jsonl(*[
        {"key_spec": "P-256", "cn": f"w{i}.example", "group": GROUP, "label": f"w-{i}"}
        for i in range(size)]), "jsonl")
    assert problems == []
    made = await batch.run_batch(service, lines)
    assert [r.label for r in made] == [f"w-{i}" for i in range(size)]
    assert writes == ([("open_intents", CHUNK)] + [("add_request", 1)] * CHUNK
                      + [("open_intents", 3)] + [("add_request", 1)] * 3)
    assert {i.state for i in store.list_intents(None)} == {IntentState.RECORDED}
    assert {i.request_id for i in store.list_intents(None)} >= {r.id for r in made}


def batch_params(label: str):
    from tui_csr.service import GenerateParams

    return GenerateParams(key_spec="P-256", fields={"CN": f"{label}.example"}, groups=[GROUP],
                          label=label)
