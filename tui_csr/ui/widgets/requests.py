"""The Requests tab: a filter, the Generate CSR button and the table of pending requests.

:class:`RequestsView` goes in a ``TabPane`` of the main screen, with ``reload()`` like the other
tab views. The table is virtual (:mod:`tui_csr.ui.widgets.virtual_table`): it holds the list of
rows and renders only those on screen, so 100,000 requests show as fast as 20. The rows' cells
are made once per load, off the event loop; a filter or sort of more than :data:`SYNC_ROWS` rows
runs on a thread too, so typing never stalls the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static
from textual.worker import Worker

from tui_csr.core.models import Group, Request
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.screens.result import describe_key
from tui_csr.ui.widgets.virtual_table import VirtualTable, cell_width

if TYPE_CHECKING:
    from tui_csr.service import CsrService

#: (column key, header) of the Requests table, in display order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("label", "Label"), ("cn", "Subject CN"), ("key", "Key"), ("signature", "Signature"),
    ("groups", "Groups"), ("owner", "Owner"), ("created", "Created"),
    ("attestation", "Attestation"),
)
_KEYS = [key for key, _ in COLUMNS]
_KEY_COLUMN = _KEYS.index("key")
#: Up to this many rows are filtered and sorted on the event loop (a few ms); more go to a
#: thread, and the table shows the result when it is ready.
SYNC_ROWS = 5_000
#: Rows filtered between two looks at whether the user typed on (a newer filter wins).
_CHUNK = 4_096

NO_GROUP_TEXT = ("No certificate group exists yet, and every request needs one: an "
                 "administrator must create one first (tui-csr groups add NAME).")
NO_REQUEST_TEXT = "No pending requests. Press g (or the Generate CSR button) to make one."
WAITING_TEXT = "Opening the token…"
#: The Key cell of a request whose key pair the start-up scan found gone from the token.
KEY_GONE = "✗ key gone"


_WIDTHS: dict[tuple[int, ...], tuple[int, ...]] = {}


class RequestRow:
    """One table row: the request, its cells as shown, and their widths."""

    __slots__ = ("_haystack", "cells", "key_gone", "request", "widths")

    def __init__(self, request: Request, cells: tuple[str, ...], key_gone: bool = False) -> None:
        self.request = request
        self.cells = cells
        self.key_gone = key_gone
        #: Terminal cells each cell takes (the column widths are the widest of the rows shown);
        #: a few hundred distinct tuples cover 10,000 rows, so they are shared.
        widths = tuple(map(cell_width, cells))
        if len(_WIDTHS) > 65_536:
            _WIDTHS.clear()
        self.widths = _WIDTHS.setdefault(widths, widths)
        self._haystack: str | None = None

    @classmethod
    def of(cls, request: Request, attestation: str, *, key_gone: bool = False) -> RequestRow:
        """The row for ``request``; ``attestation`` is the configured vendor or ``none``;
        ``key_gone`` marks a request whose key pair is no longer on the token."""
        key, signature = describe_key(request)
        if key_gone:
            key = KEY_GONE
        return cls(request, (
            request.label, request.subject_fields.get("CN", ""), key, signature,
            ", ".join(request.groups), request.owner or "",
            request.created.astimezone().strftime("%Y-%m-%d %H:%M"),
            "no" if attestation == "none" else attestation,
        ), key_gone)

    def marked(self, key_gone: bool) -> RequestRow:
        """This row with its Key cell saying (or no longer saying) that the key is gone."""
        key = KEY_GONE if key_gone else describe_key(self.request)[0]
        cells = (*self.cells[:_KEY_COLUMN], key, *self.cells[_KEY_COLUMN + 1:])
        return RequestRow(self.request, cells, key_gone)

    @property
    def key(self) -> str:
        """The table's key for this row: the request id."""
        return self.request.id

    @property
    def haystack(self) -> str:
        """What the filter searches: label, subject, groups and owner, case-folded."""
        if self._haystack is None:
            r = self.request
            self._haystack = " ".join([r.label, r.subject, *r.groups, r.owner or ""]).casefold()
        return self._haystack

    def matches(self, needle: str) -> bool:
        """Whether the filter text occurs in the label, subject, groups or owner."""
        return needle.casefold() in self.haystack

    def sort_key(self, column: str) -> tuple:
        """What to sort by in ``column`` (the creation time itself for Created)."""
        if column == "created":
            return (self.request.created,)
        return (self.cells[_KEYS.index(column)].casefold(), self.request.label.casefold())


