"""The facts of a key attestation, as a CA reads them: HSM, key, chain and each check.

Opened from View CSR (``t``) for a request with an imported attestation. The report is made
off the event loop (it checks every signature); its text comes from files and vendors, so it is
shown literally (``markup=False``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_csr.errors import printable

if TYPE_CHECKING:
    from tui_csr.core.models import Request


def attestation_lines(request: Request) -> list[str]:
    """The facts and checks of ``request``'s imported attestation (blocking: run in a thread)."""
    from tui_csr.attestation.imported import imported_result

    result = imported_result(request)
    report = result.report
    return report.lines() if report is not None else result.summary_lines()


class AttestationFactsDialog(ModalScreen[None]):
    """The imported key attestation of ``request``: vendor, HSM, key, chain and checks."""

    DEFAULT_CSS = """
    AttestationFactsDialog { align: center middle; }
    AttestationFactsDialog > Vertical {
        width: 100; max-width: 98%; height: auto; max-height: 95%; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    AttestationFactsDialog #title { text-style: bold; margin-bottom: 1; }
    AttestationFactsDialog VerticalScroll { height: auto; max-height: 20; }
    AttestationFactsDialog #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close the attestation facts",
                id="attestation_facts.close"),
    ]

    class Loaded(Message):
        """The attestation was read and checked: the lines to show."""

        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Key attestation of '{self.request.label}'", id="title", markup=False)
            with VerticalScroll():
                yield Static("Checking the attestation…", id="facts", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()
        self._load()

    @work(exclusive=True, exit_on_error=False, group="attestation-facts")
    async def _load(self) -> None:
        from tui_csr.errors import TuiCsrError

        try:
            lines = await asyncio.to_thread(attestation_lines, self.request)
        except TuiCsrError as exc:
            lines = [f"The attestation cannot be read: {exc}"]
        self.post_message(self.Loaded(lines))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.query_one("#facts", Static).update("\n".join(printable(line)
                                                         for line in event.lines))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
