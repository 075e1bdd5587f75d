"""Orphans found at start: tui-csr keys on the token with no record, and records whose key is
gone. A stray key can be adopted (a new CSR is made for it) or destroyed; a lost key can only be
reported, since the private key cannot come back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.error import ErrorDialog, ReportsWorkerErrors
from tui_csr.ui.text import LiteralTable, literal, shown
from tui_csr.ui.widgets.toggles import StateSelectionList

if TYPE_CHECKING:
    from tui_csr.service import CsrService
    from tui_csr.services.orphans import OrphanReport

LOST_NOTE = ("The private key of these requests is no longer on the token, so no certificate "
             "can ever be used with them. Delete them from the Requests tab (a, then Delete "
             "request): that removes only the record.")


#: How many records without a key the dialog lists (the CLI lists them all).
LOST_SHOWN = 20

class AdoptDialog(ReportsWorkerErrors, Dialog[Request | None]):
    """Make a new CSR for the stray key ``label`` / ``key_id_hex``: a CN and its groups.

    Calls ``service.adopt_orphan`` itself, so a refusal shows under the field; dismisses with the
    new request, or None on escape.
    """

    DEFAULT_CSS = """
    AdoptDialog > Vertical { padding: 0 2; }
    AdoptDialog #title { margin-bottom: 0; }
    AdoptDialog #key { color: $text-muted; margin-bottom: 1; }
    AdoptDialog SelectionList { height: auto; max-height: 8; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without adopting",
                id="adopt.cancel"),
        Binding("ctrl+s", "adopt", "Adopt", tooltip="Make the CSR for this key",
                id="adopt.adopt"),
    ]

    error_title = "The key cannot be adopted"

    def __init__(self, service: CsrService, key_id_hex: str, label: str,
                 groups: Sequence[str]) -> None:
        super().__init__()
        self.service = service
        self.key_id_hex = key_id_hex
        self.label = label
        self.groups = list(groups)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Adopt key '{self.label}'", id="title", markup=False)
            yield Static(f"Key id {self.key_id_hex}: the token signs a new CSR for it.",
                         id="key", markup=False)
            yield Label("Common name (CN):")
            yield Input(placeholder="e.g. www.example.com", id="cn")
            yield Static("", id="cn-problem", classes="problem -empty", markup=False)
            yield Label("Certificate groups (space toggles):")
            yield StateSelectionList(*[Selection(literal(g), g, len(self.groups) == 1)
                                       for g in self.groups], id="groups")
            yield Static("", id="groups-problem", classes="problem -empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Adopt", id="adopt", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cn", Input).focus()

    def show_problem(self, field: str, text: str | None) -> None:
        """Show ``text`` under ``cn`` or ``groups`` (None clears it)."""
        problem = self.query_one(f"#{field}-problem", Static)
        problem.update(text or "")
        problem.set_class(not text, "-empty")

    @on(Input.Submitted, "#cn")
    @on(Button.Pressed, "#adopt")
    def action_adopt(self) -> None:
        """Check the CN and the groups, then make the CSR."""
        cn = self.query_one("#cn", Input).value.strip()
        groups = list(self.query_one("#groups", SelectionList).selected)
        self.show_problem("cn", None if cn else "Give the common name of the new CSR.")
        self.show_problem("groups", None if groups else "Choose at least one certificate "
                          "group: every request needs one.")
        if cn and groups:
            self._adopt(cn, groups)

    @work(exclusive=True, exit_on_error=False, group="adopt")
    async def _adopt(self, cn: str, groups: list[str]) -> None:
        from tui_csr.service import GenerateParams

        button = self.query_one("#adopt", Button)
        button.disabled = True
        try:
            request = await self.service.adopt_orphan(
                self.key_id_hex, GenerateParams(key_spec="", fields={"CN": cn}, groups=groups))
        except TuiCsrError as exc:
            self.show_problem("groups" if exc.field == "group" else "cn", str(exc))
            return
        finally:
            button.disabled = False
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without adopting."""
        self.dismiss(None)


class OrphansDialog(ReportsWorkerErrors, Dialog[None]):
    """Shows an :class:`OrphanReport`; ``a`` adopts and ``x`` destroys the selected stray key.

    ``on_change`` is called after a key was adopted or destroyed (the caller reloads its lists).
    """

    DEFAULT_CSS = """
    OrphansDialog > VerticalScroll { width: 92; border: thick $warning; }
    OrphansDialog .heading { text-style: bold; margin-top: 1; }
    OrphansDialog DataTable { height: auto; max-height: 8; }
    OrphansDialog .note { color: $text-muted; height: auto; }
    OrphansDialog #lost { height: auto; }
    OrphansDialog #key-buttons { height: auto; margin-top: 1; }
    OrphansDialog #buttons { margin-top: 1; }
    OrphansDialog Button, OrphansDialog #buttons > Button { margin-left: 0; margin-right: 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close; nothing more is changed",
                id="orphans.close"),
        Binding("a", "adopt", "Adopt…", tooltip="Make a new CSR for the selected key",
                id="orphans.adopt"),
        Binding("x", "destroy", "Destroy…", tooltip="Destroy the selected key on the token",
                id="orphans.destroy"),
    ]

    error_title = "The orphan cannot be handled"

    def __init__(self, service: CsrService, report: OrphanReport,
                 on_change: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.service = service
        self.keys = list(report.keys_without_record)
        self.lost = list(report.records_without_key)
        self._on_change = on_change or (lambda: None)

    def compose(self) -> ComposeResult:
        token = self.service.token.label if self.service.token is not None else "?"
        # Scrolls when the report is longer than the terminal (at 80x24 it usually is).
        with VerticalScroll():
            yield Label(f"Token '{token}' and the request store disagree", id="title",
                        markup=False)
            yield Label("", id="keys-heading", classes="heading", markup=False)
            yield Static("tui-csr made these key pairs but no request records them. Adopt one "
                         "to make a new CSR for it, or destroy it.", classes="note")
            table: DataTable = LiteralTable(id="keys", cursor_type="row")
            table.add_columns("Key label", "Key id")
            yield table
            with Horizontal(id="key-buttons"):
                yield Button("Adopt…", id="adopt", variant="primary")
                yield Button("Destroy…", id="destroy", variant="error")
            yield Label(f"Requests whose key is gone ({len(self.lost)})", classes="heading",
                        markup=False)
            # Bounded: a store restored without its token could list thousands.
            lines = [shown(f"{r.label}: {r.subject} (key id {r.key_id})")
                     for r in self.lost[:LOST_SHOWN]]
            if len(self.lost) > LOST_SHOWN:
                lines.append(f"… and {len(self.lost) - LOST_SHOWN} more: tui-csr orphans list "
                             "shows them all.")
            yield Static("\n".join(lines) or "None.", id="lost", markup=False)
            if self.lost:
                yield Static(LOST_NOTE, classes="note", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.show_keys()
        self.query_one("#keys" if self.keys else "#close").focus()

    def show_keys(self) -> None:
        """Fill the stray-key table from :attr:`keys`."""
        table = self.query_one("#keys", DataTable)
        table.clear()
        for key in self.keys:
            table.add_row(key.label, key.key_id.hex(), key=key.key_id.hex())
        self.query_one("#keys-heading", Label).update(
            f"Keys without a request ({len(self.keys)})")
        for ident in ("#adopt", "#destroy"):
            self.query_one(ident, Button).disabled = not self.keys
        self.refresh_bindings()

    def selected_key(self):  # -> TokenKey | None
        """The stray key under the cursor, if any."""
        table = self.query_one("#keys", DataTable)
        if not self.keys or table.row_count == 0:
            return None
        hex_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((k for k in self.keys if k.key_id.hex() == hex_id), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Adopt and Destroy need a stray key."""
        if action in {"adopt", "destroy"}:
            return True if self.keys else None
        return True

    def _resolved(self, key) -> None:
        self.keys = [k for k in self.keys if k.key_id != key.key_id]
        self.show_keys()
        self._on_change()

    @on(Button.Pressed, "#adopt")
    def action_adopt(self) -> None:
        """Ask for a CN and groups, and make a new CSR for the selected key."""
        key = self.selected_key()
        if key is not None:
            self._open_adopt(key)

    @work(exclusive=True, exit_on_error=False, group="orphans")
    async def _open_adopt(self, key) -> None:
        groups = [g.name for g in await self.service.list_groups()]
        if not groups:
            self.app.push_screen(ErrorDialog(
                "The key cannot be adopted", "No certificate group exists yet, and every "
                "request needs one: an administrator must create one first."))
            return

        def adopted(request: Request | None) -> None:
            if request is not None:
                self.notify(f"Key '{key.label}' is request '{request.label}' again.",
                            title="Key adopted")
                self._resolved(key)

        self.app.push_screen(AdoptDialog(self.service, key.key_id.hex(), key.label, groups),
                             adopted)

    @on(Button.Pressed, "#destroy")
    def action_destroy(self) -> None:
        """Destroy the selected key after a confirmation."""
        key = self.selected_key()
        if key is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._destroy(key)

        self.app.push_screen(ConfirmDialog(
            f"Destroy key '{key.label}'?", f"The key pair {key.key_id.hex()} is destroyed on "
            "the HSM and cannot be recovered.", confirm_label="Destroy",
            cancel_label="Keep it", danger=True), answered)

    @work(exclusive=True, exit_on_error=False, group="orphans")
    async def _destroy(self, key) -> None:
        try:
            count = await self.service.destroy_orphan(key.key_id.hex())
        except TuiCsrError as exc:
            self.app.push_screen(ErrorDialog.from_error(exc, "The key was not destroyed"))
            return
        self.notify(f"Key '{key.label}' destroyed ({count} objects).", title="Key destroyed")
        self._resolved(key)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Close the report."""
        self.dismiss(None)
