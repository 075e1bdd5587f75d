"""The main screen: the Requests, Certificates and Groups tabs, header and footer.

Each tab holds one view widget from :mod:`tui_csr.ui.widgets` with a ``reload()`` method;
:class:`MainScreen` routes ``r`` to the active tab's view, and tab keys to the active view.
Adding a tab is one more ``TabPane`` in :meth:`MainScreen.compose` and one line in :data:`TABS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    TabbedContent,
    TabPane,
)

from tui_csr.core.models import Request
from tui_csr.ui.dialogs.actions import (
    Action,
    ActionsMenu,
    RequestActions,
    ViewRequested,
    open_actions,
)
from tui_csr.ui.dialogs.error import ErrorReported
from tui_csr.ui.dialogs.orphans import OrphansDialog
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.widgets.certificates import CertificatesView, Clock
from tui_csr.ui.widgets.groups import GroupsView
from tui_csr.ui.widgets.requests import (  # noqa: F401 - the Requests tab's names, from here too
    KEY_GONE,
    NO_GROUP_TEXT,
    NO_REQUEST_TEXT,
    RequestsView,
)

if TYPE_CHECKING:
    from tui_csr.service import CsrService
    from tui_csr.services.orphans import OrphanReport

_WIZARD_MODULE = "tui_csr.ui.screens.wizard"

#: (tab pane id, tab title) in order; keys 1, 2, 3 choose them.
#: How often the store's change mark is read (TinyDB: the file; PostgreSQL: LISTEN's counter).
STORE_POLL_SECONDS = 2.0
#: Seconds after login by which the start-up orphan scan starts even if the list never loaded.
ORPHAN_SCAN_LATEST = 3.0

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
        # At 80 columns the footer holds about eight keys: the rest are in Help (F1) and the
        # palette (ctrl+p, which Help names), so the footer never runs into itself.
        Binding("g", "generate", "Generate CSR", tooltip="Generate a key pair and CSR on the "
                "token", id="main.generate"),
        Binding("r", "refresh", "Refresh", show=False, tooltip="Read the list again",
                id="main.refresh"),
        Binding("a", "actions", "Actions", tooltip="View, copy, download, groups, import, "
                "delete", id="main.actions"),
        Binding("1", "tab(0)", "Tabs", key_display="1-3", tooltip="Requests (1), Certificates "
                "(2), Groups (3); ctrl+pageup/pagedown: previous/next tab", id="main.tab_1"),
        # No tooltip: Help lists them in the "1-3 Tabs" line.
        Binding("2", "tab(1)", "Certificates", show=False, id="main.tab_2"),
        Binding("3", "tab(2)", "Groups", show=False, id="main.tab_3"),
        # Priority: the tables would take ctrl+pageup/pagedown as paging otherwise.
        Binding("ctrl+pagedown", "next_tab", "Next tab", show=False, priority=True,
                tooltip="The tab to the right", id="main.next_tab"),
        Binding("ctrl+pageup", "previous_tab", "Previous tab", show=False, priority=True,
                tooltip="The tab to the left", id="main.previous_tab"),
        Binding("n", "groups('create')", "New group", show=False,
                tooltip="Create a certificate group (Groups tab)", id="main.groups_create"),
        Binding("e", "groups('edit')", "Edit", show=False,
                tooltip="Edit the selected group (Groups tab)", id="main.groups_edit"),
        Binding("x", "groups('remove')", "Remove", show=False,
                tooltip="Remove the selected group (Groups tab)", id="main.groups_remove"),
    ]

    class Reloaded(Message):
        """Every tab was read again (``r``, or another session changed the store): what the
        header says about the acting user may have changed too (a database back up)."""

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
        yield Footer(compact=True, show_command_palette=False)

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
        # The start-up orphan scan reads every record and lists the token's keys: it starts
        # once the Requests tab has its rows on screen (not competing with that first read
        # for the store and the CPU), or after a few seconds whatever happened to the read.
        self._orphan_scan_due = True
        self.set_timer(ORPHAN_SCAN_LATEST, self._start_orphan_scan)
        # Another admin's change to the store shows up here by itself (TinyDB: the file's
        # change time; PostgreSQL: the LISTEN/NOTIFY counter, also moved by a reconnection).
        self.set_interval(STORE_POLL_SECONDS, self.poll_store)

    #: The last mark of the store file seen (None: not read yet, or no file).
    _store_mark: tuple[int, ...] | None = None

    def poll_store(self) -> None:
        """Read the store file's change mark (off the loop); the lists reload when it moved."""
        self._check_store()

    @work(exclusive=True, exit_on_error=False, group="store-poll")
    async def _check_store(self) -> None:
        try:
            mark = await self.service.store_change_mark()
        except Exception:  # noqa: BLE001 - polling must never disturb; `r` reports errors
            return
        if mark is None:
            return
        if self._store_mark is not None and mark != self._store_mark:
            self.reload_all()
        self._store_mark = mark

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

    _orphan_scan_due = False

    @on(RequestsView.Loaded)
    def _requests_loaded(self) -> None:
        if self._orphan_scan_due:
            self.call_after_refresh(self._start_orphan_scan)

    def _start_orphan_scan(self) -> None:
        if self._orphan_scan_due:
            self._orphan_scan_due = False
            self._scan_orphans()

    def reload_all(self) -> None:
        """Reload every tab (after a change that may move a request between them)."""
        self.requests.reload()
        self.certificates.reload()
        self.groups.reload()
        self.post_message(self.Reloaded())

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
            self.app.lost_key_ids = set(lost)
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
        views: dict[str, RequestsView | CertificatesView | GroupsView] = {
            "requests-tab": self.requests, "certificates-tab": self.certificates,
            "groups-tab": self.groups}
        return views[self.active_tab]

    @on(TabbedContent.TabActivated)
    def _tab_activated(self) -> None:
        self.refresh_bindings()  # Actions and the group keys follow the tab

    @on(CertificatesView.ExpiryCounted)
    def _expiry_counted(self, event: CertificatesView.ExpiryCounted) -> None:
        """The Requests tab's header counts the certificates to renew soon."""
        parts = []
        if event.expired:
            parts.append(f"{event.expired} expired")
        if event.expiring:
            parts.append(f"{event.expiring} expiring")
        label = "Requests" + (f" ({', '.join(parts)})" if parts else "")
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.get_tab("requests-tab").label = label

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
