"""An error the user can act on: a title, one sentence, and the raw CKR code for the expert."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_csr.errors import TuiCsrError


class ErrorDialog(ModalScreen[None]):
    """Show ``message`` (and ``code`` dimmed, on its own line); enter or escape closes it."""

    DEFAULT_CSS = """
    ErrorDialog { align: center middle; }
    ErrorDialog > Vertical {
        width: 70; max-width: 95%; height: auto; padding: 1 2;
        border: thick $error; background: $surface;
    }
    ErrorDialog #title { text-style: bold; color: $text-error; margin-bottom: 1; }
    ErrorDialog #code { color: $text-muted; margin-top: 1; }
    ErrorDialog #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close this message", id="error.close"),
        Binding("enter", "close", "Close", show=False, id="error.enter"),
    ]

    def __init__(self, title: str, message: str, code: str | None = None) -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._code = code

    @classmethod
    def from_error(cls, error: TuiCsrError, title: str = "Something went wrong") -> ErrorDialog:
        """The dialog for a :class:`TuiCsrError` (its message and CKR code)."""
        return cls(title, error.message, error.code)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="title")
            yield Static(self._message, id="message", markup=False)
            if self._code:
                yield Static(self._code, id="code", markup=False)
            with Horizontal(id="buttons"):
                yield Button("OK", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    @on(Button.Pressed, "#ok")
    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
