"""The Requests tab: a filter, the Generate CSR button and the table of pending requests.

:class:`RequestsView` goes in a ``TabPane`` of the main screen, with ``reload()`` like the other
tab views; rows arrive a page at a time, the filter and sort work on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from tui_csr.ui.text import LiteralTable

if TYPE_CHECKING:
    from tui_csr.service import CsrService

#: (column key, header) of the Requests table, in display order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("label", "Label"), ("cn", "Subject CN"), ("key", "Key"), ("signature", "Signature"),
    ("groups", "Groups"), ("owner", "Owner"), ("created", "Created"),
    ("attestation", "Attestation"),
)
_KEYS = [key for key, _ in COLUMNS]
#: Rows added to the table at a time, and how close to the end the cursor gets before the next.
PAGE = 200
PAGE_MARGIN = 40

NO_GROUP_TEXT = ("No certificate group exists yet, and every request needs one: an "
                 "administrator must create one first (tui-csr groups add NAME).")
NO_REQUEST_TEXT = "No pending requests. Press g (or the Generate CSR button) to make one."
WAITING_TEXT = "Opening the token…"
#: The Key cell of a request whose key pair the start-up scan found gone from the token.
KEY_GONE = "✗ key gone"


@dataclass(frozen=True)
class RequestRow:
    """One table row: the request and its cells, as shown."""

    request: Request
    cells: tuple[str, ...]

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
        ))

    def matches(self, needle: str) -> bool:
        """Whether the filter text occurs in the label, subject, groups or owner."""
        r = self.request
        haystack = " ".join([r.label, r.subject, *r.groups, r.owner or ""]).casefold()
        return needle.casefold() in haystack

    def sort_key(self, column: str) -> tuple:
        """What to sort by in ``column`` (the creation time itself for Created)."""
        if column == "created":
            return (self.request.created,)
        return (self.cells[_KEYS.index(column)].casefold(), self.request.label.casefold())


def sort_text(column: str, reverse: bool) -> str:
    """``Sorted by Signature, ascending (▲).``"""
    title = dict(COLUMNS)[column]
    order = "descending (▼)" if reverse else "ascending (▲)"
    return f"Sorted by {title}, {order}."


class RequestsTable(LiteralTable):
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

        def __init__(self, requests: list[Request], groups: list[Group]) -> None:
            super().__init__()
            self.requests = requests
            self.groups = groups

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
        self._pending_rows: list[RequestRow] = []  # filtered and sorted, not all in the table
        self._shown = 0  # how many of them the table holds
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

    # -- loading ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the requests again (in a worker)."""
        self.loading = True
        self._load()

    @work(exclusive=True, exit_on_error=False, group="requests")
    async def _load(self) -> None:
        requests = await self.service.list_requests()
        groups = await self.service.list_groups()
        self.post_message(self.Loaded(requests, groups))

    def worker_failed(self, worker: Worker) -> None:
        """A failed load: stop the loading indicator (the app shows the error)."""
        self.loading = False

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self._requests = event.requests
        self.groups = event.groups
        self.loading = False
        self._make_rows()

    def mark_lost(self, ids: set[str]) -> None:
        """Mark the requests ``ids`` as having lost their key (the Key column says so)."""
        self.lost_key_ids = set(ids)
        self._make_rows()

    def _make_rows(self) -> None:
        attestation = self.service.settings.attestation
        self.rows = [RequestRow.of(r, attestation, key_gone=r.id in self.lost_key_ids)
                     for r in self._requests]
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
        needle = self.filter_text
        rows = [row for row in self.rows if not needle or row.matches(needle)]
        rows.sort(key=lambda row: row.sort_key(self.sort_column), reverse=self.sort_reverse)
        return rows

    def selected_request(self) -> Request | None:
        """The request under the cursor, if any."""
        table = self.table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((row.request for row in self.rows if row.request.id == key), None)

    def show_rows(self) -> None:
        """Fill the table from ``rows`` (filtered, sorted), or show what to do instead."""
        table = self.table
        keep = self.selected_request()
        rows = self.visible_rows()
        table.clear(columns=True)
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, title in COLUMNS:
            table.add_column(title + (arrow if key == self.sort_column else ""), key=key)
        self._pending_rows = rows
        self._shown = 0
        keep_index = next((i for i, row in enumerate(rows)
                           if keep is not None and row.request.id == keep.id), None)
        self._add_page(upto=keep_index)
        if keep_index is not None:
            table.move_cursor(row=keep_index)
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

    def _add_page(self, upto: int | None = None) -> None:
        """Add the next :data:`PAGE` rows (or up to row ``upto``). DataTable measures every cell
        of every row it holds: 10,000 rows took ~10 s to show, so rows arrive a page at a time
        as the cursor nears the end (filter and sort still work on all of them)."""
        end = max(self._shown + PAGE, (upto or 0) + 1)
        chunk = self._pending_rows[self._shown:end]
        table = self.table
        for row in chunk:
            table.add_row(*row.cells, key=row.request.id)
        self._shown += len(chunk)

    @on(DataTable.RowHighlighted)
    def _near_the_end(self, event: DataTable.RowHighlighted) -> None:
        if (self._shown < len(self._pending_rows)
                and event.cursor_row >= self._shown - PAGE_MARGIN):
            self._add_page()

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
        self.show_rows()
        table = self.table
        # Twice deferred: the rebuilt table learns its width on the next refresh, and moving
        # its row cursor scrolls it back to the left edge right after that.
        table.call_after_refresh(table.call_after_refresh, self._scroll_to_sort_column)
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
        request = next((row.request for row in self.rows
                        if row.request.id == event.row_key.value), None)
        if request is not None:
            self.post_message(self.Opened(request))
