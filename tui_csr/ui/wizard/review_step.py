"""The last step, Review and Apply: everything chosen, what Apply is doing, and why it failed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Label, LoadingIndicator, Static

from tui_csr.ui.wizard.common import FieldError, WizardStep

#: The summary's rows, in order; steps' :meth:`~WizardStep.summary` fill them by name.
SUMMARY_ROWS = ("Token", "Key", "Hash", "Padding", "Key label", "Subject DN", "Country", "SANs",
                "Groups", "Owner")


def _row_id(name: str) -> str:
    return "sum-" + name.lower().replace(" ", "-")


class ReviewStep(WizardStep):
    """A summary of every step; Apply generates the key pair and the CSR from it."""

    TITLE = "Review and Apply"
    LIST_TITLE = "Review"
    FIELDS = frozenset({"apply"})

    DEFAULT_CSS = """
    ReviewStep #summary {
        grid-size: 2; grid-columns: 13 1fr; grid-rows: auto; grid-gutter: 0 1; height: auto;
    }
    ReviewStep #summary > .key { color: $text-muted; text-style: bold; }
    ReviewStep #summary > .value { width: 100%; height: auto; }
    ReviewStep #apply-status { height: auto; margin-top: 1; display: none; }
    ReviewStep #apply-spinner { width: 6; height: 1; min-height: 1; }
    ReviewStep #apply-progress { width: 1fr; color: $text-accent; }
    ReviewStep #apply-error { margin-top: 1; border-left: outer $error; padding-left: 1; }
    ReviewStep #apply-hint { margin-top: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        """The summary, the progress line and the error line."""
        yield from self.heading()
        with Grid(id="summary"):
            for name in SUMMARY_ROWS:
                yield Label(name, classes="key")
                yield Static("-", id=_row_id(name), classes="value", markup=False)
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
        for name in SUMMARY_ROWS:
            self.query_one(f"#{_row_id(name)}", Static).update(given.get(name, "-"))

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
