"""How to renew a request: a new key pair (the wizard, pre-filled) or the key pair it has."""

from __future__ import annotations

import enum

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_csr.core.models import Request
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown


class RenewHow(enum.Enum):
    """The two ways to renew; the dialog dismisses with one of these (or None)."""

    NEW_KEY = "new-key"
    SAME_KEY = "same-key"


CHOICES: tuple[tuple[RenewHow, str], ...] = (
    (RenewHow.NEW_KEY, "New key pair: the wizard, pre-filled (recommended)"),
    (RenewHow.SAME_KEY, "Same key pair: a new CSR signed by it, now"),
)


class RenewChoiceDialog(Dialog[RenewHow]):
    """Ask how to renew ``request``. A new key pair is the safe default; the same key pair
    suits a certificate that must keep its key (pinned keys, a CA re-issue)."""

    DEFAULT_CSS = """
    RenewChoiceDialog OptionList { height: auto; max-height: 4; }
    RenewChoiceDialog #explain { color: $text-muted; height: auto; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Do not renew", id="renew.close"),
    ]

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Label(shown(f"Renew '{r.label}'"), id="title", markup=False)
            yield OptionList(*[Option(text, id=how.value) for how, text in CHOICES],
                             id="choices", markup=False)
            yield Static(shown(
                "The same subject, SANs, groups and owner either way. The same key pair keeps "
                f"the key {r.key_spec} on token '{r.token_label}' in use for another "
                "certificate term; some CAs refuse a key they have certified before."),
                id="explain", markup=False)

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = 0
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(RenewHow(event.option_id))

    def action_close(self) -> None:
        """Close without renewing."""
        self.dismiss(None)
