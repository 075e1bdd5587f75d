"""The screen for a start-up failure that leaves nothing to do but quit (module or token)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static

from tui_csr.errors import TuiCsrError, printable

#: What to check next, by the field the error names.
_HINTS = {
    "module": "Check --module, TUI_CSR_MODULE or 'module' in the config file.",
    "token": "Check --token, TUI_CSR_TOKEN or 'token' in the config file.",
    "config": "Fix the config file, or point TUI_CSR_CONFIG at another one.",
}


class FatalErrorScreen(Screen[None]):
    """Show why the program cannot go on (one sentence, the CKR code dimmed); ``q`` quits.

    The app exits with the error's exit status, and prints the sentence once more after the
    terminal is restored, so it stays in the scroll-back.
    """

    DEFAULT_CSS = """
    FatalErrorScreen { align: center middle; }
    FatalErrorScreen > Vertical {
        width: 76; max-width: 95%; height: auto; padding: 1 2;
        border: thick $error; background: $surface;
    }
    FatalErrorScreen #title { text-style: bold; color: $text-error; margin-bottom: 1; }
    FatalErrorScreen #code { color: $text-muted; }
    FatalErrorScreen #hint { margin-top: 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("q", "quit_app", "Quit", tooltip="Quit tui-csr", id="fatal.quit"),
        Binding("escape", "quit_app", "Quit", show=False, id="fatal.escape"),
    ]

    def __init__(self, error: TuiCsrError, title: str = "tui-csr cannot start") -> None:
        super().__init__()
        self.error = error
        self._title = title

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Label(self._title, id="title", markup=False)
            yield Static(printable(self.error.message), id="message", markup=False)
            if self.error.code:
                yield Static(self.error.code, id="code", markup=False)
            hint = _HINTS.get(self.error.field or "", "")
            yield Static(f"{hint} Press q to quit.".strip(), id="hint", markup=False)
        yield Footer(compact=True)

    def action_quit_app(self) -> None:
        """Quit with the error's exit status."""
        self.app.exit(return_code=self.error.exit_code)
