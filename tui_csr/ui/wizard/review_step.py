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
    FIELDS = frozenset({"apply"})

    DEFAULT_CSS = """
    ReviewStep #summary {
        grid-size: 2; grid-columns: 13 1fr; grid-rows: auto; grid-gutter: 0 1; height: auto;
    }
    ReviewStep #summary > .key { color: $text-muted; text-style: bold; }
    ReviewStep #summary > .value { width: 100%; height: auto; }
    ReviewStep #apply-status { height: auto; margin-top: 1; display: none; }
    ReviewStep.-busy #apply-status { display: block; }
    ReviewStep #apply-spinner { width: 6; height: 1; min-height: 1; }
    ReviewStep #apply-progress { width: 1fr; color: $text-accent; }
    ReviewStep #apply-error { margin-top: 1; border-left: outer $error; padding-left: 1; }
    ReviewStep #apply-hint { margin-top: 1; color: $text-muted; }
    ReviewStep.-busy #apply-hint { display: none; }
    """

    def compose(self) -> ComposeResult:
        yield from self.heading()
        with Grid(id="summary"):
            for name in SUMMARY_ROWS:
                yield Label(name, classes="key")
                yield Static("-", id=_row_id(name), classes="value", markup=False)
        with Horizontal(id="apply-status"):
            yield Static("", id="apply-progress", markup=False)
        yield FieldError(id="apply-error", wide=True)
        yield Static("Apply (ctrl+g) generates the key pair on the token and signs the CSR.",
                     id="apply-hint", markup=False)

    def show_summary(self, rows: list[tuple[str, str]]) -> None:
        """Fill the summary from ``(name, value)`` rows; names not given show '-'."""
        given = dict(rows)
        for name in SUMMARY_ROWS:
            self.query_one(f"#{_row_id(name)}", Static).update(given.get(name, "-"))

    def value_of(self, name: str) -> str:
        """What the summary shows for row ``name`` (for tests and screen readers)."""
        return str(self.query_one(f"#{_row_id(name)}", Static).render())

    async def set_busy(self, text: str | None) -> None:
        """Show the spinner and ``text`` while Apply runs; None hides them."""
        spinners = list(self.query(LoadingIndicator))
        if text is None:
            self.remove_class("-busy")
            for spinner in spinners:
                await spinner.remove()
            return
        self.add_class("-busy")
        if not spinners:
            # Mounted only while busy: an idle page has no animation (stable snapshots).
            await self.query_one("#apply-status").mount(LoadingIndicator(id="apply-spinner"),
                                                        before=0)
        self.query_one("#apply-progress", Static).update(text)

    def show_apply_error(self, message: str | None) -> None:
        """Show why Apply failed (None clears it)."""
        self.query_one("#apply-error", FieldError).show(message)

    @property
    def apply_error(self) -> str:
        """The failure shown ('' when none)."""
        return self.query_one("#apply-error", FieldError).message
