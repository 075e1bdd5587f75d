"""A damaged store (truncated, hand-edited, not a store at all, a broken record) is reported
with its path (and the backup copy, where there is one) and exit 1, and is never replaced by a
new empty store: its bytes are unchanged afterwards, and generate refuses before any key is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import GROUP, Cli, Result
from tui_csr.service import CsrService
from tui_csr.store.repo import Store


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _drop_comma(raw: bytes) -> bytes:
    return raw.replace(b",", b" ", 1)


def _requests_as_list(raw: bytes) -> bytes:
    doc = json.loads(raw)
    doc["requests"] = list(doc["requests"].values())
    return json.dumps(doc).encode()


def _record_without(field: str) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        doc = json.loads(raw)
        for record in doc["requests"].values():
            record.pop(field)
        return json.dumps(doc).encode()
    return edit


def _record_with(field: str, value: object) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        doc = json.loads(raw)
        for record in doc["requests"].values():
            record[field] = value
        return json.dumps(doc).encode()
    return edit


#: Damage to the whole file: nothing may read or write it.
FILE_DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (_truncate, "is unreadable: it is not valid JSON"),
    "hand-edited JSON": (_drop_comma, "is unreadable: it is not valid JSON"),
    "emptied": (lambda raw: b"", "is unreadable: it is empty"),
    "not UTF-8": (lambda raw: b"\xff\xfe" + raw, "is unreadable:"),
    "not a store": (_requests_as_list, "is unreadable: it is not a TinyDB store"),
}
#: Damage to one record: reading it says so; the record is kept exactly as it is.
RECORD_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "lacks a field": _record_without("created"),
    "has a bad date": _record_with("created", "yesterday"),
    "has a key id that is not hex": _record_with("key_id", "not-hex"),
    "has groups that are not names": _record_with("groups", [1, 2]),
}


def _store_with_a_request(data: Path) -> None:
    """The fixture's store (group Web) plus one request: two writes, so a backup exists."""
    from tests.reliability.test_crash import fake_request

    Store.open(data).add_request(fake_request(1))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()
            and not p.name.endswith(".lock")}


def _error(run: Result, *needles: str) -> str:
    assert run.code == 1, (run.code, run.err)
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("damage", list(FILE_DAMAGE))
async def test_damaged_store_is_reported_and_left_alone(cli: Cli, service: CsrService,
                                                        damage: str) -> None:
    _store_with_a_request(cli.data_dir)
    store = cli.data_dir / "tui-csr.json"
    backup = cli.data_dir / "tui-csr.json.bak"
    assert backup.exists()
    edit, needle = FILE_DAMAGE[damage]
    store.write_bytes(edit(store.read_bytes()))
    before_files = _files(cli.data_dir)
    before_objects = await service.token.object_count()

    line = _error(cli("list"), f"The store {store} ", needle)
    assert f"restore it from {backup}" in line and "untouched" in line, line
    # Every command that would write refuses too; generate before a key is made.
    _error(cli("generate", "--key-spec", "P-256", "--cn", "after.example", "--group", GROUP),
           str(store))
    _error(cli("groups", "add", "New"), str(store))
    _error(cli("delete", "crash-1", "--yes"), str(store))
    assert await service.token.object_count() == before_objects
    # Not a byte changed, no file added or removed (no fresh empty store, no temp file).
    assert _files(cli.data_dir) == before_files


@pytest.mark.parametrize("damage", list(RECORD_DAMAGE))
def test_damaged_record_is_named_and_kept(cli: Cli, damage: str) -> None:
    _store_with_a_request(cli.data_dir)
    store = cli.data_dir / "tui-csr.json"
    store.write_bytes(RECORD_DAMAGE[damage](store.read_bytes()))
    damaged = json.loads(store.read_bytes())["requests"]
    for args in (("list", "--all"), ("show", "crash-1")):
        line = _error(cli(*args), f"The store {store} has a damaged request record (crash-1)")
        assert f"restore {store}.bak" in line, line
    # Other work goes on, and the damaged record stays exactly as it was.
    assert cli("groups", "add", "Other").code == 0
    kept = json.loads(store.read_bytes())["requests"]
    assert kept == damaged


def test_damaged_store_without_backup_says_so(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    data.mkdir(mode=0o700)
    store = data / "tui-csr.json"
    store.write_bytes(b'{"groups": {"1": {"name": "Web"}}, "requests": {"1": ')  # cut short
    run = cli("list", extra_env={"TUI_CSR_DATA_DIR": str(data)})
    line = _error(run, f"The store {store} is unreadable", "there is no ")
    assert f"{store}.bak" in line
    assert store.read_bytes().endswith(b'"requests": {"1": ')
    assert sorted(p.name for p in data.iterdir()) == ["tui-csr.json", "tui-csr.json.lock"]


def test_record_with_an_unknown_key_spec_still_lists(cli: Cli) -> None:
    """A hand-edited key spec is shown as it is (no KeyError from the table or the JSON)."""
    _store_with_a_request(cli.data_dir)
    store = cli.data_dir / "tui-csr.json"
    store.write_bytes(_record_with("key_spec", "RSA512")(store.read_bytes()))
    r = cli("list", "--all")
    assert r.code == 0 and "RSA512" in r.out, r.err
    doc = json.loads(cli("list", "--all", "--json").out)
    assert doc[0]["key_spec"] == "RSA512" and doc[0]["signature"] is None
