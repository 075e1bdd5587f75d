"""Choose the token when the module has several and none is configured (``--token`` /
``TUI_CSR_TOKEN`` / ``token_serial``). The list comes from
:meth:`CsrService.list_tokens`, which selects no token and does not log in."""

from __future__ import annotations

from typing import Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown


class TokenChoice(Protocol):
    """What the picker shows of a token (``hsm.describe.TokenDescription`` has it all)."""

    @property
    def label(self) -> str: ...
    @property
    def serial(self) -> str: ...
    @property
    def manufacturer(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def login_required(self) -> bool: ...
    @property
    def protected_auth_path(self) -> bool: ...
    @property
    def pin_final_try(self) -> bool: ...
    @property
    def pin_locked(self) -> bool: ...


def token_line(token: TokenChoice) -> str:
    """``'demo'  serial 1a2b  SoftHSM project SoftHSM v2  (PIN pad)``, one line."""
    extra = []
    if token.protected_auth_path:
        extra.append("PIN pad")
    if token.pin_locked:
        extra.append("PIN locked")
    elif token.pin_final_try:
        extra.append("final PIN try")
    if not token.login_required:
        extra.append("no login")
    tail = f"  ({', '.join(extra)})" if extra else ""
    return (f"'{token.label}'  serial {token.serial}  {token.manufacturer} {token.model}"
            f"{tail}")


class TokenPickerDialog(Dialog[TokenChoice | None]):
    """The module's initialised tokens; dismisses with the one chosen, None on quit."""

    DEFAULT_CSS = """
    TokenPickerDialog > Vertical { width: 76; }
    TokenPickerDialog OptionList { height: auto; max-height: 10; }
    TokenPickerDialog #hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "give_up", "Quit", tooltip="Quit tui-csr without choosing a token",
                id="token_picker.quit"),
    ]

    def __init__(self, module: str, tokens: list[TokenChoice]) -> None:
        super().__init__()
        self.module = module
        self.tokens = tokens

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Choose a token", id="title", markup=False)
            yield Static(f"{shown(self.module)} has {len(self.tokens)} tokens and none is "
                         "configured:", id="question", markup=False)
            yield OptionList(*(Option(Text(shown(token_line(t)), end=""), id=str(n))
                               for n, t in enumerate(self.tokens)), id="tokens")
            yield Static("Set token (or TUI_CSR_TOKEN) in the config to skip this question.",
                         id="hint", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Quit", id="quit")
                yield Button("Open", id="open", variant="primary")

    def on_mount(self) -> None:
        options = self.query_one("#tokens", OptionList)
        options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected, "#tokens")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.tokens[event.option_index])

    @on(Button.Pressed, "#open")
    def action_open(self) -> None:
        """Open the highlighted token."""
        index = self.query_one("#tokens", OptionList).highlighted
        if index is not None:
            self.dismiss(self.tokens[index])

    @on(Button.Pressed, "#quit")
    def action_give_up(self) -> None:
        """Quit: nothing works without a token."""
        self.dismiss(None)
