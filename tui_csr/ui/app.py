"""The Textual application: start-up (token, PIN, login), app-wide keys, errors and commands.

The app talks to the program only through :class:`~tui_csr.service.CsrService`. Every service
call is awaited in a ``@work`` worker; workers post messages and the handlers here update the
screens. A failure never shows a traceback: it becomes an :class:`ErrorDialog` (one sentence
plus the CKR code), or the :class:`FatalErrorScreen` when the token cannot be opened at all.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.screen import Screen

from tui_csr.errors import TokenError, TuiCsrError
from tui_csr.pin import pin_from_environment
from tui_csr.ui.dialogs.actions import ACTIONS, Action
from tui_csr.ui.dialogs.context_pin import context_pin_source
from tui_csr.ui.dialogs.error import (
    ErrorDialog,
    ErrorReported,
    ReportsWorkerErrors,
    error_dialog_for,
)
from tui_csr.ui.dialogs.login import LoginDialog
from tui_csr.ui.dialogs.token_picker import TokenChoice, TokenPickerDialog
from tui_csr.ui.keymap import apply_keymap
from tui_csr.ui.navigation import RequestNavigation
from tui_csr.ui.screens.error_screen import FatalErrorScreen
from tui_csr.ui.screens.help import HelpScreen
from tui_csr.ui.screens.main import MainScreen
from tui_csr.ui.text import LiteralNotifications, shown
from tui_csr.ui.widgets.certificates import Clock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from tui_csr.config import Settings
    from tui_csr.service import CsrService


class TuiCsrCommands(Provider):
    """Command-palette entries (ctrl+p): the main actions, the tabs, every action of the
    Actions menu (on the selected request) and the group actions."""

    #: (name, help, app action)
    ENTRIES = (
        ("Generate CSR", "Generate a key pair on the token and its CSR", "generate"),
        ("Refresh", "Read the lists again", "refresh"),
        ("Requests tab", "Show the pending requests (1)", "tab(0)"),
        ("Certificates tab", "Show the issued certificates (2)", "tab(1)"),
        ("Groups tab", "Show the certificate groups (3)", "tab(2)"),
        *((f"{text.rstrip('…')}", "On the request selected on the Requests or Certificates tab",
           f"request_action('{action.value}')") for action, text in ACTIONS),
        ("New group", "Create a certificate group (administrators)", "group('create')"),
        ("Edit group", "Edit the selected group's name, policy, description", "group('edit')"),
        ("Remove group", "Remove the selected (empty) group", "group('remove')"),
        ("Help", "Show the keys of the current screen", "help"),
        ("Quit", "Quit tui-csr", "quit"),
    )

    def _command(self, action: str) -> Callable[[], Awaitable[None]]:
        app = self.app

        async def run() -> None:
            await app.run_action(action)
        return run

    async def discover(self) -> Hits:
        """All entries, shown when the palette opens."""
        for name, help_text, action in self.ENTRIES:
            yield DiscoveryHit(name, self._command(action), help=help_text)

    async def search(self, query: str) -> Hits:
        """Entries whose name fuzzily matches ``query``."""
        matcher = self.matcher(query)
        for name, help_text, action in self.ENTRIES:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._command(action), help=help_text)


#: Seconds between two checks of the header's admin state.
IDENTITY_SECONDS = 5.0


class TuiCsrApp(LiteralNotifications, RequestNavigation, ReportsWorkerErrors, App[None]):
    """tui-csr's terminal UI over one :class:`CsrService`.

    ``pin`` (e.g. the demo PIN) is used once for the login and then dropped; without it the PIN
    comes from ``TUI_CSR_PIN`` / the PIN file, else from the :class:`LoginDialog`.
    """

    CSS_PATH = "app.tcss"
    TITLE = "tui-csr"
    COMMANDS = App.COMMANDS | {TuiCsrCommands}
    error_title = "Start-up failed"

    BINDINGS = [
        Binding("f1", "help", "Help", tooltip="Show the keys of this screen", id="app.help"),
        Binding("question_mark", "help", "Help", show=False, tooltip="Show the keys of this "
                "screen", id="app.help_question"),
        Binding("ctrl+q", "quit", "Quit", tooltip="Quit tui-csr", priority=True,
                id="app.quit"),
    ]

    class TokenOpened(Message):
        """The module is loaded and the token ``label`` found (not yet logged in)."""

        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    class NeedPin(Message):
        """No usable PIN was given: ask for one (``problem`` says why an earlier one failed)."""

        def __init__(self, problem: str | None) -> None:
            super().__init__()
            self.problem = problem

    class NeedToken(Message):
        """The module has several tokens and none is configured: let the user choose."""

        def __init__(self, module: str, tokens: list[TokenChoice]) -> None:
            super().__init__()
            self.module = module
            self.tokens = tokens

    class LoggedIn(Message):
        """The token session is open and logged in."""

    class StartFailed(Message):
        """The token cannot be opened: nothing works, show why and let the user quit."""

        def __init__(self, error: TuiCsrError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, service: CsrService, *, pin: str | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__()
        self.service = service
        self._pin = pin
        self._clock = clock
        #: Requests whose key the start-up scan found gone from the token.
        self.lost_key_ids: set[str] = set()
        #: The start-up failure the user quit on (run_app prints it after the UI is gone).
        self.fatal_error: TuiCsrError | None = None
        #: The main screen (made on mount, when the app is running).
        self.main_screen: MainScreen
        #: Lines the PKCS#11 library wrote to fd 2, waiting to be shown (see library_said).
        self._library_lines: list[str] = []
        self._library_lock = threading.Lock()
        self._notice_loop: asyncio.AbstractEventLoop | None = None

    # -- start-up ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._notice_loop = asyncio.get_running_loop()
        self._show_identity("opening token…")
        self.main_screen = MainScreen(self.service, clock=self._clock)
        apply_keymap(self, self.service.settings)
        self.push_screen(self.main_screen)
        self._start()
        # Whether the user administers can change under the app (a database back after an
        # outage, a role granted): the header asks again now and then, off the loop.
        self.set_interval(IDENTITY_SECONDS, self._lists_reloaded)

    def library_said(self, text: str) -> None:
        """Called on the fd-2 reader thread (ui/library_output.py) with a line the PKCS#11
        library wrote; shown as one notice per burst, literally."""
        with self._library_lock:
            first = not self._library_lines
            self._library_lines.append(text)
        loop = self._notice_loop
        if first and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._show_library_lines)

    def _show_library_lines(self) -> None:
        with self._library_lock:
            lines, self._library_lines = self._library_lines, []
        if lines:
            more = f" (and {len(lines) - 3} more lines)" if len(lines) > 3 else ""
            self.notify("The token's library wrote: " + " / ".join(lines[:3]) + more,
                        severity="warning", timeout=8)

    def _show_identity(self, token: str) -> None:
        """Header line: ``token demo · user alice · admin``."""
        self._identity_token = token
        role = "admin" if self.service.is_admin else "not admin"
        self.sub_title = shown(f"{token} · user {self.service.user} · {role}")

    _identity_token = ""

    @on(MainScreen.Reloaded)
    @work(exclusive=True, exit_on_error=False, group="identity")
    async def _lists_reloaded(self) -> None:
        if not self._identity_token:
            return
        """Ask the store again whether the user administers (off the loop: a PostgreSQL store
        may be reconnecting) and redraw the header with the answer."""
        admin = await asyncio.to_thread(lambda: self.service.is_admin)
        role = "admin" if admin else "not admin"
        self.sub_title = shown(f"{self._identity_token} · user {self.service.user} · {role}")
        self.main_screen.refresh_bindings()

    @work(exclusive=True, exit_on_error=False, group="startup")
    async def _start(self) -> None:
        settings = self.service.settings
        if self.service.token is None and not settings.token and not settings.token_serial:
            tokens = await self._module_tokens()
            if len(tokens) > 1:
                self.post_message(self.NeedToken(settings.module, tokens))
                return
        try:
            info = await self.service.open_token()
        except TuiCsrError as exc:
            self.post_message(self.StartFailed(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must still not print a traceback
            self.post_message(self.StartFailed(TokenError(
                f"Unexpected {type(exc).__name__} while opening the token: {exc}.")))
            return
        self.post_message(self.TokenOpened(info.label))
        pin, self._pin = self._pin, None
        problem: str | None = None
        if not info.login_required:
            problem = await self.attempt_login(None)
        elif info.protected_auth_path:  # a PIN pad: the login dialog says so and waits
            self.post_message(self.NeedPin(None))
            return
        else:
            if pin is None:
                try:
                    pin = await asyncio.to_thread(pin_from_environment,
                                                  self.service.settings.pin_file)
                except TuiCsrError as exc:
                    problem = exc.message
            if pin is None:
                self.post_message(self.NeedPin(problem))
                return
            problem = await self.attempt_login(pin)
            del pin
        self.post_message(self.NeedPin(problem) if problem else self.LoggedIn())

    async def _module_tokens(self) -> list[TokenChoice]:
        """The module's initialised tokens (no token selected, no login); [] when they cannot
        be listed (opening the token then says why, in one sentence)."""
        try:
            return list(await self.service.list_tokens())
        except TuiCsrError:
            return []

    @on(NeedToken)
    def _pick_token(self, event: NeedToken) -> None:
        def chosen(token: TokenChoice | None) -> None:
            if token is None:
                self.exit(return_code=0)
                return
            # For this run only: the config file is not changed.
            self.service.settings.token = token.label
            self.service.settings.token_serial = token.serial or None
            self._start()

        self.push_screen(TokenPickerDialog(event.module, event.tokens), chosen)

    async def attempt_login(self, pin: str | None) -> str | None:
        """Log in with ``pin``: None when it worked, else the sentence (with its CKR code) to
        show under the PIN field. The PIN is not kept."""
        try:
            await self.service.login(pin)
        except TuiCsrError as exc:
            return str(exc)
        return None

    @on(TokenOpened)
    def _token_opened(self, event: TokenOpened) -> None:
        self._show_identity(f"token {event.label}")

    @on(NeedPin)
    def _ask_pin(self, event: NeedPin) -> None:
        info = self.service.token_info
        label = info.label if info else "?"

        def done(logged_in: bool | None) -> None:
            if logged_in:
                self.post_message(self.LoggedIn())
            else:
                self.exit(return_code=0)

        self.push_screen(LoginDialog(label, self.attempt_login, problem=event.problem,
                                     hint=info.pin_hint if info else None,
                                     protected=bool(info and info.protected_auth_path)), done)

    @on(LoggedIn)
    def _logged_in(self) -> None:
        # Keys with CKA_ALWAYS_AUTHENTICATE: the PIN is asked again, in a dialog, at signing.
        self.service.pin_source = context_pin_source(self, self.service)
        if self.service.token_info:
            self._show_identity(f"token {self.service.token_info.label}")
        self.main_screen.token_ready()

    @on(StartFailed)
    def _start_failed(self, event: StartFailed) -> None:
        self.fatal_error = event.error
        self._show_identity("no token")
        self.switch_screen(FatalErrorScreen(event.error))

    # -- app-wide ----------------------------------------------------------------------------
    @on(ErrorReported)
    def _error_reported(self, event: ErrorReported) -> None:
        """The one place failures become dialogs."""
        event.stop()
        dialog = error_dialog_for(event.error, event.title)
        # Several views failing for one reason (e.g. a damaged store, read by every tab) show
        # it once instead of a stack of identical dialogs to close one by one.
        shown = [(s._message, s._code) for s in self.screen_stack if isinstance(s, ErrorDialog)]
        if (dialog._message, dialog._code) not in shown:
            self.push_screen(dialog)

    def action_help(self) -> None:
        """Show the keys of the screen that is active."""
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen.for_screen(self.screen))

    def action_generate(self) -> None:
        """Open the Generate-CSR wizard (from the main screen)."""
        if self.screen is not self.main_screen:
            self.notify("Go back to the list first (escape).", severity="warning")
            return
        self.main_screen.action_generate()

    def action_refresh(self) -> None:
        """Read every tab again."""
        if self.main_screen.ready:
            self.main_screen.reload_all()

    def _on_main(self) -> bool:
        if self.screen is not self.main_screen:
            self.notify("Go back to the list first (escape).", severity="warning")
            return False
        return True

    def action_tab(self, index: int) -> None:
        """Show tab ``index`` of the main screen."""
        if self._on_main():
            self.main_screen.action_tab(index)

    def action_request_action(self, value: str) -> None:
        """An Actions-menu action on the request selected on the main screen."""
        if self._on_main():
            self.main_screen.run_request_action(Action(value))

    def action_group(self, what: str) -> None:
        """A group action on the Groups tab."""
        if self._on_main():
            self.main_screen.action_tab(2)
            self.main_screen.action_groups(what)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, minus those :class:`TuiCsrCommands` offers itself."""
        for command in super().get_system_commands(screen):
            if command.title not in {"Quit", "Keys"}:
                yield command


def open_service(settings: Settings) -> CsrService:
    """The settings' service. A PostgreSQL store that cannot be reached now does not stop the
    UI: its lists say why they are empty, in one sentence, and `r` tries again."""
    from tui_csr.service import CsrService

    return CsrService.create(settings, unreachable_ok=True)


def run_app(settings: Settings, pin: str | None = None) -> int:
    """Run the UI; returns the process exit status.

    Problems with the token are shown inside the UI (with a quit key); the sentence is printed
    again on stderr after the terminal is restored, and its exit status is returned.
    """
    try:
        service = open_service(settings)
    except TuiCsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    from tui_csr.ui.library_output import library_output
    from tui_csr.ui.text import shown_lines

    app = TuiCsrApp(service, pin=pin)
    with library_output(app.library_said) as said:
        app.run()
    if said.lines:
        print("The PKCS#11 library wrote while the UI ran:", file=sys.stderr)
        for line in said.lines:
            print("  " + shown_lines(line), file=sys.stderr)
    if app.fatal_error is not None:
        print(f"error: {app.fatal_error}", file=sys.stderr)
        return app.fatal_error.exit_code
    return app.return_code or 0
