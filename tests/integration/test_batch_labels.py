"""A batch checks labels against one scan of the token (tui_csr.batch.TokenLabels), and falls
back to a search per label when the token holds more objects than the scan is worth."""

from __future__ import annotations

import pytest

from tests.integration.conftest import GROUP
from tui_csr import batch
from tui_csr.service import CsrService, GenerateParams


def _line(number: int, label: str | None) -> batch.BatchLine:
    return batch.BatchLine(number, GenerateParams(key_spec="P-256", fields=[("CN", "b.example")],
                                                  groups=[GROUP], label=label))


async def test_the_scan_and_the_per_label_search_give_the_same_answers(
        service: CsrService, monkeypatch: pytest.MonkeyPatch) -> None:
    made = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "scan"},
                                                 groups=[GROUP], label="scan-taken"))
    assert service.token is not None
    everything = await service.token.labels_in_use()
    assert everything is not None and made.label in everything
    assert await service.token.labels_in_use(limit=0) is None  # more objects than the limit
    lines = [_line(1, "scan-taken"), _line(2, "scan-free")]
    # The session token holds other tests' keys too: allow a scan of all of them here.
    monkeypatch.setattr(batch.TokenLabels, "PER_LINE", 10**6)
    scanned = await batch.token_labels(service, lines)
    assert scanned.taken is not None
    monkeypatch.setattr(batch.TokenLabels, "PER_LINE", 0)  # a "large" token: search per label
    searched = await batch.token_labels(service, lines)
    assert searched.taken is None
    for labels in (scanned, searched):
        problems = await batch.check_on_token(service, lines, labels)
        assert problems == [(1, f"Key label 'scan-taken' is already used on token "
                                f"'{service.token.label}'.")]
        assert await labels.in_use("scan-free") is False
        labels.add("scan-free")  # made by the batch: taken from now on, without a search
        assert await labels.in_use("scan-free") is True
