"""Issue 16 item 5 in the TUI: the Certificates tab sorts by days left and marks expired (✗)
and expiring (⚠, within ``expiry_warning_days``) certificates; the Requests tab's header
counts them. Fixed records, certificates with chosen validity, a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from tests.ui.conftest import FAKE_PIN, FIXED, add_requests, fake_service, make_request, settle
from tests.ui.lifecycle_harness import LifecycleHarness
from tests.ui.test_snapshots_lifecycle import certificate
from tui_csr.core.models import Status
from tui_csr.ui.app import TuiCsrApp

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def issued(n: int, label: str, days_left: int):
    return replace(make_request(n, label, f"{label}.example.com", hours=n - 20),
                   status=Status.ISSUED, issued=FIXED,
                   certificate_pem=certificate(f"{label}.example.com", 0x1000 + n,
                                               NOW - timedelta(days=400),
                                               NOW + timedelta(days=days_left, hours=1)))


RECORDS = (issued(21, "fine", 300), issued(22, "soon", 10), issued(23, "gone", -5),
           issued(24, "edge", 29))


@pytest.fixture
def svc(tmp_path: Path, utc: None):
    service = fake_service(tmp_path / "fake")
    add_requests(service, RECORDS)
    return service


async def test_certificates_sorted_by_days_left_with_marks(svc) -> None:
    app = LifecycleHarness(svc, clock=lambda: NOW)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        table = app.certificates.table
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    assert [r[0] for r in rows] == ["gone.example.com", "soon.example.com",
                                    "edge.example.com", "fine.example.com"]
    assert [r[1] for r in rows] == ["✗ expired", "⚠ 10 days", "⚠ 29 days", "300 days"]


async def test_warning_threshold_comes_from_the_settings(svc) -> None:
    svc.settings.expiry_warning_days = 7
    app = LifecycleHarness(svc, clock=lambda: NOW)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        table = app.certificates.table
        days = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
    assert days == ["✗ expired", "10 days", "29 days", "300 days"]


async def test_requests_tab_header_counts_them(svc) -> None:
    app = TuiCsrApp(svc, pin=FAKE_PIN, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tabs = app.main_screen.query_one("#tabs", TabbedContent)
        assert str(tabs.get_tab("requests-tab").label) == "Requests (1 expired, 2 expiring)"


async def test_no_mark_and_plain_header_when_nothing_expires(tmp_path: Path, utc: None) -> None:
    service = fake_service(tmp_path / "fake")
    add_requests(service, (issued(25, "fine", 300),))
    app = TuiCsrApp(service, pin=FAKE_PIN, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tabs = app.main_screen.query_one("#tabs", TabbedContent)
        assert str(tabs.get_tab("requests-tab").label) == "Requests"
