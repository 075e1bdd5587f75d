"""Issue 14: the Requests table at scale is virtual, and still does everything a short one does.

Stores of a few thousand requests (more than :data:`SYNC_ROWS`, so filter and sort run on a
thread, and fewer, so they run on the event loop) are written in one go; the tests then drive the
real app by keyboard and look at what the table paints: the last row after ``ctrl+end``, sorting,
filtering, the cursor and the Actions menu on a row far down, literal text and the lost-key mark
there. They assert behaviour, never timings.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from rich.text import Text

from tests.ui.conftest import FAKE_PIN, SAMPLE, fake_service, make_request, settle
from tui_csr.core.models import Request
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.actions import ActionsMenu
from tui_csr.ui.widgets.requests import KEY_GONE, SYNC_ROWS, RequestsView
from tui_csr.ui.widgets.virtual_table import VirtualTable, column_widths

SIZE = (100, 30)
MARKUP = "[b]far[/b] [@click=app.quit]x[/]"


def _many(count: int) -> list[Request]:
    """``count`` requests, ``bulk-00000`` the oldest; ``far-…`` the oldest of all (the last
    row, newest first), with a label that looks like markup."""
    base = SAMPLE[0]
    out = [replace(base, id=f"{0x100000 + n:032x}", label=f"bulk-{n:05d}",
                   subject=f"CN=host{n}.example.com", subject_fields={"CN": f"host{n}.example.com"},
                   created=base.created + timedelta(minutes=n))
           for n in range(count)]
    # (on another token: the start-up scan would report its key missing from the fake one)
    out.append(replace(make_request(0xFA5, MARKUP, "far.example.com"), token_label="other",
                       created=base.created - timedelta(days=1)))
    return out


def _app(tmp_path: Path, requests: list[Request]) -> TuiCsrApp:
    """The app over a store holding ``requests``, written in one go (one write per request
    would take minutes)."""
    service = fake_service(tmp_path / "data")
    store = service.store
    data = store._storage.read() or {}
    data["requests"] = {str(n + 1): r.to_doc() for n, r in enumerate(requests)}
    store._storage.write(data)
    return TuiCsrApp(service, pin=FAKE_PIN)


def _view(app: TuiCsrApp) -> RequestsView:
    return app.main_screen.requests


def painted(table: VirtualTable) -> str:
    """The text of every line the table paints now (its visible window)."""
    return "\n".join("".join(segment.text for segment in table.render_line(y))
                     for y in range(table.size.height))


def first_labels(table: VirtualTable, n: int) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(n)]


@pytest.fixture(params=[SYNC_ROWS // 2, SYNC_ROWS + 500], ids=["on-the-loop", "on-a-thread"])
def count(request) -> int:
    return request.param


async def test_end_shows_the_last_row_painted_and_literal(tmp_path: Path, count: int) -> None:
    requests = _many(count)
    app = _app(tmp_path, requests)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = _view(app).table
        assert table.row_count == len(requests)  # all of them, from the start
        assert "bulk-" in painted(table) and MARKUP not in painted(table)
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert table.cursor_row == len(requests) - 1
        shown = painted(table)
        assert MARKUP in shown  # the oldest, last row: on screen, as typed (never markup)
        assert "bulk-00000" in shown
        last = table.get_row_at(len(requests) - 1)
        assert all(isinstance(cell, Text) for cell in last) and last[0].plain == MARKUP
        await pilot.press("ctrl+home")
        await pilot.pause()
        assert table.cursor_row == 0 and f"bulk-{count - 1:05d}" in painted(table)


async def test_sort_and_filter_see_every_row(tmp_path: Path, count: int) -> None:
    requests = _many(count)
    app = _app(tmp_path, requests)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = _view(app)
        table = view.table
        await pilot.press("s", "s")  # created -> attestation -> label
        await settle(pilot)
        assert view.sort_column == "label"
        assert "Label ▲" in [str(c.label) for c in table.columns.values()]
        assert first_labels(table, 3) == [MARKUP, "bulk-00000", "bulk-00001"]  # "[" < "b"
        await pilot.press("S")
        await settle(pilot)
        assert first_labels(table, 2) == [f"bulk-{count - 1:05d}", f"bulk-{count - 2:05d}"]
        assert table.row_count == len(requests)
        # The filter searches every request, the far ones too, and takes markup as text.
        await pilot.press("slash", *"[b]far")
        await settle(pilot)
        assert table.row_count == 1 and table.get_row_at(0)[0].plain == MARKUP
        await pilot.press("escape")
        await settle(pilot)
        assert table.row_count == len(requests)
        await pilot.press("slash", *f"host{count - 7}.")
        await settle(pilot)
        assert first_labels(table, table.row_count) == [f"bulk-{count - 7:05d}"]


async def test_actions_menu_on_a_row_far_down(tmp_path: Path, count: int) -> None:
    requests = _many(count)
    app = _app(tmp_path, requests)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = _view(app)
        table = view.table
        target = count // 3 * 2  # newest first: bulk-(count-1-target) is at row target
        await pilot.press("pagedown")
        table.move_cursor(row=target)
        await pilot.pause()
        await pilot.press("j", "k", "j")
        await pilot.pause()
        label = f"bulk-{count - 2 - target:05d}"
        assert table.cursor_row == target + 1
        assert view.selected_request() is not None and view.selected_request().label == label
        assert label in painted(table)  # the cursor row was scrolled into view
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ActionsMenu) and app.screen.request.label == label
        await pilot.press("escape")
        await settle(pilot)
        # Filtering keeps the cursor on the same request when it still passes.
        await pilot.press("slash", *"bulk-", "enter")
        await settle(pilot)
        assert view.selected_request() is not None and view.selected_request().label == label


async def test_lost_key_mark_on_a_far_row(tmp_path: Path) -> None:
    requests = _many(SYNC_ROWS + 10)
    far = requests[-1]
    app = _app(tmp_path, requests)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = _view(app)
        view.mark_lost({far.id})
        await settle(pilot)
        table = view.table
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert table.get_row_at(table.row_count - 1)[2].plain == KEY_GONE
        assert KEY_GONE in painted(table)
        assert {row.request.id for row in view.rows if row.key_gone} == {far.id}
        view.mark_lost(set())
        await settle(pilot)
        assert KEY_GONE not in painted(table)


async def test_columns_fit_the_widest_cell_of_the_rows_shown(tmp_path: Path) -> None:
    wide = replace(make_request(0xB16, "w" * 60, "wide.example.com"), token_label="other",
                   created=SAMPLE[0].created)
    app = _app(tmp_path, [*_many(30), wide])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = _view(app).table
        assert next(iter(table.columns.values())).content_width == 60
        await pilot.press("slash", *"bulk-0000")
        await settle(pilot)
        # Narrowed to what is shown (DataTable's own rule).
        assert next(iter(table.columns.values())).content_width == len("bulk-00000")


def test_column_widths() -> None:
    assert column_widths([(1, 5), (3, 2)], 2) == [3, 5]
    assert column_widths([], 3) == [0, 0, 0]


async def test_show_rows_replaces_add_row(tmp_path: Path) -> None:
    app = _app(tmp_path, _many(3))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with pytest.raises(NotImplementedError):
            _view(app).table.add_row("x")
