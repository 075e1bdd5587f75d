"""Save a CSR or a certificate to a file (PEM, DER, chain), asking before overwriting anything."""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RadioSet, Static

from tui_csr.core.csr import from_pem_or_der
from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.fileio import (
    path_problem,  # noqa: F401 - also imported from here
    write_atomic,  # noqa: F401 - also imported from here
)
from tui_csr.ui.clipboard import copy_pem
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.text import shown
from tui_csr.ui.widgets.toggles import StateRadioButton

#: File name extension per format.
EXTENSIONS = {"pem": ".csr", "der": ".der"}
# Letters and digits of any script stay ("Müller", not "M_ller"); the rest becomes "_".
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class SaveFormat:
    """One choice of the save dialog: its radio id and text, the file extension, the bytes."""

    id: str
    text: str
    extension: str
    data: Callable[[], bytes]


def csr_formats(request: Request) -> list[SaveFormat]:
    """PEM and DER of ``request``'s CSR."""
    pem = request.csr_pem
    return [SaveFormat("pem", "PEM (text)", ".csr", lambda: pem.encode("ascii")),
            SaveFormat("der", "DER (binary)", ".der", lambda: from_pem_or_der(pem))]


def safe_file_name(label: str, extension: str) -> str:
    """A file name made from a key label: ``www.example.com-2026-01-02.csr``.

    Letters and digits (of any script), dot, dash and underscore stay; anything else (spaces,
    slashes, control characters) becomes ``_``; no leading dot.
    """
    stem = _UNSAFE.sub("_", unicodedata.normalize("NFC", label)).strip("._") or "request"
    return stem[:120] + extension


class SaveDialog(Dialog[Path | None]):
    """Ask where (and in which of ``formats``: PEM or DER of the CSR by default) to save
    ``request``'s CSR or certificate; dismisses with the full path written, or None when
    cancelled. The dialog writes the file itself."""

    DEFAULT_CSS = """
    SaveDialog > Vertical { width: 72; }
    SaveDialog #folder { color: $text-muted; }
    SaveDialog RadioSet { layout: horizontal; width: auto; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without saving", id="save.cancel"),
        Binding("ctrl+s", "save", "Save", tooltip="Write the file", id="save.save"),
    ]

    def __init__(self, request: Request, *, directory: Path | None = None,
                 formats: list[SaveFormat] | None = None, what: str = "CSR",
                 stem: str | None = None) -> None:
        super().__init__()
        self.request = request
        self.directory = directory if directory is not None else Path.cwd()
        self.formats = formats or csr_formats(request)
        self.what = what
        self.stem = stem if stem is not None else request.label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(f"Save the {self.what} of '{self.request.label}'"), id="title",
                        markup=False)
            yield Label("File (a relative name is saved in the folder below):")
            yield Input(safe_file_name(self.stem, self.formats[0].extension), id="path",
                        select_on_focus=False)
            yield Static(shown(f"Folder: {self.directory}"), id="folder", markup=False)
            yield Static("", id="problem", classes="-empty", markup=False)
            with RadioSet(id="format"):
                for index, choice in enumerate(self.formats):
                    yield StateRadioButton(choice.text, value=index == 0, id=choice.id)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @property
    def format(self) -> str:
        """The id of the chosen format (``pem`` or ``der`` for a CSR)."""
        return self.chosen.id

    @property
    def chosen(self) -> SaveFormat:
        """The chosen format."""
        pressed = self.query_one("#format", RadioSet).pressed_button
        return next((f for f in self.formats if pressed is not None and f.id == pressed.id),
                    self.formats[0])

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
        if ext.lower() in {f.extension for f in self.formats} | {".pem", ".csr", ".der", ""}:
            field.value = root + self.chosen.extension

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
            data = self.chosen.data()
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


def certificate_formats(request: Request) -> list[SaveFormat]:
    """PEM and DER of ``request``'s certificate, and the chain imported with it as PEM."""
    from tui_csr.core.certificate_text import certificate_files

    files = certificate_files(request.certificate_pem or "")
    formats = [SaveFormat("cert-pem", "PEM", ".crt", lambda: files.pem.encode("ascii")),
               SaveFormat("cert-der", "DER", ".der", lambda: files.der)]
    if files.chain_length:
        formats.append(SaveFormat("cert-chain", f"Chain as PEM (+{files.chain_length})",
                                  ".chain.pem", lambda: files.chain_pem.encode("ascii")))
    return formats


def copy_certificate(app: App, request: Request) -> None:
    """Copy the request's certificate PEM (OSC 52) and say what happened."""
    from tui_csr.core.certificate_text import certificate_files

    copy_pem(app, certificate_files(request.certificate_pem or "").pem)
    app.notify("The certificate was sent to the terminal's clipboard (OSC 52). If nothing "
               "arrives, your terminal ignores OSC 52: save it to a file instead.",
               title="Copied")


def save_certificate(app: App, request: Request, directory: Path | None = None) -> None:
    """Open :class:`SaveDialog` for the request's certificate (PEM, DER, chain)."""
    def saved(path: Path | None) -> None:
        if path is not None:
            app.notify(f"Saved {path}", title="Certificate saved")

    app.push_screen(SaveDialog(request, directory=directory, what="certificate",
                               formats=certificate_formats(request)), saved)


def resolve_path(text: str, directory: Path) -> Path | None:
    """The absolute path typed in a file field (``~`` expanded; relative names go into
    ``directory``), or None when the field is empty."""
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else directory / path))
