"""The store codec reads a large file (from BIG_DOCUMENT bytes on) with the standard library,
less memory than orjson's: the same objects, and the same refusals, as for a small one."""

from __future__ import annotations

import pytest

from tui_csr.store import codec


def _doc(n: int) -> dict:
    return {"requests": {str(i): {"id": f"{i:032x}", "label": f"ünïcode-{i}", "n": i,
                                  "ok": True, "none": None, "f": 1.5, "sans": [["dns", "x"]]}
                         for i in range(n)}}


def test_big_and_small_documents_read_alike() -> None:
    small, big = codec.dumps(_doc(3)), codec.dumps(_doc(20_000))
    assert len(small) < codec.BIG_DOCUMENT <= len(big)
    assert codec.loads(small) == _doc(3)
    assert codec.loads(big) == _doc(20_000)


@pytest.mark.parametrize("bad", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b'{"a": 1,}'])
def test_big_document_refuses_what_is_not_json(bad: bytes) -> None:
    padded = bad[:-1] + b" " * codec.BIG_DOCUMENT + bad[-1:] if len(bad) > 3 else \
        bad + b" " * codec.BIG_DOCUMENT
    with pytest.raises(codec.JSONDecodeError):
        codec.loads(padded)


def test_big_document_that_is_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b'["\xff"]' + b" " * codec.BIG_DOCUMENT)
