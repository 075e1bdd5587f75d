"""A minimal app around the request-lifecycle screens, so their tests need nothing of the shell.

The harness shows the Certificates and Groups views in tabs (as the main screen will), reports
failed workers in an :class:`ErrorDialog` like the real app, and can push a screen on mount.
``on_change`` counts the changes the actions report and reloads both views.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from tests.integration import conftest as integration
from tui_csr.core.models import Request
from tui_csr.service import CsrService
from tui_csr.ui.dialogs.actions import open_actions
from tui_csr.ui.dialogs.error import ErrorReported, ReportsWorkerErrors, error_dialog_for
from tui_csr.ui.navigation import RequestNavigation
from tui_csr.ui.text import LiteralNotifications
from tui_csr.ui.widgets.certificates import CertificatesView, Clock
from tui_csr.ui.widgets.groups import GroupsView

#: The fixtures the lifecycle tests use (a data folder holding group "Web", a logged-in service
#: on the session's SoftHSM token); test modules bind them to module names to use them.
data_dir = integration.data_dir
service = integration.service
GROUP = integration.GROUP


class LifecycleHarness(LiteralNotifications, RequestNavigation, ReportsWorkerErrors, App[None]):
    """Certificates and Groups tabs over ``service``; pushes ``push()`` on mount if given."""

    TITLE = "tui-csr lifecycle harness"

    def __init__(self, service: CsrService, *, push: Callable[[], Screen] | None = None,
                 save_directory: Path | None = None, tab: str = "certificates-tab",
                 clock: Clock | None = None) -> None:
        super().__init__()
        self.service = service
        self.changes = 0
        self.lost_key_ids: set[str] = set()
        self.save_directory = save_directory
        self._push = push
        self._tab = tab
        self._clock = clock

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="tabs", initial=self._tab):
            yield TabPane("Certificates", CertificatesView(
                self.service, id="certificates", save_directory=self.save_directory,
                clock=self._clock),
                id="certificates-tab")
            yield TabPane("Groups", GroupsView(self.service, id="groups"), id="groups-tab")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        if self._push is not None:
            self.push_screen(self._push())

    @property
    def certificates(self) -> CertificatesView:
        """The Certificates view."""
        return self.query_one(CertificatesView)

    @property
    def groups(self) -> GroupsView:
        """The Groups view."""
        return self.query_one(GroupsView)

    def reload(self) -> None:
        """Reload both views."""
        self.certificates.reload()
        self.groups.reload()

    def on_change(self) -> None:
        """What the lead wires as ``on_change``: count, then reload the tables."""
        self.changes += 1
        self.reload()

    def open_actions(self, request: Request) -> None:
        """The main screen's entry point: the Actions menu for ``request``."""
        open_actions(self, self.service, request, self.on_change,
                     save_directory=self.save_directory)

    @on(ErrorReported)
    def _error_reported(self, event: ErrorReported) -> None:
        event.stop()
        self.push_screen(error_dialog_for(event.error, event.title))


async def settle(pilot: Pilot) -> None:
    """Let workers finish and the messages and callbacks they caused be handled."""
    app = pilot.app
    for _ in range(6):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            break
    # A blinking text cursor makes a screenshot depend on the moment it is taken: keep it on.
    from textual.widgets import Input, TextArea

    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False
    await pilot.pause()


async def type_into(pilot: Pilot, selector: str, text: str) -> None:
    """Focus the input ``selector`` on the active screen, clear it and type ``text``."""
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()
