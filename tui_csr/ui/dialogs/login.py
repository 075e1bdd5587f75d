"""Ask for the token's user PIN and log in, keeping the dialog open after a wrong PIN."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_csr.ui.dialogs.base import Dialog

#: Tries a PIN: returns None when the login worked, else the sentence to show under the field.
LoginAttempt = Callable[[str], Awaitable[str | None]]


class LoginDialog(Dialog[bool]):
    """Masked PIN field for token ``token_label``; dismisses True once logged in.

    The dialog hands the PIN only to ``attempt`` (which the app binds to ``service.login``) and
    clears the field after every try, so the PIN never becomes a screen result, a message or a
    log line. A wrong PIN shows the token's sentence under the field and keeps the dialog open.
    Escape dismisses False: the app then quits, since nothing works without a login.
    """

    DEFAULT_CSS = """
    LoginDialog > Vertical { width: 64; }
    """

    BINDINGS = [
        Binding("escape", "give_up", "Quit", tooltip="Quit tui-csr without logging in",
                id="login.quit"),
    ]

    def __init__(self, token_label: str, attempt: LoginAttempt, *,
                 problem: str | None = None) -> None:
        super().__init__()
        self.token_label = token_label
        self._attempt = attempt
        self._first_problem = problem

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Log in to token '{self.token_label}'", id="title", markup=False)
            yield Label("User PIN (not shown, never stored):", id="prompt", markup=False)
            yield Input(password=True, id="pin", placeholder="PIN")
            yield Static("", id="problem", classes="-empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Quit", id="quit")
                yield Button("Log in", id="login", variant="primary")

    def on_mount(self) -> None:
        if self._first_problem:
            self.show_problem(self._first_problem)
        self.query_one("#pin", Input).focus()

    def show_problem(self, text: str | None) -> None:
        """Show ``text`` under the PIN field (None clears it)."""
        problem = self.query_one("#problem", Static)
        problem.update(text or "")
        problem.set_class(not text, "-empty")

    @on(Input.Submitted, "#pin")
    @on(Button.Pressed, "#login")
    def submit(self) -> None:
        """Try the PIN in the field."""
        field = self.query_one("#pin", Input)
        pin = field.value
        field.value = ""  # the PIN does not stay in the widget, whatever the outcome
        if not pin:
            self.show_problem("Type the user PIN of the token, then press Enter.")
            return
        self._try(pin)

    @work(exclusive=True, exit_on_error=False, group="login")
    async def _try(self, pin: str) -> None:
        field = self.query_one("#pin", Input)
        field.disabled = True
        self.show_problem(None)
        self.query_one("#prompt", Label).update(f"Logging in to token '{self.token_label}'…")
        try:
            problem = await self._attempt(pin)
        finally:
            del pin
            field.disabled = False
            self.query_one("#prompt", Label).update("User PIN (not shown, never stored):")
        if problem is None:
            self.dismiss(True)
            return
        self.show_problem(problem)
        field.focus()

    @on(Button.Pressed, "#quit")
    def action_give_up(self) -> None:
        """Give up: the app quits."""
        self.dismiss(False)
