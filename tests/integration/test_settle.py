"""A failed record whose intent cannot be re-read still leaves no key pair behind (the gap H8
found with a killed database): generation destroys the CKA_ID it rewrote the pair to, known
before any store write, as well as the intent's first id."""

from __future__ import annotations

import pytest

from tests.integration.conftest import GROUP
from tui_csr.errors import StoreError
from tui_csr.service import CsrService, GenerateParams


async def test_the_rewritten_pair_is_destroyed_when_the_store_fails_after_the_rewrite(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    store = service.store
    assert service.token is not None and service.token.profile.key_id_mutable  # SoftHSM

    def unreachable(*_args, **_kwargs):
        raise StoreError("The store is unreachable (test).")

    before = await service.token.object_count()
    # The record's write fails, and so does the re-read of the intent that would name the
    # rewritten id: what generation knows in memory is all it has.
    monkeypatch.setattr(store, "add_request", unreachable)
    monkeypatch.setattr(store, "get_intent", unreachable)
    with pytest.raises(StoreError):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "s.example"},
                                              groups=[GROUP]))
    assert await service.token.object_count() == before
