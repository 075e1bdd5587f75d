"""Stand-ins keep to the protocols they stand in for: the scripted UI token implements every
member of :class:`tui_csr.hsm.worker.SyncToken` with the same parameters, and the TinyDB store
every member of :class:`tui_csr.store.protocol.RequestStore`."""

from __future__ import annotations

import inspect
import typing

import pytest

from tests.ui.conftest import FakeToken
from tui_csr.hsm.worker import SyncToken
from tui_csr.store.protocol import RequestStore
from tui_csr.store.repo import Store


def _members(protocol: type) -> set[str]:
    return set(typing._get_protocol_attrs(protocol))  # type: ignore[attr-defined]


def _parameters(obj: object) -> list[str]:
    return [p.name for p in inspect.signature(obj).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(("protocol", "implementation"), [
    (SyncToken, FakeToken), (RequestStore, Store)], ids=["FakeToken", "TinyDB Store"])
def test_implementation_has_every_member_with_the_same_parameters(
        protocol: type, implementation: type, tmp_path) -> None:
    instance = FakeToken() if implementation is FakeToken else Store.open(tmp_path)
    missing = sorted(m for m in _members(protocol) if not hasattr(instance, m))
    assert missing == []
    for name in _members(protocol):
        want, have = getattr(protocol, name, None), getattr(implementation, name, None)
        if callable(want) and not isinstance(want, property) and callable(have):
            assert _parameters(have) == _parameters(want), name


def test_a_missing_member_is_found() -> None:
    """Guards the test above."""
    class Partial:
        def open(self):  # pragma: no cover - never called
            ...
    assert "login" in _members(SyncToken) and not hasattr(Partial, "login")
