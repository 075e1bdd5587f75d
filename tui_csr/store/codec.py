"""The store's JSON encoding: orjson when installed (5-10x faster than the standard library on a
store of thousands of requests), else :mod:`json`; the bytes are the same compact UTF-8 either
way, so a file written by one is read by the other.

Parsing a large store allocates hundreds of thousands of small objects, and every 700 allocations
the cyclic garbage collector would walk all of them again: parsing runs with the collector paused
(the documents hold no cycles), which halves the time.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

#: ``json.JSONDecodeError`` (orjson's error is a subclass of it): what :func:`loads` raises for
#: text that is not JSON, with ``msg``, ``lineno`` and ``colno``.
JSONDecodeError = json.JSONDecodeError


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic objects are made (a parse, a list
    of 10,000 models): its full passes would walk the whole cache again and again."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


#: From this size on, :func:`loads` uses the standard library: orjson first builds a whole
#: document tree of its own and then the Python objects, ~40 MB on top for a 22 MB store
#: (10,000 requests), where ``json`` makes the objects straight from the text at about the
#: same speed (89 against 77 ms there; measured for issue 14, where the TUI's peak RSS counts).
BIG_DOCUMENT = 1 << 20


def _no_constant(name: str) -> Any:
    raise JSONDecodeError(f"{name} is not JSON", name, 0)  # as orjson: no NaN, no Infinity


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON. Raises :data:`JSONDecodeError` (or UnicodeDecodeError) when it is not."""
    with gc_paused():
        if orjson is not None and len(raw) < BIG_DOCUMENT:
            return orjson.loads(raw)
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)


#: One small document, as a database driver hands them over one by one: no GC pause per call
#: (the caller pauses it once around the whole batch: see :func:`gc_paused`).
loads_one: Any = orjson.loads if orjson is not None else json.loads


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON (no spaces, non-ASCII kept). Raises TypeError/ValueError when ``data``
    holds something JSON cannot carry."""
    if orjson is not None:
        return orjson.dumps(data)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
