"""The PIN again, for a key that needs a login before every signature (CKA_ALWAYS_AUTHENTICATE).

:func:`context_pin_source` makes the callable the app sets as ``service.pin_source``: the
generation awaits it (inside the wizard's Apply worker) when the token refuses to sign without
a context-specific login. It pushes :class:`ContextPinDialog` and awaits a future that the
dialog resolves: the event loop is never blocked, and it works from any worker or task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_csr.errors import InputError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown

if TYPE_CHECKING:
    from textual.app import App

    from tui_csr.service import CsrService

#: Receives the PIN typed (None: the user cancelled). Called once.
PinDelivery = Callable[[str | None], None]

#: The sentence of the InputError a cancelled dialog makes the generation fail with.
CANCELLED = ("The PIN for the signature was not given; the new key pair was destroyed and "
             "nothing was stored.")


class ContextPinDialog(Dialog[bool]):
    """Masked PIN field for the context-specific login on token ``token_label``.

    The PIN goes only to ``deliver`` (never a screen result, a message or a log line) and the
    field is cleared at once. Dismisses True when a PIN was handed over, False on cancel.
    """

    DEFAULT_CSS = """
    ContextPinDialog > Vertical { width: 66; border: thick $warning; }
    ContextPinDialog #question, ContextPinDialog #hint { margin-bottom: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Do not sign: the new key is destroyed",
                id="context_pin.cancel"),
    ]

    def __init__(self, token_label: str, deliver: PinDelivery, *,
                 hint: str | None = None) -> None:
        super().__init__()
        self.token_label = token_label
        self._deliver: PinDelivery | None = deliver
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("PIN needed to sign", id="title", markup=False)
            yield Static(f"Key on token '{shown(self.token_label)}' needs the PIN again before "
                         "it signs (it was made with \"always authenticate\").",
                         id="question", markup=False)
            if self._hint:
                yield Static(shown(self._hint), id="hint", markup=False)
            yield Label("User PIN (not shown, never stored):", id="prompt", markup=False)
            yield Input(password=True, id="pin", placeholder="PIN")
            yield Static("", id="problem", classes="-empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Sign", id="sign", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    @on(Button.Pressed, "#sign")
    def submit(self) -> None:
        """Hand the PIN in the field over."""
        field = self.query_one("#pin", Input)
        pin = field.value
        field.value = ""
        if not pin:
            problem = self.query_one("#problem", Static)
            problem.update("Type the user PIN of the token, then press Enter.")
            problem.remove_class("-empty")
            return
        self._hand_over(pin)
        del pin
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Do not sign."""
        self._hand_over(None)
        self.dismiss(False)

    def _hand_over(self, pin: str | None) -> None:
        deliver, self._deliver = self._deliver, None
        if deliver is not None:
            deliver(pin)


def context_pin_source(app: App, service: CsrService) -> Callable[[str], Awaitable[str]]:
    """The ``service.pin_source`` of the TUI: shows :class:`ContextPinDialog` over whatever
    screen is on top and returns the PIN typed; raises InputError (field ``pin``) on cancel,
    so the generation fails cleanly and destroys the new key pair."""

    async def ask(token_label: str) -> str:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str | None] = loop.create_future()

        def deliver(pin: str | None) -> None:
            if not answer.done():
                answer.set_result(pin)

        info = service.token_info
        dialog = ContextPinDialog(token_label, deliver,
                                  hint=info.pin_hint if info is not None else None)
        # call_later: push from the app's own message loop, whichever task asks.
        app.call_later(app.push_screen, dialog)
        try:
            pin = await answer
        except asyncio.CancelledError:
            if app.screen is dialog:
                app.pop_screen()
            raise
        if pin is None:
            raise InputError(CANCELLED, field="pin")
        return pin

    return ask
