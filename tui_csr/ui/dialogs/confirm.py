"""A yes/no question, typed by its result."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown, shown_lines


class ConfirmDialog(Dialog[bool]):
    """Ask ``question``; dismisses with True (confirm) or False (cancel / escape)."""

    DEFAULT_CSS = """
    ConfirmDialog > Vertical { width: 64; border: thick $warning; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep going without doing it",
                id="confirm.cancel"),
        Binding("y", "confirm", "Yes", tooltip="Confirm", id="confirm.yes"),
        Binding("n", "cancel", "No", show=False, id="confirm.no"),
    ]

    def __init__(self, title: str, question: str, *, confirm_label: str = "Yes",
                 cancel_label: str = "No", danger: bool = False) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._confirm = confirm_label
        self._cancel = cancel_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), id="title", markup=False)
            yield Static(shown_lines(self._question), id="question", markup=False)
            with Horizontal(id="buttons"):
                yield Button(self._cancel, id="cancel")
                yield Button(self._confirm, id="confirm",
                             variant="error" if self._danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        """Answer yes."""
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Answer no."""
        self.dismiss(False)
