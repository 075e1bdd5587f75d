"""View certificate: an issued request's certificate decoded (like ``openssl x509 -text``),
its fingerprints and the chain imported with it; ``c`` copies the PEM, ``s`` saves PEM, DER or
the chain."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static, TextArea

from tui_csr.core.certificate_text import describe_certificate
from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.save import copy_certificate, save_certificate
from tui_csr.ui.text import shown


class ViewCertificateScreen(Screen[None]):
    """The decoded certificate of ``request`` in a read-only, selectable area."""

    DEFAULT_CSS = """
    ViewCertificateScreen #summary { height: auto; padding: 0 1; }
    ViewCertificateScreen #title { text-style: bold; }
    ViewCertificateScreen #subject { color: $text-muted; }
    ViewCertificateScreen TextArea { height: 1fr; margin: 0 1; }
    """

    HELP_TITLE = "View certificate"

    BINDINGS = [
        Binding("c", "copy", "Copy PEM", tooltip="Copy the certificate to the terminal's "
                "clipboard", id="view_certificate.copy"),
        Binding("s", "save", "Save…", tooltip="Write the certificate (PEM, DER) or its chain "
                "to a file", id="view_certificate.save"),
        Binding("escape", "back", "Back", tooltip="Back to the list",
                id="view_certificate.back"),
        Binding("q", "back", "Back", show=False, tooltip="Back to the list",
                id="view_certificate.q"),
    ]

    def __init__(self, request: Request, *, save_directory: Path | None = None) -> None:
        super().__init__()
        self.request = request
        self._save_directory = save_directory
        try:
            self.text = describe_certificate(request.certificate_pem or "")
        except TuiCsrError as exc:
            self.text = str(exc)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="summary"):
            yield Label(shown(f"Certificate of '{self.request.label}'"), id="title",
                        markup=False)
            yield Static(shown(self.request.subject), id="subject", markup=False)
        yield TextArea(self.text, read_only=True, show_cursor=False, soft_wrap=False,
                       id="certificate-text")
        yield Footer(compact=True)

    @property
    def shows_request(self) -> tuple[str, str]:
        """``(request id, "certificate")``: what this screen shows."""
        return (self.request.id, "certificate")

    def action_copy(self) -> None:
        """Copy the certificate's PEM with OSC 52."""
        copy_certificate(self.app, self.request)

    def action_save(self) -> None:
        """Ask where to save the certificate (PEM, DER or the chain)."""
        save_certificate(self.app, self.request, self._save_directory)

    def action_back(self) -> None:
        """Back to where we came from."""
        self.dismiss(None)
