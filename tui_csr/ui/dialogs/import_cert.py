"""Import the CA's certificate for a request: from a file (PEM or DER) or pasted PEM.

The dialog reads the file off the event loop and hands the bytes to an injected ``attempt``
(the app binds it to ``service.import_certificate``), so a refusal (wrong key, not a certificate)
shows under the field it came from while the dialog stays open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static, TextArea

from tui_csr.core.models import Request
from tui_csr.errors import InputError, TuiCsrError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.dialogs.save import resolve_path

if TYPE_CHECKING:
    from tui_csr.services.certificates import ImportResult

#: Imports certificate bytes for the request; raises TuiCsrError to refuse them.
ImportAttempt = Callable[[bytes], Awaitable["ImportResult"]]

#: A certificate (even with a chain pasted along) is far smaller than this.
MAX_BYTES = 1024 * 1024


def read_certificate_file(path: Path) -> bytes:
    """The bytes of ``path``; InputError naming the file when it cannot be read."""
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder; give the certificate file.", field="path")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{path} is {size} bytes; a certificate is far smaller.",
                             field="path")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"File {path} does not exist.", field="path") from exc
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}.", field="path") from exc


class ImportCertDialog(ReportsWorkerErrors, Dialog["ImportResult | None"]):
    """Ask for ``request``'s certificate (a file path, or PEM pasted below) and import it
    with ``attempt``; dismisses with the :class:`ImportResult`, or None on escape."""

    DEFAULT_CSS = """
    ImportCertDialog > Vertical { width: 80; padding: 0 2; }
    ImportCertDialog #title { margin-bottom: 0; }
    ImportCertDialog #subject { color: $text-muted; }
    ImportCertDialog #folder { color: $text-muted; }
    ImportCertDialog #paste-label { margin-top: 1; }
    ImportCertDialog TextArea { height: 6; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without importing",
                id="import_cert.cancel"),
        Binding("ctrl+s", "import", "Import", tooltip="Import the certificate",
                id="import_cert.import"),
    ]

    error_title = "The certificate cannot be imported"

    def __init__(self, request: Request, attempt: ImportAttempt, *,
                 directory: Path | None = None) -> None:
        super().__init__()
        self.request = request
        self._attempt = attempt
        self.directory = directory if directory is not None else Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Import the certificate for '{self.request.label}'", id="title",
                        markup=False)
            yield Static(self.request.subject, id="subject", markup=False)
            yield Label("Certificate file (PEM or DER):")
            yield Input(placeholder="e.g. www.example.com.crt", id="path")
            yield Static(f"Folder: {self.directory}", id="folder", markup=False)
            yield Static("", id="path-problem", classes="problem -empty", markup=False)
            yield Label("…or paste the PEM here (ctrl+s imports):", id="paste-label")
            yield TextArea("", id="pem", soft_wrap=False, show_line_numbers=False)
            yield Static("", id="pem-problem", classes="problem -empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Import", id="import", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def show_problem(self, field: str, text: str | None) -> None:
        """Show ``text`` under ``path`` or ``pem`` (None clears it)."""
        problem = self.query_one(f"#{field}-problem", Static)
        problem.update(text or "")
        problem.set_class(not text, "-empty")

    def target(self) -> Path | None:
        """The file in the path field (relative names are in ``directory``), if any."""
        return resolve_path(self.query_one("#path", Input).value, self.directory)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#import")
    def action_import(self) -> None:
        """Check that exactly one source is given, then read and import it."""
        self.show_problem("path", None)
        self.show_problem("pem", None)
        path = self.target()
        pasted = self.query_one("#pem", TextArea).text.strip()
        if path is not None and pasted:
            self.show_problem("path", "Give a file or paste the PEM, not both.")
            return
        if path is None and not pasted:
            self.show_problem("path", "Give the certificate file, or paste its PEM below.")
            return
        self._import(path, pasted)

    @work(exclusive=True, exit_on_error=False, group="import-cert")
    async def _import(self, path: Path | None, pasted: str) -> None:
        field = "pem" if path is None else "path"
        button = self.query_one("#import", Button)
        button.disabled = True
        try:
            data = (pasted.encode("utf-8") if path is None
                    else await asyncio.to_thread(read_certificate_file, path))
            result = await self._attempt(data)
        except TuiCsrError as exc:
            self.show_problem(field, str(exc))
            return
        finally:
            button.disabled = False
        self.dismiss(result)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without importing."""
        self.dismiss(None)
