"""The last step, Review and Apply: everything chosen, what Apply is doing, and why it failed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.message import Message
from textual.widgets import Input, Label, LoadingIndicator, Static

from tui_csr.core.extensions import RequestedExtensions
from tui_csr.errors import TuiCsrError
from tui_csr.service import GenerateParams, ValidatedRequest
from tui_csr.ui.text import shown
from tui_csr.ui.widgets.toggles import StateCheckbox
from tui_csr.ui.wizard.common import FieldError, FieldRow, WizardStep, WorkFailed

#: The summary's rows, in order; steps' :meth:`~WizardStep.summary` fill them by name.
SUMMARY_ROWS = ("Token", "Key", "Hash", "Padding", "Key label", "Subject DN", "Country", "SANs",
                "Groups", "Owner")
#: The rows of the requested extensions, as the profiles resolve them (see :func:`extension_rows`).
EXTENSION_ROWS = ("Profiles", "Key usage", "EKU", "Basic constr.", "SKI")
#: The fields of the requested extensions a user may change (within what the profiles allow).
EXTENSION_FIELDS = ("key_usage", "eku", "ca", "path_len")


def profiles_text(profiles: tuple[dict, ...] | list[dict] | None) -> str:
    """The profiles applied, e.g. ``tls-server v1 (group 'Web')``; ``none`` without any."""
    parts = []
    for doc in profiles or ():
        source = str(doc.get("source", ""))
        why = f"group '{source[6:]}'" if source.startswith("group:") else "chosen"
        parts.append(f"{doc.get('name', '?')} v{doc.get('version', '?')} ({why})")
    return ", ".join(parts) or "none"


def extension_rows(ext: RequestedExtensions) -> dict[str, str]:
    """The requested extensions by row of :data:`EXTENSION_ROWS` (critical flags named)."""
    if ext.ca is None:
        bc = "not requested"
    else:
        bc = "CA:TRUE" if ext.ca else "CA:FALSE"
        if ext.ca and ext.path_len is not None:
            bc += f", pathlen:{ext.path_len}"
        bc += " (critical)"
    return {
        "Key usage": (", ".join(ext.key_usage) + " (critical)") if ext.key_usage else "none",
        "EKU": ", ".join(ext.eku) or "none",
        "Basic constr.": bc,
        "SKI": "yes (method 1)" if ext.ski else "no",
    }


def _row_id(name: str) -> str:
    return "sum-" + name.lower().replace(" ", "-").replace(".", "")


class ReviewStep(WizardStep):
    """A summary of every step; Apply generates the key pair and the CSR from it."""

    TITLE = "Review and Apply"
    LIST_TITLE = "Review"
    FIELDS = frozenset({"apply", *EXTENSION_FIELDS})

    DEFAULT_CSS = """
    ReviewStep #summary, ReviewStep #extensions {
        grid-size: 2; grid-columns: 13 1fr; grid-rows: auto; grid-gutter: 0 1; height: auto;
    }
    ReviewStep Grid > .key { color: $text-muted; text-style: bold; }
    ReviewStep Grid > .value { width: 100%; height: auto; }
    ReviewStep #apply-status { height: auto; margin-top: 1; display: none; }
    ReviewStep #apply-spinner { width: 6; height: 1; min-height: 1; }
    ReviewStep #apply-progress { width: 1fr; color: $text-accent; }
    ReviewStep #apply-error { margin-top: 1; border-left: outer $error; padding-left: 1; }
    ReviewStep #apply-hint { margin-top: 1; color: $text-muted; }
    ReviewStep #extensions-heading { margin-top: 1; text-style: bold; color: $text-muted; }
    ReviewStep #extensions { margin-bottom: 1; }
    """

    @dataclass
    class Resolved(Message):
        """What the service made of the request so far: the validated request, or why not."""

        validated: ValidatedRequest | None
        error: TuiCsrError | None = None

    @dataclass
    class Refused(Message):
        """The request breaks a rule a field of another step owns (the wizard shows it)."""

        error: TuiCsrError

    #: Gives the request as the steps have it now (set by the wizard).
    params_source: Callable[[], GenerateParams] | None = None
    #: The service's refusal of the request as it stands ('' when none).
    refusal = ""

    def compose(self) -> ComposeResult:
        """The summary, the progress line and the error line."""
        yield from self.heading()
        with Grid(id="summary"):
            for name in SUMMARY_ROWS:
                yield Label(name, classes="key")
                yield Static("-", id=_row_id(name), classes="value", markup=False)
        yield Static("Requested extensions (as the profiles set them)", id="extensions-heading",
                     markup=False)
        with Grid(id="extensions", classes="summary"):
            for name in EXTENSION_ROWS:
                yield Label(name, classes="key")
                yield Static("-", id=_row_id(name), classes="value", markup=False)
        yield FieldRow("Change key usage", Input(
            id="key_usage", compact=True, placeholder="empty: as above; none: no keyUsage"))
        yield FieldError(id="key_usage-error")
        yield FieldRow("Change EKU", Input(
            id="eku", compact=True, placeholder="empty: as above; e.g. clientAuth"))
        yield FieldError(id="eku-error")
        yield FieldRow("CA", StateCheckbox("request CA:TRUE (a CA's CSR)", id="ca", compact=True,
                                           tooltip="basicConstraints CA:TRUE, critical"))
        yield FieldError(id="ca-error")
        yield FieldRow("Path length", Input(
            id="path_len", compact=True, placeholder="empty: as the profiles set it; 0-255"))
        yield FieldError(id="path_len-error")
        with Horizontal(id="apply-status"):
            yield LoadingIndicator(id="apply-spinner")
            yield Static("", id="apply-progress", markup=False)
        yield FieldError(id="apply-error", wide=True)
        yield Static("Apply (ctrl+g) generates the key pair on the token and signs the CSR.",
                     id="apply-hint", markup=False)

    def on_mount(self) -> None:
        """Idle, the spinner is hidden and does not animate (nor show up in snapshots)."""
        self.query_one(LoadingIndicator).auto_refresh = None

    def show_summary(self, rows: list[tuple[str, str]]) -> None:
        """Fill the summary from ``(name, value)`` rows; names not given show '-'."""
        given = dict(rows)
        for name in EXTENSION_ROWS:
            self.query_one(f"#{_row_id(name)}", Static).update("…")
        for name in SUMMARY_ROWS:
            self.query_one(f"#{_row_id(name)}", Static).update(given.get(name, "-"))

    def focus_first(self) -> None:
        """The step itself (it scrolls): keys such as ``?`` stay the app's, not typed into
        the extension fields (tab reaches them)."""
        self.focus()

    # -- the requested extensions --------------------------------------------------------------
    def entered(self) -> None:
        """Resolve the profiles for the request as it stands."""
        self._resolve()

    @on(Input.Changed, "#key_usage, #eku, #path_len")
    def _extensions_changed(self, event: Input.Changed) -> None:
        self.query_one(f"#{event.input.id}-error", FieldError).clear()
        self._resolve()

    @on(StateCheckbox.Changed, "#ca")
    def _ca_changed(self) -> None:
        self.query_one("#ca-error", FieldError).clear()
        self._resolve()

    @work(exclusive=True, group="review-resolve", exit_on_error=False)
    async def _resolve(self) -> None:
        if self.params_source is None:
            return
        params = self.params_source()
        try:  # store reads: off the event loop, as generate() does it
            validated = await asyncio.to_thread(self.service.validate, params)
        except TuiCsrError as exc:
            self.post_message(self.Resolved(None, exc))
            return
        except Exception as exc:
            self.post_message(WorkFailed("Checking the request", exc))
            return
        self.post_message(self.Resolved(validated))

    @on(Resolved)
    def _resolved(self, event: Resolved) -> None:
        rows: dict[str, str] = {}
        if event.validated is not None:
            rows = extension_rows(event.validated.extensions)
            rows["Profiles"] = profiles_text(event.validated.profiles)
            # The subject as it will be signed: with the profiles' DN defaults filled in.
            self.query_one(f"#{_row_id('Subject DN')}", Static).update(
                shown(event.validated.dn.to_rfc4514()))
            self.refusal = ""
            for field in EXTENSION_FIELDS:
                self.query_one(f"#{field}-error", FieldError).clear()
            self.show_apply_error(None)
        for name in EXTENSION_ROWS:
            self.query_one(f"#{_row_id(name)}", Static).update(rows.get(name, "-"))
        error = event.error
        if error is None:
            return
        self.refusal = error.message
        if error.field in EXTENSION_FIELDS:
            self.show_error(error.field, error.message)
        else:
            self.post_message(self.Refused(error))

    def contribute(self, params: GenerateParams) -> None:
        """A changed keyUsage / extendedKeyUsage (empty: as the profiles set them), a CA
        request and its path length (empty: as the profiles set it)."""
        ku = self.query_one("#key_usage", Input).value.strip()
        eku = self.query_one("#eku", Input).value.strip()
        path_len = self.query_one("#path_len", Input).value.strip()
        params.key_usage = ku or None
        params.eku = eku or None
        params.ca = self.query_one("#ca", StateCheckbox).value
        params.path_len = path_len or None

    def value_of(self, name: str) -> str:
        """What the summary shows for row ``name`` (for tests and screen readers)."""
        return str(self.query_one(f"#{_row_id(name)}", Static).render())

    def set_busy(self, text: str | None) -> None:
        """Show the spinner and ``text`` while Apply runs; None hides them.

        Only the widgets concerned change (no class on the step): restyling the whole step
        would cost the event loop more while the token works.
        """
        busy = text is not None
        spinner = self.query_one(LoadingIndicator)
        spinner.auto_refresh = 1 / 16 if busy else None
        self.query_one("#apply-status").display = busy
        self.query_one("#apply-hint").display = not busy
        if text is not None:
            self.query_one("#apply-progress", Static).update(text)

    @property
    def busy(self) -> bool:
        """Whether the spinner is showing."""
        return bool(self.query_one("#apply-status").display)

    def show_apply_error(self, message: str | None) -> None:
        """Show why Apply failed (None clears it)."""
        self.query_one("#apply-error", FieldError).show(message)

    @property
    def apply_error(self) -> str:
        """The failure shown ('' when none)."""
        return self.query_one("#apply-error", FieldError).message