def build_rows(requests: Sequence[Request], attestation: str,
               lost: frozenset[str] | set[str]) -> list[RequestRow]:
    """The rows of ``requests`` (run on a thread for a large store: ~10 us a request)."""
    return [RequestRow.of(r, attestation, key_gone=r.id in lost) for r in requests]


class _Stale(Exception):
    """A newer filter or sort replaced the one being worked out."""


def ordered(rows: Sequence[RequestRow], column: str, reverse: bool) -> list[RequestRow]:
    """``rows`` sorted by ``column`` (the creation time itself for Created)."""
    out = list(rows)
    if column == "created":
        out.sort(key=lambda row: row.request.created, reverse=reverse)
    else:
        index = _KEYS.index(column)
        out.sort(key=lambda row: (row.cells[index].casefold(), row.request.label.casefold()),
                 reverse=reverse)
    return out


def arrange(rows: Sequence[RequestRow], needle: str, column: str, reverse: bool,
            stale: Callable[[], bool] = lambda: False, keep: Request | None = None,
            in_order: list[RequestRow] | None = None,
            ) -> tuple[list[RequestRow], list[int], int | None, list[RequestRow]]:
    """The rows that pass the filter ``needle``, sorted by ``column``, the width of each column
    over them, where the row of ``keep`` is among them (None: not there), and all the rows in
    that order: pass that back as ``in_order`` while the rows and the order stay, and typing a
    filter sorts nothing (a filter keeps the order). Raises :class:`_Stale` as soon as
    ``stale()`` says a newer one is due."""
    if in_order is None:
        in_order = ordered(rows, column, reverse)
    if stale():
        raise _Stale
    if needle:
        folded = needle.casefold()
        visible: list[RequestRow] = []
        for start in range(0, len(in_order), _CHUNK):
            if stale():
                raise _Stale
            visible += [row for row in in_order[start:start + _CHUNK] if folded in row.haystack]
    else:
        visible = in_order
    widths = [max(map(itemgetter(i), map(attrgetter("widths"), visible)), default=0)
              for i in range(len(COLUMNS))]
    where = None if keep is None else _find(visible, keep.id)
    return visible, widths, where, in_order


def _find(rows: Sequence[RequestRow], request_id: str) -> int | None:
    """Where the row of request ``request_id`` is in ``rows`` (a reload made new models)."""
    return next((i for i, row in enumerate(rows) if row.request.id == request_id), None)


def sort_text(column: str, reverse: bool) -> str:
    """``Sorted by Signature, ascending (▲).``"""
    title = dict(COLUMNS)[column]
    order = "descending (▼)" if reverse else "ascending (▲)"
    return f"Sorted by {title}, {order}."


