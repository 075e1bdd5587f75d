"""View CSR: what a request's CSR says, decoded and its signature verified again, plus the PEM.

The record's own facts (label, token, groups, owner, created) show at once; the decoded CSR
(key, signature algorithm, fingerprints, the signature check) arrives from a worker that calls
``service.view_request``. ``c`` copies the PEM, ``s`` saves it, ``a`` opens the Actions menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static, TextArea

from tui_csr.core.models import Request, Status
from tui_csr.ui.dialogs.actions import OnChange, RequestDeleted, open_actions
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.dialogs.save import copy_csr, save_csr
from tui_csr.ui.text import shown, shown_lines
from tui_csr.ui.wizard.review_step import profiles_text

if TYPE_CHECKING:
    from tui_csr.core.csr import CsrSummary
    from tui_csr.service import CsrService
    from tui_csr.services.certificates import CertSummary

PENDING = "…"

#: What the title adds for a request's status.
_TITLE_MARK = {Status.ISSUED: " (issued)", Status.RETIRED: " (retired)"}

#: (fact id, caption) in display order.
FACTS: tuple[tuple[str, str], ...] = (
    ("subject", "Subject"), ("sans", "SANs"), ("extensions", "Extensions"),
    ("profiles", "Profile"), ("key", "Key"), ("algorithm", "Signature alg."),
    ("signature", "Signature"), ("csr_sha256", "SHA-256 (CSR)"),
    ("spki_sha256", "SHA-256 (key)"), ("uri", "PKCS#11 URI"), ("token", "Token"),
    ("groups", "Groups"), ("owner", "Owner"), ("created", "Created"), ("status", "Status"),
)


@dataclass(frozen=True)
class Decoded:
    """What the worker found: the CSR decoded, and the certificate once one is imported."""

    request: Request
    csr: CsrSummary
    certificate: CertSummary | None


def local_time(request: Request) -> str:
    """When and by whom the request was made, in local time."""
    when = request.created.astimezone()
    return f"{when:%Y-%m-%d %H:%M} {when.tzname() or ''} by {request.created_by}".replace(
        "  ", " ")


def fingerprint_lines(fingerprint: str) -> str:
    """A colon-separated SHA-256 as two lines of 16 bytes, so it never wraps mid-byte."""
    parts = fingerprint.split(":")
    if len(parts) <= 16:
        return fingerprint
    return ":".join(parts[:16]) + ":\n" + ":".join(parts[16:])


def key_policy(request: Request) -> str:
    """Extra lines under the key: a key that needs the PIN before every signature
    (CKA_ALWAYS_AUTHENTICATE), and the attributes the token set against the template."""
    lines = []
    if (request.key_attributes or {}).get("ALWAYS_AUTHENTICATE"):
        lines.append("needs the PIN before every signature")
    forced = request.key_forced or {}
    if forced:
        flags = ", ".join(f"{name}={'true' if value else 'false'}"
                          for name, value in sorted(forced.items()))
        lines.append(f"set by the token: {flags}")
    return "".join(f"\n{line}" for line in lines)


def extensions_text(doc: dict | None) -> str:
    """The extensions the CSR requests besides the SAN (the record's
    ``RequestedExtensions.to_doc()``), one per line with its critical flag; ``none``."""
    from tui_csr.core.extensions import RequestedExtensions

    try:
        ext = RequestedExtensions.from_doc(doc)
    except Exception:  # a damaged record: say what it holds rather than fail the screen
        return f"unreadable: {doc!r}"
    lines = []
    if ext.key_usage:
        lines.append(f"keyUsage (critical): {', '.join(ext.key_usage)}")
    if ext.eku:
        lines.append(f"extendedKeyUsage: {', '.join(ext.eku)}")
    if ext.ca is not None:
        bc = "CA:TRUE" if ext.ca else "CA:FALSE"
        if ext.ca and ext.path_len is not None:
            bc += f", pathlen:{ext.path_len}"
        lines.append(f"basicConstraints (critical): {bc}")
    if ext.ski:
        lines.append("subjectKeyIdentifier")
    return "\n".join(lines) or "none"


def fact_values(request: Request, decoded: Decoded | None) -> dict[str, str]:
    """Every fact of :data:`FACTS` as shown (CSR facts :data:`PENDING` until decoded)."""
    csr = decoded.csr if decoded else None
    sans = ", ".join(f"{kind}:{value}" for kind, value in (csr.sans if csr else request.sans))
    token = request.token_label or "?"
    if request.token_serial:
        token += f" (serial {request.token_serial})"
    status = request.status.value
    if decoded and decoded.certificate is not None:
        cert = decoded.certificate
        status += (f": serial {cert.serial} from {cert.issuer}, valid "
                   f"{cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}")
    if csr is None:
        signature = PENDING
    else:
        signature = "valid" if csr.signature_valid else "INVALID"
        signature += " (verified again just now)"
    return {
        "subject": csr.subject if csr else request.subject,
        "sans": sans or "none",
        "extensions": extensions_text(request.extensions),
        "profiles": profiles_text(request.profiles),
        "key": (csr.key if csr else PENDING) + key_policy(request),
        "algorithm": csr.signature if csr else PENDING,
        "signature": signature,
        "csr_sha256": fingerprint_lines(csr.csr_sha256) if csr else PENDING,
        "spki_sha256": fingerprint_lines(csr.spki_sha256) if csr else PENDING,
        "uri": request.pkcs11_uri,
        "token": token,
        "groups": ", ".join(request.groups) or "none",
        "owner": request.owner or "none",
        "created": local_time(request),
        "status": status,
    }


class ViewCsrScreen(ReportsWorkerErrors, Screen[None]):
    """The decoded view of one request's CSR, with the PEM in a read-only, selectable area."""

    DEFAULT_CSS = """
    ViewCsrScreen #facts { height: auto; max-height: 60%; padding: 0 1; }
    ViewCsrScreen #title { text-style: bold; }
    ViewCsrScreen .row { height: auto; }
    ViewCsrScreen .caption { width: 16; color: $text-muted; }
    ViewCsrScreen .value { width: 1fr; }
    ViewCsrScreen .-valid { color: $text-success; text-style: bold; }
    ViewCsrScreen .-invalid { color: $text-error; text-style: bold; }
    ViewCsrScreen TextArea { height: 1fr; min-height: 4; margin: 0 1; }
    """

    HELP_TITLE = "View CSR"

    BINDINGS = [
        Binding("c", "copy", "Copy PEM", tooltip="Copy the CSR to the terminal's clipboard",
                id="view_csr.copy"),
        Binding("s", "save", "Save…", tooltip="Write the CSR to a PEM or DER file",
                id="view_csr.save"),
        Binding("a", "actions", "Actions", tooltip="Open the request's Actions menu",
                id="view_csr.actions"),
        # Shown only for a request with an imported attestation (see check_action).
        Binding("t", "attestation", "Attestation", tooltip="Show the imported key "
                "attestation's facts and checks", id="view_csr.attestation"),
        Binding("escape", "back", "Back", tooltip="Back to the list", id="view_csr.back"),
        Binding("q", "back", "Back", show=False, tooltip="Back to the list",
                id="view_csr.q"),
    ]

    error_title = "The CSR cannot be shown"

    class Loaded(Message):
        """The CSR was decoded and its signature checked."""

        def __init__(self, decoded: Decoded) -> None:
            super().__init__()
            self.decoded = decoded

    def __init__(self, service: CsrService, request: Request, *,
                 on_change: OnChange | None = None, save_directory: Path | None = None) -> None:
        super().__init__()
        self.service = service
        self.request = request
        self.decoded: Decoded | None = None
        self._on_change = on_change
        self._save_directory = save_directory
        self._gone = False

    def compose(self) -> ComposeResult:
        values = fact_values(self.request, None)
        yield Header()
        with VerticalScroll(id="facts"):
            yield Label(shown(self.request.label), id="title", markup=False)
            for key, caption in FACTS:
                with Horizontal(classes="row"):
                    yield Static(caption, classes="caption", markup=False)
                    yield Static(shown_lines(values[key]), id=f"fact-{key}", classes="value", markup=False)
        yield TextArea(self.request.csr_pem, read_only=True, show_cursor=False,
                       soft_wrap=False, id="pem")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Decode the CSR again (in a worker)."""
        self._load()

    @work(exclusive=True, exit_on_error=False, group="view-csr")
    async def _load(self) -> None:
        from tui_csr.services.certificates import parse_certificate, summarize_certificate

        view = await self.service.view_request(self.request.id)
        pem = view.request.certificate_pem
        cert = summarize_certificate(parse_certificate(pem)) if pem else None
        self.post_message(self.Loaded(Decoded(view.request, view.csr, cert)))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.decoded = event.decoded
        self.request = event.decoded.request
        self.show()

    def show(self) -> None:
        """Put the latest facts on screen."""
        for key, value in fact_values(self.request, self.decoded).items():
            self.query_one(f"#fact-{key}", Static).update(shown_lines(value))
        signature = self.query_one("#fact-signature", Static)
        valid = self.decoded.csr.signature_valid if self.decoded else None
        signature.set_class(valid is True, "-valid")
        signature.set_class(valid is False, "-invalid")
        self.query_one("#title", Label).update(
            shown(self.request.label) + _TITLE_MARK.get(self.request.status, ""))
        area = self.query_one("#pem", TextArea)
        if area.text != self.request.csr_pem:
            area.load_text(self.request.csr_pem)

    # -- keys ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide "Attestation" unless the request has an imported one."""
        if action == "attestation":
            return bool(self.request.attestation)
        return True

    def action_attestation(self) -> None:
        """Open the imported attestation's facts (tui_csr/ui/dialogs/attestation.py)."""
        from tui_csr.ui.dialogs.attestation import AttestationFactsDialog

        if self.request.attestation:
            self.app.push_screen(AttestationFactsDialog(self.request))

    def action_copy(self) -> None:
        """Copy the PEM with OSC 52 (also through tmux)."""
        copy_csr(self.app, self.request)

    def action_save(self) -> None:
        """Ask where to save the CSR (PEM or DER), then say where it went."""
        save_csr(self.app, self.request, self._save_directory)

    @property
    def shows_request(self) -> tuple[str, str]:
        """``(request id, "csr")``: what this screen shows."""
        return (self.request.id, "csr")

    @on(RequestDeleted)
    def _deleted(self, event: RequestDeleted) -> None:
        # The decoded view of a request that no longer exists has nothing left to show. Only
        # this screen is closed: dismiss() pops whatever is on top, so wait until it is us.
        if event.request_id == self.request.id:
            self._gone = True
            if self.app.screen is self:  # not is_current: true under a modal too
                self.dismiss(None)

    def on_screen_resume(self) -> None:
        """Back on top after the request was deleted meanwhile: close."""
        if self._gone:
            self.dismiss(None)

    def action_actions(self) -> None:
        """Open the Actions menu for this request."""
        open_actions(self, self.service, self.request, self._changed,
                     save_directory=self._save_directory)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
        if self in self.app.screen_stack and not self._gone:  # not after a deletion
            self.reload()

    def action_back(self) -> None:
        """Back to where we came from."""
        self.dismiss(None)
