"""Snapshots of the shell's screens and dialogs, at 100x30 and at the 80x24 minimum.

Deterministic by construction: a scripted token labelled ``demo``, the user ``alice``, records
with fixed ids and times, local time UTC, and no blinking cursor. Each test builds its own app
and store, so the tests can run in any order and on any xdist worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui.conftest import FAKE_PIN, SAMPLE, add_requests, fake_service, settle
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.screens.result import ResultScreen

BIG = (100, 30)
SMALL = (80, 24)


def _app(tmp_path: Path, *, requests=SAMPLE, pin: str | None = FAKE_PIN, **kw) -> TuiCsrApp:
    service = fake_service(tmp_path / "data", **kw)
    add_requests(service, requests)
    return TuiCsrApp(service, pin=pin)


async def _steady(pilot: Pilot) -> None:
    """Workers done, and no cursor that blinks between two runs."""
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.usefixtures("utc")
class TestRequestsTab:
    """The main screen's Requests tab."""

    def test_filled(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), terminal_size=BIG, run_before=_steady)

    def test_filled_small(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), terminal_size=SMALL, run_before=_steady)

    def test_filtered(self, snap_compare, tmp_path: Path) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("slash", *"example.com", "enter")
            await _steady(pilot)

        assert snap_compare(_app(tmp_path), terminal_size=BIG, run_before=run_before)

    def test_empty(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path, requests=()), terminal_size=BIG, run_before=_steady)

    def test_no_group(self, snap_compare, tmp_path: Path) -> None:
        app = _app(tmp_path, requests=(), groups=())
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)


class TestLogin:
    """The PIN dialog over the main screen."""

    def test_login_dialog(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path, pin=None), terminal_size=BIG, run_before=_steady)

    def test_wrong_pin_small(self, snap_compare, tmp_path: Path) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press(*"0000", "enter")
            await _steady(pilot)

        assert snap_compare(_app(tmp_path, pin=None), terminal_size=SMALL,
                            run_before=run_before)


@pytest.mark.usefixtures("utc")
class TestHelp:
    """F1 on the Requests tab."""

    def test_help(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), press=["f1"], terminal_size=BIG,
                            run_before=_steady)

    def test_help_small(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), press=["f1"], terminal_size=SMALL,
                            run_before=_steady)


async def _open_result(pilot: Pilot) -> None:
    await settle(pilot)
    await pilot.app.push_screen(ResultScreen(SAMPLE[0], save_directory=Path("/srv/csr")))
    await _steady(pilot)


@pytest.mark.usefixtures("utc")
class TestResult:
    """One request's CSR, and saving it."""

    def test_result(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), terminal_size=BIG, run_before=_open_result)

    def test_result_small(self, snap_compare, tmp_path: Path) -> None:
        assert snap_compare(_app(tmp_path), terminal_size=SMALL, run_before=_open_result)

    def test_save_dialog_small(self, snap_compare, tmp_path: Path) -> None:
        async def run_before(pilot: Pilot) -> None:
            await _open_result(pilot)
            await pilot.press("s")
            await _steady(pilot)

        assert snap_compare(_app(tmp_path), terminal_size=SMALL, run_before=run_before)


class TestIssue12Main:
    """The main screen fixes of issue 12 at 80x24: the footer with a filter, a lost key."""

    def test_filter_footer_80x24(self, snap_compare, tmp_path: Path) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("slash", *"example")
            await _steady(pilot)

        assert snap_compare(_app(tmp_path), terminal_size=SMALL, run_before=run_before)

    def test_lost_key_marked_80x24(self, snap_compare, tmp_path: Path) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            app = pilot.app
            app.main_screen.requests.mark_lost({SAMPLE[2].id})
            await _steady(pilot)

        assert snap_compare(_app(tmp_path), terminal_size=SMALL, run_before=run_before)
