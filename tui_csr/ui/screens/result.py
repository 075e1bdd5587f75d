"""One request's CSR: what it is, the PEM to select or copy, and saving it to a file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static, TextArea

from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme, signature_name
from tui_csr.core.models import Request
from tui_csr.ui.dialogs.save import copy_csr, save_csr


def describe_key(request: Request) -> tuple[str, str]:
    """``("EC P-384", "SHA384withECDSA")`` for a request (raw names when unknown)."""
    return _describe(request.key_spec, request.hash, request.scheme)


@lru_cache(maxsize=64)
def _describe(key_spec: str, hash_name: str, scheme: str) -> tuple[str, str]:
    # Cached: a few combinations cover every row, and enum look-ups cost ~30 us each
    # (0.3 s over a 10,000-request table).
    spec = KEY_SPECS.get(key_spec)
    if spec is None:
        return key_spec, f"{hash_name} {scheme}"
    try:
        signature = signature_name(spec, HashAlg(hash_name), Scheme(scheme))
    except ValueError:
        signature = f"{hash_name} {scheme}"
    return spec.display, signature


class ResultScreen(Screen[None]):
    """Shows one :class:`Request`: label, subject, key facts and the CSR PEM.

    ``c`` copies the PEM to the terminal's clipboard (OSC 52), ``s`` saves it to a file,
    escape or ``q`` goes back. The PEM sits in a read-only TextArea, so it can also be selected.
    """

    DEFAULT_CSS = """
    ResultScreen #summary { height: auto; padding: 0 1; }
    ResultScreen #title { text-style: bold; }
    ResultScreen .fact { color: $text-muted; }
    ResultScreen TextArea { height: 1fr; margin: 0 1; }
    """

    HELP_TITLE = "CSR"

    BINDINGS = [
        Binding("c", "copy", "Copy PEM", tooltip="Copy the CSR to the terminal's clipboard",
                id="result.copy"),
        Binding("s", "save", "Save…", tooltip="Write the CSR to a PEM or DER file",
                id="result.save"),
        Binding("escape", "back", "Back", tooltip="Back to the list", id="result.back"),
        Binding("q", "back", "Back", show=False, id="result.q"),
    ]

    def __init__(self, request: Request, *, save_directory: Path | None = None) -> None:
        super().__init__()
        self.request = request
        self._save_directory = save_directory

    def compose(self) -> ComposeResult:
        r = self.request
        key, signature = describe_key(r)
        yield Header()
        with Vertical(id="summary"):
            yield Label(f"{r.label}: {r.subject}", id="title", markup=False)
            yield Static(f"{key}, {signature} · groups {', '.join(r.groups) or '-'} · "
                         f"owner {r.owner or '-'}", classes="fact", markup=False)
            yield Static(f"Key on token '{r.token_label}': {r.pkcs11_uri}", classes="fact",
                         markup=False)
        yield TextArea(r.csr_pem, read_only=True, show_cursor=False, soft_wrap=False,
                       id="pem")
        yield Footer(compact=True)

    def action_copy(self) -> None:
        """Copy the PEM with OSC 52 (also through tmux)."""
        copy_csr(self.app, self.request)

    def action_save(self) -> None:
        """Ask where to save the CSR, then say where it went."""
        save_csr(self.app, self.request, self._save_directory)

    def action_back(self) -> None:
        """Back to where we came from."""
        self.dismiss(None)
