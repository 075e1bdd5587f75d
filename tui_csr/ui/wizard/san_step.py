"""Step 3, Subject Alternative Names: a list of (type, value) entries, each checked as typed."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static

from tui_csr.core.san import SanKind, parse_san, validate_sans
from tui_csr.errors import InputError
from tui_csr.service import GenerateParams
from tui_csr.ui.wizard.common import Errors, FieldError, WizardStep

SAN_UNSUPPORTED = ("The configured backend does not support Subject Alternative Names "
                   "(san_supported = false).")
_KINDS = [("email", SanKind.EMAIL.value), ("DNS", SanKind.DNS.value), ("IP", SanKind.IP.value),
          ("URI", SanKind.URI.value)]
_PLACEHOLDERS = {"email": "user@example.com", "dns": "www.example.com", "ip": "192.0.2.10",
                 "uri": "https://www.example.com/"}


class SanRow(Vertical):
    """One entry: its type, its value and the error line under them."""

    DEFAULT_CSS = """
    SanRow { height: auto; }
    SanRow > Horizontal { height: auto; }
    SanRow Select { width: 12; margin-right: 1; }
    SanRow Input { width: 1fr; }
    SanRow > FieldError { padding-left: 13; }
    """

    def __init__(self, number: int, kind: str = "email", value: str = "") -> None:
        super().__init__(id=f"san-{number}", classes="san-row")
        self.number = number
        self._kind, self._value = kind, value

    def compose(self) -> ComposeResult:
        """The type and the value side by side, the error line under them."""
        with Horizontal():
            yield Select(_KINDS, value=self._kind, allow_blank=False, compact=True,
                         type_to_search=False, id=f"san-kind-{self.number}")
            yield Input(self._value, id=f"san-value-{self.number}", compact=True,
                        placeholder=_PLACEHOLDERS[self._kind])
        yield FieldError(id=f"san-{self.number}-error")

    @property
    def kind(self) -> str:
        """``email`` / ``dns`` / ``ip`` / ``uri``."""
        value = self.query_one(Select).value
        return value if isinstance(value, str) else "email"

    @property
    def value(self) -> str:
        """The value as typed."""
        return self.query_one(Input).value

    @property
    def error(self) -> FieldError:
        """The line under the entry."""
        return self.query_one(FieldError)

    def reset(self) -> None:
        """Back to an empty email entry."""
        self.query_one(Select).value = "email"
        self.query_one(Input).value = ""
        self.error.clear()


def check_rows(rows: list[SanRow]) -> Errors:
    """``{row id: message}``: each non-empty entry must parse, and appear only once."""
    errors: Errors = {}
    accepted: list[tuple[str, str]] = []
    for row in rows:
        if not row.value.strip():
            continue
        try:
            parse_san(row.kind, row.value)
            validate_sans([*accepted, (row.kind, row.value)])
        except InputError as exc:
            errors[row.id or ""] = exc.message
            continue
        accepted.append((row.kind, row.value))
    return errors


class SanStep(WizardStep):
    """Email, DNS, IP and URI names the certificate should also carry."""

    TITLE = "Subject Alternative Names"
    LIST_TITLE = "SANs"
    FIELDS = frozenset({"san", "email", "dns", "ip", "uri"})

    DEFAULT_CSS = """
    SanStep #san-buttons { height: auto; margin-top: 1; }
    SanStep #san-buttons > Button { margin-right: 1; min-width: 10; }
    SanStep #san-disabled { color: $text-warning; display: none; margin-bottom: 1; }
    SanStep.-unsupported #san-disabled { display: block; }
    SanStep #san-list { height: auto; }
    """

    #: Entry numbers only grow, so a deleted entry's id is never reused.
    _counter = 0
    _last_row: SanRow | None = None

    def compose(self) -> ComposeResult:
        """The entries, the buttons and the reason when SANs are off."""
        yield from self.heading()
        yield Static(SAN_UNSUPPORTED, id="san-disabled", markup=False)
        yield Static("Types: email, DNS, IP, URI. Empty entries are ignored. + or ctrl+o adds, "
                     "- or ctrl+t deletes the focused entry, ctrl+r empties the first.",
                     classes="hint -wide", markup=False)
        with Vertical(id="san-list"):
            yield self._new_row()
        with Horizontal(id="san-buttons"):
            yield Button("+ Add", id="san-add", compact=True, tooltip="Add an entry (+, ctrl+o)")
            yield Button("- Delete", id="san-delete", compact=True,
                         tooltip="Delete the focused entry (-, ctrl+t)")
            yield Button("Refresh", id="san-refresh", compact=True,
                         tooltip="Empty the first entry (ctrl+r)")
        yield FieldError(id="san-error", wide=True)

    def on_mount(self) -> None:
        """Disable the entries when the backend takes no SANs."""
        if not self.supported:
            self.add_class("-unsupported")
            self.query_one("#san-list").disabled = True
            self.query_one("#san-buttons").disabled = True

    @property
    def supported(self) -> bool:
        """Whether the backend takes SANs at all."""
        return bool(self.service.settings.san_supported)

    def _new_row(self, kind: str = "email", value: str = "") -> SanRow:
        self._counter += 1
        return SanRow(self._counter, kind, value)

    @property
    def rows(self) -> list[SanRow]:
        """The entries, in order."""
        return list(self.query(SanRow))

    async def prefill(self, sans: list[tuple[str, str]]) -> None:
        """Start from ``sans`` (a renewal's source), one entry each (one empty entry if none)."""
        if not sans:
            return
        listing = self.query_one("#san-list")
        await listing.remove_children()
        await listing.mount_all([self._new_row(kind, value) for kind, value in sans])

    # -- editing ---------------------------------------------------------------------------------
    async def add_entry(self, kind: str = "email", value: str = "") -> SanRow:
        """Append an entry and focus its value."""
        row = self._new_row(kind, value)
        await self.query_one("#san-list").mount(row)
        row.query_one(Input).focus()
        row.scroll_visible()
        return row

    def _focused_row(self) -> SanRow | None:
        focused = self.screen.focused
        for node in (focused.ancestors_with_self if focused is not None else []):
            if isinstance(node, SanRow):
                return node
        return self._last_row if self._last_row in self.rows else None

    async def delete_entry(self) -> bool:
        """Delete the focused entry (or the last one focused); the only entry stays."""
        rows = self.rows
        if len(rows) < 2:
            self.notify("The only entry cannot be deleted; empty it or use Refresh.",
                        severity="warning", timeout=3)
            return False
        row = self._focused_row() or rows[-1]
        index = rows.index(row)
        focused = self.screen.focused
        had_focus = focused is not None and row in focused.ancestors_with_self
        await row.remove()
        rest = self.rows
        if had_focus:
            # Typing goes on in the neighbour; pressed from a button, the focus stays there.
            rest[min(index, len(rest) - 1)].query_one(Input).focus()
        self._recheck()
        return True

    def refresh_first(self) -> None:
        """Empty the first entry (the way out of a first entry typed wrongly)."""
        first = self.rows[0]
        first.reset()
        first.query_one(Input).focus()
        self._recheck()

    @on(Button.Pressed, "#san-add")
    async def _add_pressed(self) -> None:
        await self.add_entry()

    @on(Button.Pressed, "#san-delete")
    async def _delete_pressed(self) -> None:
        await self.delete_entry()

    @on(Button.Pressed, "#san-refresh")
    def _refresh_pressed(self) -> None:
        self.refresh_first()

    def on_descendant_focus(self, event: object) -> None:
        """Remember the entry last focused, for Delete pressed from a button."""
        row = self._focused_row()
        if row is not None:
            self._last_row = row

    @on(Input.Changed, ".san-row Input")
    @on(Select.Changed, ".san-row Select")
    def _entry_changed(self, event: Input.Changed | Select.Changed) -> None:
        control: Widget = event.control
        for node in control.ancestors:
            if isinstance(node, SanRow):
                kind = node.kind
                node.query_one(Input).placeholder = _PLACEHOLDERS.get(kind, "")
                break
        self._recheck()

    def _recheck(self) -> None:
        """Check every entry as it is typed; duplicates are flagged on the later one."""
        errors = check_rows(self.rows)
        for row in self.rows:
            row.error.show(errors.get(row.id or ""))
        self.query_one("#san-error", FieldError).clear()

    # -- WizardStep ------------------------------------------------------------------------------
    def focus_first(self) -> None:
        """The first entry's value (its type keeps the default more often than not)."""
        if self.supported:
            self.rows[0].query_one(Input).focus()
        else:
            super().focus_first()

    async def check(self) -> Errors:
        """Every non-empty entry valid and unique (nothing to check when SANs are off)."""
        if not self.supported:
            return {}
        return check_rows(self.rows)

    def show_error(self, field: str, message: str) -> None:
        """Row errors by row id; an apply error about a kind goes under the entry it quotes."""
        if field.startswith("san-"):
            super().show_error(field, message)
            return
        for row in self.rows:
            if row.kind == field and row.value.strip() and f"'{row.value.strip()}'" in message:
                row.error.show(message)
                return
        self.query_one("#san-error", FieldError).show(message)

    def is_dirty(self) -> bool:
        """Any entry with a value."""
        return any(row.value.strip() for row in self.rows)

    def contribute(self, params: GenerateParams) -> None:
        """The non-empty entries (none when the backend takes no SANs)."""
        if not self.supported:
            params.sans = []
            return
        params.sans = [(row.kind, row.value.strip()) for row in self.rows if row.value.strip()]

    def summary(self) -> list[tuple[str, str]]:
        """The entries as ``kind:value``."""
        if not self.supported:
            return [("SANs", "not supported by the backend")]
        sans = [f"{row.kind}:{row.value.strip()}" for row in self.rows if row.value.strip()]
        return [("SANs", ", ".join(sans) if sans else "none")]
