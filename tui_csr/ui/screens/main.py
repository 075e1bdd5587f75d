"""The main screen: tabs, one per kind of thing (Requests now; Certificates and Groups later).

Each tab holds one view widget with a ``reload()`` method; :class:`MainScreen` routes ``r`` to
the active tab's view. Adding a tab is one more ``TabPane`` in :meth:`MainScreen.compose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Static,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker

from tui_csr.core.models import Group, Request
from tui_csr.ui.dialogs.actions import (
    Action,
    ActionsMenu,
    RequestActions,
    ViewRequested,
    open_actions,
)
from tui_csr.ui.dialogs.error import ErrorReported, ReportsWorkerErrors
from tui_csr.ui.dialogs.orphans import OrphansDialog
from tui_csr.ui.screens.certificates import CertificatesView, Clock
from tui_csr.ui.screens.groups import GroupsView
from tui_csr.ui.screens.result import ResultScreen, describe_key
from tui_csr.ui.text import LiteralTable

if TYPE_CHECKING:
    from tui_csr.service import CsrService
    from tui_csr.services.orphans import OrphanReport

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
_WIZARD_MODULE = "tui_csr.ui.screens.wizard"


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
        Binding("escape", "clear_filter", "Clear filter", tooltip="Show all requests again",
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
        index = _KEYS.index(self.sort_column)
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:index])
        width = list(table.columns.values())[index].get_render_width(table)
        if x < table.scroll_x or x + width > table.scroll_x + table.scrollable_content_region.width:
            table.scroll_to(x=x, animate=False)
        self.notify(sort_text(self.sort_column, self.sort_reverse), title="Sorted",
                    timeout=3)

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


#: (tab pane id, tab title) in order; keys 1, 2, 3 choose them.
TABS: tuple[tuple[str, str], ...] = (
    ("requests-tab", "Requests"), ("certificates-tab", "Certificates"), ("groups-tab", "Groups"),
)


class MainScreen(Screen[None]):
    """Header, the tabs and the footer; ``g`` opens the Generate-CSR wizard.

    Keys that belong to a tab (``a`` Actions, ``n``/``e``/``x`` on Groups) are declared here
    too and handed to the active tab's view, so they work wherever the focus is (the tab bar
    included); the views keep their own declarations for when the focus is inside them.
    """

    BINDINGS = [
        Binding("g", "generate", "Generate CSR", tooltip="Generate a key pair and CSR on the "
                "token", id="main.generate"),
        Binding("r", "refresh", "Refresh", tooltip="Read the list again", id="main.refresh"),
        Binding("a", "actions", "Actions", tooltip="View, copy, download, groups, import, "
                "delete", id="main.actions"),
        Binding("1", "tab(0)", "Tabs", key_display="1-3", tooltip="Requests (1), Certificates "
                "(2), Groups (3); ctrl+pageup/pagedown: previous/next tab", id="main.tab_1"),
        Binding("2", "tab(1)", "Certificates", show=False, tooltip="The Certificates tab",
                id="main.tab_2"),
        Binding("3", "tab(2)", "Groups", show=False, tooltip="The Groups tab",
                id="main.tab_3"),
        Binding("ctrl+pagedown", "next_tab", "Next tab", show=False,
                tooltip="The tab to the right", id="main.next_tab"),
        Binding("ctrl+pageup", "previous_tab", "Previous tab", show=False,
                tooltip="The tab to the left", id="main.previous_tab"),
        Binding("n", "groups('create')", "New group", show=False,
                tooltip="Create a certificate group (Groups tab)", id="main.groups_create"),
        Binding("e", "groups('edit')", "Edit", show=False,
                tooltip="Edit the selected group (Groups tab)", id="main.groups_edit"),
        Binding("x", "groups('remove')", "Remove", show=False,
                tooltip="Remove the selected group (Groups tab)", id="main.groups_remove"),
    ]

    class OrphansFound(Message):
        """The start-up scan found keys without a record or records without a key."""

        def __init__(self, report: OrphanReport) -> None:
            super().__init__()
            self.report = report

    def __init__(self, service: CsrService, *, clock: Clock | None = None) -> None:
        super().__init__()
        self.service = service
        self._clock = clock
        #: Set once the token is logged in; the wizard and the table wait for it.
        self.ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="tabs", initial="requests-tab"):
            # One TabPane per tab; each holds a view with reload() (see action_refresh).
            yield TabPane("Requests", RequestsView(self.service, id="requests"),
                          id="requests-tab")
            yield TabPane("Certificates", CertificatesView(self.service, id="certificates",
                                                           clock=self._clock),
                          id="certificates-tab")
            yield TabPane("Groups", GroupsView(self.service, id="groups"), id="groups-tab")
        yield Footer(compact=True)

    @property
    def HELP_TITLE(self) -> str:  # noqa: N802 - the name HelpScreen reads on every screen
        """Help is titled by the tab it describes."""
        return dict(TABS).get(self.active_tab, "Requests")

    @property
    def active_tab(self) -> str:
        """The id of the tab pane showing."""
        return self.query_one(TabbedContent).active

    @property
    def requests(self) -> RequestsView:
        """The Requests tab's view."""
        return self.query_one(RequestsView)

    @property
    def certificates(self) -> CertificatesView:
        """The Certificates tab's view."""
        return self.query_one(CertificatesView)

    @property
    def groups(self) -> GroupsView:
        """The Groups tab's view."""
        return self.query_one(GroupsView)

    def token_ready(self) -> None:
        """Called by the app once logged in: load the lists, enable the actions."""
        self.ready = True
        self.refresh_bindings()
        self.reload_all()
        self.requests.table.focus()
        self._scan_orphans()

    def on_screen_resume(self) -> None:
        """Back from a dialog or the wizard: the table, not the Generate button, takes enter."""
        view = self.requests
        table = view.table
        # While the list was empty the table was hidden and focus went to the filter or the
        # Generate button; give it back unless the user is filtering.
        if (self.ready and self.active_tab == "requests-tab" and table.display
                and not view.filter_text
                and (self.focused is None or self.focused.id in {"generate", "filter"})):
            table.focus()

    def reload_all(self) -> None:
        """Reload every tab (after a change that may move a request between them)."""
        self.requests.reload()
        self.certificates.reload()
        self.groups.reload()

    @work(exclusive=True, exit_on_error=False, group="orphans")
    async def _scan_orphans(self) -> None:
        """Report keys on the token without a record, and records whose key is gone."""
        try:
            report = await self.service.scan_orphans()
        except Exception as exc:  # noqa: BLE001 - a failed scan must not stop the app
            self.notify(f"The orphan scan failed: {exc}", severity="warning")
            return
        if not report.empty:
            self.post_message(self.OrphansFound(report))

    @on(OrphansFound)
    def _orphans_found(self, event: OrphansFound) -> None:
        lost = {r.id for r in event.report.records_without_key}
        if hasattr(self.app, "lost_key_ids"):
            self.app.lost_key_ids = set(lost)  # type: ignore[attr-defined]
        self.requests.mark_lost(lost)
        self.app.push_screen(OrphansDialog(self.service, event.report, self.reload_all))

    # -- tabs ---------------------------------------------------------------------------------
    def action_tab(self, index: int) -> None:
        """Show tab number ``index`` (0-based) and put the focus in its table."""
        tab_id = TABS[index % len(TABS)][0]
        self.query_one(TabbedContent).active = tab_id
        self.call_after_refresh(self._focus_tab_table)

    def action_next_tab(self) -> None:
        """The tab to the right (wrapping)."""
        self.action_tab([t for t, _ in TABS].index(self.active_tab) + 1)

    def action_previous_tab(self) -> None:
        """The tab to the left (wrapping)."""
        self.action_tab([t for t, _ in TABS].index(self.active_tab) - 1)

    def _focus_tab_table(self) -> None:
        view = self.active_view()
        table = getattr(view, "table", None)
        if table is not None and table.display:
            table.focus()

    def active_view(self) -> RequestsView | CertificatesView | GroupsView:
        """The view of the tab showing."""
        return {"requests-tab": self.requests, "certificates-tab": self.certificates,
                "groups-tab": self.groups}[self.active_tab]

    @on(TabbedContent.TabActivated)
    def _tab_activated(self) -> None:
        self.refresh_bindings()  # Actions and the group keys follow the tab

    @on(CertificatesView.Changed)
    @on(GroupsView.Changed)
    def _tab_changed(self) -> None:
        self.requests.reload()

    # -- actions ------------------------------------------------------------------------------
    def selected_request(self) -> Request | None:
        """The request selected on the Requests or Certificates tab (None elsewhere)."""
        view = self.active_view()
        if isinstance(view, GroupsView):
            return None
        return view.selected_request()

    def action_actions(self) -> None:
        """The Actions menu of the selected request (Requests or Certificates tab)."""
        request = self.selected_request()
        if request is None:
            self.notify("Select a request first.", severity="warning")
            return
        open_actions(self, self.service, request, self.reload_all)

    def run_request_action(self, action: Action) -> None:
        """Carry out one Actions-menu ``action`` on the selected request (the palette)."""
        request = self.selected_request()
        if request is None:
            self.notify("Select a request on the Requests or Certificates tab first.",
                        severity="warning")
            return
        menu = ActionsMenu(request)
        if action not in {a for a, _ in menu.actions}:
            self.notify(f"'{request.label}' has no certificate yet.", severity="warning")
            return
        RequestActions(self.app, self.service, request, self.reload_all).run(action)

    def action_groups(self, what: str) -> None:
        """Create, edit or remove a group (Groups tab), wherever the focus is."""
        if self.active_tab != "groups-tab":
            return
        view = self.groups
        if view.check_action(what, ()) is True:
            {"create": view.action_create, "edit": view.action_edit,
             "remove": view.action_remove}[what]()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Generate and refresh wait for the login (shown dimmed until then); tab keys show
        on their tab only."""
        if action in {"generate", "refresh"}:
            return True if self.ready else None
        if action == "actions":
            on_list = self.active_tab in {"requests-tab", "certificates-tab"}
            return (True if self.ready else None) if on_list else False
        if action == "groups":
            if self.active_tab != "groups-tab" or not self.service.is_admin:
                return False
            return self.groups.check_action(str(parameters[0]), ())
        return True

    def action_refresh(self) -> None:
        """Reload the active tab."""
        self.active_view().reload()

    @on(Button.Pressed, "#generate")
    def action_generate(self) -> None:
        """Open the Generate-CSR wizard; a finished request then opens in the result screen."""
        if not self.ready:
            self.notify("Log in to the token first.", severity="warning")
            return
        if self.requests.groups == []:
            self.notify(f"{NO_GROUP_TEXT} Then press r.", severity="warning",
                        title="No certificate group")
            return
        try:
            from tui_csr.ui.screens.wizard import GenerateWizard
        except ImportError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == _WIZARD_MODULE:
                self.notify("Generate CSR: wizard not available in this build.",
                            severity="warning")
            else:  # the wizard exists but is broken: say so instead of hiding it
                self.post_message(ErrorReported(exc, "The wizard cannot be opened"))
            return
        self.app.push_screen(GenerateWizard(self.service), self._wizard_done)

    def _wizard_done(self, request: Request | None) -> None:
        if request is None:
            return
        self.requests.reload()
        self.app.push_screen(ResultScreen(request))

    @on(RequestsView.Opened)
    def _open(self, event: RequestsView.Opened) -> None:
        self.post_message(ViewRequested(event.request, on_change=self.reload_all))
