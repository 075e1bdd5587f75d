"""Ask for the token's user PIN and log in, keeping the dialog open after a wrong PIN."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown

#: Tries a PIN: returns None when the login worked, else the sentence to show under the field.
#: None is the login on a protected authentication path (the PIN is typed on the device).
LoginAttempt = Callable[[str | None], Awaitable[str | None]]


class LoginDialog(Dialog[bool]):
    """Masked PIN field for token ``token_label``; dismisses True once logged in.

    The dialog hands the PIN only to ``attempt`` (which the app binds to ``service.login``) and
    clears the field after every try, so the PIN never becomes a screen result, a message or a
    log line. A wrong PIN shows the token's sentence under the field and keeps the dialog open.
    Escape dismisses False: the app then quits, since nothing works without a login.

    ``hint`` (the token profile's PIN format, e.g. YubiHSM 2's ``0001password``) shows under
    the prompt. With ``protected`` (CKF_PROTECTED_AUTHENTICATION_PATH, a PIN pad) there is no
    field: the dialog says to enter the PIN on the device and logs in without one at once;
    "Log in" tries again after a failure.
    """

    DEFAULT_CSS = """
    LoginDialog > Vertical { width: 64; }
    """

    BINDINGS = [
        Binding("escape", "give_up", "Quit", tooltip="Quit tui-csr without logging in",
                id="login.quit"),
    ]

    def __init__(self, token_label: str, attempt: LoginAttempt, *,
                 problem: str | None = None, hint: str | None = None,
                 protected: bool = False) -> None:
        super().__init__()
        self.token_label = token_label
        self._attempt = attempt
        self._first_problem = problem
        self._hint = hint
        self.protected = protected

    @property
    def _prompt(self) -> str:
        if self.protected:
            return "Enter the PIN on the device (its PIN pad), then wait here."
        return "User PIN (not shown, never stored):"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Log in to token '{shown(self.token_label)}'", id="title",
                        markup=False)
            yield Label(self._prompt, id="prompt", markup=False)
            if self._hint and not self.protected:
                yield Static(shown(self._hint), id="hint", markup=False)
            yield Input(password=True, id="pin", placeholder="PIN",
                        disabled=self.protected)
            yield Static("", id="problem", classes="-empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Quit", id="quit")
                yield Button("Log in", id="login", variant="primary")

    def on_mount(self) -> None:
        if self._first_problem:
            self.show_problem(self._first_problem)
        if self.protected:
            self.query_one("#pin", Input).display = False
            self.query_one("#login", Button).focus()
            if not self._first_problem:
                self._try(None)
            return
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
        if self.protected:
            self._try(None)
            return
        field = self.query_one("#pin", Input)
        pin = field.value
        field.value = ""  # the PIN does not stay in the widget, whatever the outcome
        if not pin:
            self.show_problem("Type the user PIN of the token, then press Enter.")
            return
        self._try(pin)

    @work(exclusive=True, exit_on_error=False, group="login")
    async def _try(self, pin: str | None) -> None:
        field = self.query_one("#pin", Input)
        field.disabled = True
        self.show_problem(None)
        if not self.protected:
            self.query_one("#prompt", Label).update(
                f"Logging in to token '{shown(self.token_label)}'…")
        try:
            problem = await self._attempt(pin)
        finally:
            del pin
            field.disabled = self.protected
            self.query_one("#prompt", Label).update(self._prompt)
        if problem is None:
            self.dismiss(True)
            return
        self.show_problem(problem)
        (self.query_one("#login", Button) if self.protected else field).focus()

    @on(Button.Pressed, "#quit")
    def action_give_up(self) -> None:
        """Give up: the app quits."""
        self.dismiss(False)
