"""An error the user can act on: a title, one sentence, and the raw CKR code for the expert."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Label, Static
from textual.worker import Worker, WorkerState

from tui_csr.errors import TuiCsrError, printable
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown, shown_lines


class ErrorDialog(Dialog[None]):
    """Show ``message`` (and ``code`` dimmed, on its own line); enter or escape closes it."""

    DEFAULT_CSS = """
    ErrorDialog > Vertical { border: thick $error; }
    ErrorDialog #title { color: $text-error; }
    ErrorDialog #code { color: $text-muted; margin-top: 1; }
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
        """The dialog for a :class:`TuiCsrError` (its message and CKR code); control characters
        in the message (from a label someone chose) are shown as escapes, never sent raw."""
        return cls(title, printable(error.message), error.code)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), id="title", markup=False)
            yield Static(shown_lines(self._message), id="message", markup=False)
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


class ErrorReported(Message):
    """A failure to show in an :class:`ErrorDialog`; bubbles up to the app, which shows it."""

    def __init__(self, error: BaseException, title: str = "Something went wrong") -> None:
        super().__init__()
        self.error = error
        self.title = title


def error_dialog_for(error: BaseException, title: str = "Something went wrong") -> ErrorDialog:
    """The dialog for any exception: a :class:`TuiCsrError` shows its sentence and CKR code;
    anything else (a bug) its type and text, never a traceback."""
    if isinstance(error, TuiCsrError):
        return ErrorDialog.from_error(error, title)
    text = printable(str(error).strip()) or "no details"
    return ErrorDialog(title, f"Unexpected {type(error).__name__}: {text}. Please report it; "
                       "run with TUI_CSR_DEBUG=1 to keep the details.")


class ReportsWorkerErrors:
    """Mixin for widgets and screens that run ``@work(exit_on_error=False)`` workers.

    ``Worker.StateChanged`` does not bubble, so each worker owner turns a failed worker into an
    :class:`ErrorReported` message, which does; the app's single handler then shows the dialog.
    Override :meth:`worker_failed` to also reset state (e.g. a loading indicator).
    """

    #: Title of the dialog for this owner's failures.
    error_title = "Something went wrong"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report a failed worker's exception."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.worker_failed(event.worker)
            self.post_message(ErrorReported(event.worker.error, self.error_title))  # type: ignore[attr-defined]

    def worker_failed(self, worker: Worker) -> None:
        """Hook called before a failure is reported."""
