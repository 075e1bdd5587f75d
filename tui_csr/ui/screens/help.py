"""F1 / ``?``: the keys of the screen that was active, straight from its declared Bindings,
with each binding's id (the name a ``[keys]`` table in the config remaps it by)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static

from tui_csr.ui.text import LiteralTable


@dataclass(frozen=True)
class KeyHelp:
    """One line of help: the key(s), what they do, and the longer tooltip."""

    keys: str
    description: str
    tooltip: str = ""
    id: str = ""


def keys_of(screen: Screen) -> list[KeyHelp]:
    """The active bindings of ``screen`` (focused widget first, the app's last) that are shown
    in the footer or carry a tooltip, with keys that do the same thing merged: ``f1, ?  Help``."""
    app = screen.app
    merged: dict[tuple[str, str], list[str]] = {}
    tooltips: dict[tuple[str, str], str] = {}
    ids: dict[tuple[str, str], str] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        # Textual's own widget keys (arrows, paging) carry no tooltip and stay out of the list;
        # the hint line mentions them. Ours are all declared with a tooltip.
        if binding.system or not binding.description or not (binding.show or binding.tooltip):
            continue
        ident = (binding.action, binding.description)
        display = app.get_key_display(binding)
        keys = merged.setdefault(ident, [])
        if display not in keys:
            keys.append(display)
        tooltips.setdefault(ident, binding.tooltip)
        ids.setdefault(ident, binding.id or "")
    return [KeyHelp(", ".join(keys), desc, tooltips[(action, desc)], ids[(action, desc)])
            for (action, desc), keys in merged.items()]


HINT = ("Tabs: 1 2 3 or ctrl+pageup/pagedown (Tab, then arrows, on the tab bar). Arrows, "
        "Home/End and PgUp/PgDn move in lists; Tab moves between fields; ctrl+p opens the "
        "command palette. Remap a key with its id in the config's [keys] table. Escape closes "
        "this help.")


class HelpScreen(ModalScreen[None]):
    """Lists ``keys`` (see :func:`keys_of`) for the screen titled ``title``; escape closes."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 100%; padding: 0 1;
        border: thick $primary; background: $surface;
    }
    HelpScreen #title { text-style: bold; margin: 1 0 0 0; }
    HelpScreen DataTable { height: auto; max-height: 1fr; }
    HelpScreen #hint { color: $text-muted; margin: 0 0 1 0; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close the help", id="help.close"),
        Binding("q", "close", "Close", show=False, id="help.q"),
        Binding("f1", "close", "Close", show=False, id="help.f1"),
        Binding("question_mark", "close", "Close", show=False, id="help.question"),
    ]

    def __init__(self, title: str, keys: list[KeyHelp]) -> None:
        super().__init__()
        self._title = title
        self.keys = keys

    @classmethod
    def for_screen(cls, screen: Screen) -> HelpScreen:
        """Help for ``screen`` as it is now (its focused widget decides some of the keys)."""
        title = getattr(screen, "HELP_TITLE", None) or type(screen).__name__
        return cls(f"Keys: {title}", keys_of(screen))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="title", markup=False)
            yield Static(HINT, id="hint", markup=False)
            table: DataTable = LiteralTable(cursor_type="none", zebra_stripes=True,
                                         show_header=False, id="keys")
            table.add_columns("Key", "Action", "Details", "Id")
            for item in self.keys:
                table.add_row(item.keys, item.description, item.tooltip, item.id)
            yield table

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