class RequestsTable(VirtualTable):
    """The Requests table, with vim keys on top of the arrows."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open", tooltip="View the request's CSR (decoded, copy, save)",
                id="requests.open"),
        Binding("j", "cursor_down", "Down", show=False, tooltip="Next request",
                id="requests.down"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="Previous request",
                id="requests.up"),
        Binding("G", "scroll_bottom", "Last", show=False, tooltip="Last request (ctrl+end)",
                id="requests.last"),
    ]


class RequestsView(ReportsWorkerErrors, Vertical):
    """The Requests tab: a filter, the Generate CSR button and the table of pending requests."""

    error_title = "The requests cannot be loaded"

    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Filter by label, subject, groups, owner",
                id="requests.filter"),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column",
                id="requests.sort"),
        Binding("S", "sort_reverse", "Reverse", show=False, tooltip="Reverse the sort order",
                id="requests.reverse"),
        Binding("escape", "clear_filter", "Clear", tooltip="Clear the filter: show all requests",
                id="requests.clear_filter"),
    ]

    class Loaded(Message):
        """The requests and groups were read from the store."""

        def __init__(self, requests: list[Request], groups: list[Group],
                     rows: list[RequestRow] | None = None) -> None:
            super().__init__()
            self.requests = requests
            self.groups = groups
            #: The rows, made on a thread (None: the view makes them).
            self.rows = rows

    class Opened(Message):
        """The user chose a request (enter) to look at."""

        def __init__(self, request: Request) -> None:
            super().__init__()
            self.request = request

    def __init__(self, service: CsrService, **kwargs) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.rows: list[RequestRow] = []
        self.groups: list[Group] | None = None  # None until loaded
        #: Bumped by every filter or sort: a result worked out for an older one is dropped.
        self._generation = 0
        #: Whether the sorted column is to be scrolled into view once the rows are shown.
        self._scroll_to_sorted = False
        #: ((rows, column, reverse), every row in that order): a filter sorts nothing.
        self._in_order: tuple[tuple[list[RequestRow], str, bool], list[RequestRow]] | None = None
        self.sort_column = "created"
        self.sort_reverse = True  # newest first
        #: Ids of requests whose key is gone from the token (from the start-up scan).
        self.lost_key_ids: set[str] = set()
        self._requests: list[Request] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="toolbar"):
            yield Input(placeholder="/ filter: label, subject, groups, owner", id="filter",
                        compact=True)
            yield Button("Generate CSR", id="generate", variant="primary", compact=True,
                         tooltip="Generate a key pair on the token and its CSR (g)")
        yield RequestsTable(id="requests-table", cursor_type="row", zebra_stripes=True)
        yield Static(WAITING_TEXT, id="empty", markup=False)

    def on_mount(self) -> None:
        self.show_rows()
        if not self.service.settings.store:  # TinyDB: its parse is cached; PostgreSQL: nothing
            self._read_ahead()

    @work(exit_on_error=False, group="requests-read-ahead")
    async def _read_ahead(self) -> None:
        """Read the store once while the token opens and logs in: the load after the login
        then finds it parsed (a stat, and the journal's new lines, tell whether it still is)."""
        with contextlib.suppress(Exception):  # the load after the login reports it
            await self.service.list_groups()

    # -- loading ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the requests again (in a worker)."""
        self.loading = True
        self._load()

    @work(exclusive=True, exit_on_error=False, group="requests")
    async def _load(self) -> None:
        # The groups' read queued at once beside the requests' for the store lock, not behind
        # the start-up scan's read of every request (0.2 s with 10,000).
        groups_read = asyncio.ensure_future(self.service.list_groups())
        try:
            requests = await self.service.list_requests()
        except BaseException:
            groups_read.cancel()
            raise
        groups = await groups_read
        rows = await asyncio.to_thread(build_rows, requests, self.service.settings.attestation,
                                       frozenset(self.lost_key_ids))
        self.post_message(self.Loaded(requests, groups, rows))

    def worker_failed(self, worker: Worker) -> None:
        """A failed load: stop the loading indicator (the app shows the error)."""
        self.loading = False

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self._requests = event.requests
        self.groups = event.groups
        self.loading = False
        if event.rows is None:
            self._make_rows()
        else:  # the lost keys may have changed while the rows were made
            self.rows = self._marked(event.rows)
            self.show_rows()

    def mark_lost(self, ids: set[str]) -> None:
        """Mark the requests ``ids`` as having lost their key (the Key column says so)."""
        self.lost_key_ids = set(ids)
        self.rows = self._marked(self.rows)
        self.show_rows()

    def _marked(self, rows: list[RequestRow]) -> list[RequestRow]:
        lost = self.lost_key_ids
        return [row if (row.request.id in lost) is row.key_gone
                else row.marked(row.request.id in lost) for row in rows]

    def _make_rows(self) -> None:
        self.rows = build_rows(self._requests, self.service.settings.attestation,
                               self.lost_key_ids)
        self.show_rows()

    # -- showing ------------------------------------------------------------------------------
    @property
    def table(self) -> RequestsTable:
        """The table widget."""
        return self.query_one(RequestsTable)

    @property
    def filter_text(self) -> str:
        """The filter as typed (stripped)."""
        return self.query_one("#filter", Input).value.strip()

    def visible_rows(self) -> list[RequestRow]:
        """The rows that pass the filter, in sort order."""
        return arrange(self.rows, self.filter_text, self.sort_column, self.sort_reverse)[0]

    def selected_request(self) -> Request | None:
        """The request under the cursor, if any."""
        table = self.table
        rows = table.source
        if not rows or not 0 <= table.cursor_row < len(rows):
            return None
        row = rows[table.cursor_row]
        return row.request if isinstance(row, RequestRow) else None

    def show_rows(self) -> None:
        """Fill the table from ``rows`` (filtered, sorted), or show what to do instead: right
        away for up to :data:`SYNC_ROWS` rows, else from a thread, the newest filter winning."""
        self._generation += 1
        keep = self.selected_request()
        order = (self.rows, self.sort_column, self.sort_reverse)
        cached = self._in_order
        in_order = cached[1] if cached is not None and cached[0][0] is self.rows \
            and cached[0][1:] == order[1:] else None
        if len(self.rows) <= SYNC_ROWS:
            self._show(keep, order, *arrange(self.rows, self.filter_text, self.sort_column,
                                             self.sort_reverse, keep=keep, in_order=in_order))
        else:
            self._arrange_on_thread(self._generation, keep, order, in_order)

    @work(exclusive=True, exit_on_error=False, group="arrange")
    async def _arrange_on_thread(self, generation: int, keep: Request | None,
                                 order: tuple[list[RequestRow], str, bool],
                                 in_order: list[RequestRow] | None) -> None:
        def stale() -> bool:
            return generation != self._generation

        try:
            result = await asyncio.to_thread(arrange, self.rows, self.filter_text,
                                             self.sort_column, self.sort_reverse, stale, keep,
                                             in_order)
        except _Stale:
            return
        if not stale():
            self._show(keep, order, *result)

    def _show(self, kept: Request | None, order: tuple[list[RequestRow], str, bool],
              rows: list[RequestRow], widths: list[int], where: int | None,
              in_order: list[RequestRow]) -> None:
        """Show ``rows``; ``where``: the row of ``kept``, the request selected when they were
        worked out, which keeps the cursor (unless the user moved on meanwhile); ``in_order``:
        every row in the ``order`` they were sorted in, for the next filter."""
        self._in_order = (order, in_order)
        table = self.table
        keep = self.selected_request()
        if keep is not kept:  # the cursor moved while a thread worked: look for it again
            where = None if keep is None else _find(rows, keep.id)
        table.clear(columns=True)
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, title in COLUMNS:
            table.add_column(title + (arrow if key == self.sort_column else ""), key=key)
        table.show_rows(rows, widths)
        if where is not None:
            table.move_cursor(row=where)
        empty = self.query_one("#empty", Static)
        empty.update(self.empty_text())
        empty.display = not rows
        was_hidden = not table.display
        table.display = bool(rows)
        # An empty tab hides the table, so focus went elsewhere (the Generate button): when rows
        # appear, give it back to the table so enter opens a request, not the wizard.
        focused = self.screen.focused if self.is_attached else None
        if rows and was_hidden and not self.filter_text and (
                focused is None or focused.id in {"generate", "filter"}):
            table.focus()
        if not rows and table.has_focus:  # a hidden table must not keep the keys
            self.query_one("#generate", Button).focus()
        if self._scroll_to_sorted:
            self._scroll_to_sorted = False
            # Twice deferred: the rebuilt table learns its width on the next refresh, and
            # moving its row cursor scrolls it back to the left edge right after that.
            table.call_after_refresh(table.call_after_refresh, self._scroll_to_sort_column)

    def empty_text(self) -> str:
        """What to say when the table shows nothing: what to do next."""
        if self.groups is None:
            return WAITING_TEXT
        if not self.groups:
            return NO_GROUP_TEXT
        if not self.rows:
            return NO_REQUEST_TEXT
        return (f"No request matches '{self.filter_text}'. Press escape to clear the filter.")

    # -- keys ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide "Clear filter" while there is no filter."""
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter", Input).has_focus
        return True

    def action_filter(self) -> None:
        """Focus the filter field."""
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        """Empty the filter and go back to the table."""
        self.query_one("#filter", Input).value = ""
        self.table.focus()

    def action_sort_next(self) -> None:
        """Sort by the next column (ascending)."""
        self.sort_column = _KEYS[(_KEYS.index(self.sort_column) + 1) % len(_KEYS)]
        self.sort_reverse = False
        self._sorted()

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self.sort_reverse = not self.sort_reverse
        self._sorted()

    def _sorted(self) -> None:
        """Show the rows in the new order, bring the sorted column (with its ▲/▼) into view
        and say what the order is: at 80 columns most columns are off to the right."""
        self._scroll_to_sorted = True
        self.show_rows()
        self.notify(sort_text(self.sort_column, self.sort_reverse), title="Sorted",
                    timeout=3)

    def _scroll_to_sort_column(self) -> None:
        table = self.table
        columns = list(table.columns.values())
        index = _KEYS.index(self.sort_column)
        x = sum(c.get_render_width(table) for c in columns[:index])
        width = columns[index].get_render_width(table)
        visible = table.scrollable_content_region.width
        if x < table.scroll_x or x + width > table.scroll_x + visible:
            table.scroll_to(x=max(0, x + width - visible) if x + width > visible else x,
                            animate=False, immediate=True)

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._sorted()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.show_rows()
        self.refresh_bindings()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if self.table.display:
            self.table.focus()

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        table = self.table
        index = table.index_of(event.row_key)
        if index is not None:
            row = table.source[index]
            if isinstance(row, RequestRow):
                self.post_message(self.Opened(row.request))
