"""Save a CSR to a file (PEM or DER), asking before overwriting anything."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from tui_csr.core.csr import from_pem_or_der
from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.fileio import (
    path_problem,  # noqa: F401 - also imported from here
    write_atomic,  # noqa: F401 - also imported from here
)
from tui_csr.ui.clipboard import copy_pem
from tui_csr.ui.dialogs.confirm import ConfirmDialog

#: File name extension per format.
EXTENSIONS = {"pem": ".csr", "der": ".der"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(label: str, extension: str) -> str:
    """A file name made from a key label: ``www.example.com-2026-01-02.csr``.

    Anything but letters, digits, dot, dash and underscore becomes ``_``; no leading dot.
    """
    stem = _UNSAFE.sub("_", label).strip("._") or "request"
    return stem[:120] + extension


class SaveDialog(ModalScreen[Path | None]):
    """Ask where (and as PEM or DER) to save ``request``'s CSR; dismisses with the full path
    written, or None when cancelled. The dialog writes the file itself."""

    DEFAULT_CSS = """
    SaveDialog { align: center middle; }
    SaveDialog > Vertical {
        width: 72; max-width: 95%; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    SaveDialog #title { text-style: bold; margin-bottom: 1; }
    SaveDialog #folder { color: $text-muted; }
    SaveDialog #problem { color: $text-error; height: auto; }
    SaveDialog #problem.-empty { display: none; }
    SaveDialog RadioSet { layout: horizontal; width: auto; margin-top: 1; }
    SaveDialog #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    SaveDialog Button { margin-left: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without saving", id="save.cancel"),
        Binding("ctrl+s", "save", "Save", tooltip="Write the file", id="save.save"),
    ]

    def __init__(self, request: Request, *, directory: Path | None = None) -> None:
        super().__init__()
        self.request = request
        self.directory = directory if directory is not None else Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Save the CSR of '{self.request.label}'", id="title", markup=False)
            yield Label("File (a relative name is saved in the folder below):")
            yield Input(safe_file_name(self.request.label, EXTENSIONS["pem"]), id="path",
                        select_on_focus=False)
            yield Static(f"Folder: {self.directory}", id="folder", markup=False)
            yield Static("", id="problem", classes="-empty", markup=False)
            with RadioSet(id="format"):
                yield RadioButton("PEM (text)", value=True, id="pem")
                yield RadioButton("DER (binary)", id="der")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @property
    def format(self) -> str:
        """``pem`` or ``der``, as chosen."""
        pressed = self.query_one("#format", RadioSet).pressed_button
        return "der" if pressed is not None and pressed.id == "der" else "pem"

    def show_problem(self, text: str | None) -> None:
        """Show ``text`` under the file field (None clears it)."""
        problem = self.query_one("#problem", Static)
        problem.update(text or "")
        problem.set_class(not text, "-empty")

    @on(RadioSet.Changed, "#format")
    def _format_changed(self) -> None:
        # Follow the format with the extension, unless the user typed a name of their own.
        field = self.query_one("#path", Input)
        root, ext = os.path.splitext(field.value)
        if ext.lower() in {".csr", ".der", ".pem", ""}:
            field.value = root + EXTENSIONS[self.format]

    def target(self) -> Path | None:
        """The absolute path in the field (relative names go into ``directory``)."""
        return resolve_path(self.query_one("#path", Input).value, self.directory)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        """Check the path, confirm an overwrite, then write."""
        path = self.target()
        if path is None:
            self.show_problem("Give a file name.")
            return
        problem = path_problem(path)
        if problem:
            self.show_problem(problem)
            return
        self.show_problem(None)
        if path.exists():
            def answered(overwrite: bool | None) -> None:
                if overwrite:
                    self._write(path)

            self.app.push_screen(
                ConfirmDialog("Overwrite the file?", f"{path} already exists. Replace it?",
                              confirm_label="Overwrite", cancel_label="Keep it", danger=True),
                answered)
            return
        self._write(path)

    @work(exclusive=True, exit_on_error=False, group="save")
    async def _write(self, path: Path) -> None:
        try:
            pem = self.request.csr_pem
            data = from_pem_or_der(pem) if self.format == "der" else pem.encode("ascii")
            await asyncio.to_thread(write_atomic, path, data)
        except TuiCsrError as exc:
            self.show_problem(exc.message)
            return
        except OSError as exc:
            self.show_problem(f"{path} cannot be written: {exc.strerror or exc}.")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)


def copy_csr(app: App, request: Request, *, otherwise: str = "press s to save it to a file"
             ) -> None:
    """Copy the request's PEM (OSC 52, through tmux too; kept in ``app.clipboard``) and say
    what happened; ``otherwise`` tells the user what to do when the terminal ignores OSC 52."""
    copy_pem(app, request.csr_pem)
    app.notify("The CSR was sent to the terminal's clipboard (OSC 52). If nothing arrives, "
               f"your terminal ignores OSC 52: {otherwise}.", title="Copied")


def save_csr(app: App, request: Request, directory: Path | None = None) -> None:
    """Open :class:`SaveDialog` for the request and say where the file went."""
    def saved(path: Path | None) -> None:
        if path is not None:
            app.notify(f"Saved {path}", title="CSR saved")

    app.push_screen(SaveDialog(request, directory=directory), saved)


def resolve_path(text: str, directory: Path) -> Path | None:
    """The absolute path typed in a file field (``~`` expanded; relative names go into
    ``directory``), or None when the field is empty."""
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else directory / path))
