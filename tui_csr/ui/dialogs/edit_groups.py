"""Change a request's certificate groups and owner; at least one group must stay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.text import literal
from tui_csr.ui.widgets.toggles import StateSelectionList

#: Applies the choice (e.g. ``service.set_groups``); raises TuiCsrError to refuse it.
ApplyGroups = Callable[[list[str], str | None], Awaitable[object]]

NO_GROUP_CHOSEN = "Choose at least one certificate group: every request needs one."

EditResult = tuple[list[str], str | None]


class EditGroupsDialog(ReportsWorkerErrors, Dialog[EditResult | None]):
    """Pick ``request``'s groups among ``groups`` and edit its owner.

    Dismisses with ``(groups, owner)`` (owner None when emptied), or None on escape. With
    ``apply`` the dialog applies the change itself and stays open on a refusal, showing it
    under the field it concerns; without, it only checks that a group is chosen.
    """

    DEFAULT_CSS = """
    EditGroupsDialog > Vertical { padding: 0 2; }
    EditGroupsDialog SelectionList { height: auto; max-height: 8; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without changing anything",
                id="edit_groups.cancel"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the groups and owner",
                id="edit_groups.save"),
    ]

    error_title = "The groups cannot be changed"

    def __init__(self, request: Request, groups: Sequence[str], *,
                 apply: ApplyGroups | None = None) -> None:
        super().__init__()
        self.request = request
        self.groups = list(groups)
        # A request may name a group that no longer exists; keep it visible (and chosen).
        folded = {g.casefold() for g in self.groups}
        self.groups += [g for g in request.groups if g.casefold() not in folded]
        self._apply = apply

    def compose(self) -> ComposeResult:
        chosen = {g.casefold() for g in self.request.groups}
        with Vertical():
            yield Label(f"Groups and owner of '{self.request.label}'", id="title",
                        markup=False)
            yield Label("Certificate groups (space toggles):")
            yield StateSelectionList(
                *[Selection(literal(name), name, name.casefold() in chosen)
              for name in self.groups],
                id="groups")
            yield Static("", id="groups-problem", classes="problem -empty", markup=False)
            yield Label("Owner (empty for none):", id="owner-label")
            yield Input(self.request.owner or "", placeholder="user name", id="owner")
            yield Static("", id="owner-problem", classes="problem -empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#groups", SelectionList).focus()

    @property
    def chosen(self) -> list[str]:
        """The ticked groups, in list order."""
        ticked = set(self.query_one("#groups", SelectionList).selected)
        return [name for name in self.groups if name in ticked]

    @property
    def owner(self) -> str | None:
        """The owner as typed (None when empty)."""
        return self.query_one("#owner", Input).value.strip() or None

    def show_problem(self, field: str, text: str | None) -> None:
        """Show ``text`` under ``groups`` or ``owner`` (None clears it)."""
        problem = self.query_one(f"#{field}-problem", Static)
        problem.update(text or "")
        problem.set_class(not text, "-empty")

    @on(SelectionList.SelectedChanged)
    def _toggled(self) -> None:
        if self.chosen:
            self.show_problem("groups", None)

    @on(Input.Submitted, "#owner")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        """Check that a group is chosen, then apply (or return) the choice."""
        self.show_problem("owner", None)
        groups = self.chosen
        if not groups:
            self.show_problem("groups", NO_GROUP_CHOSEN)
            self.query_one("#groups", SelectionList).focus()
            return
        self.show_problem("groups", None)
        if self._apply is None:
            self.dismiss((groups, self.owner))
            return
        self._save(groups, self.owner)

    @work(exclusive=True, exit_on_error=False, group="edit-groups")
    async def _save(self, groups: list[str], owner: str | None) -> None:
        assert self._apply is not None
        save = self.query_one("#save", Button)
        save.disabled = True
        try:
            await self._apply(groups, owner)
        except TuiCsrError as exc:
            self.show_problem("owner" if exc.field == "owner" else "groups", str(exc))
            return
        finally:
            save.disabled = False
        self.dismiss((groups, owner))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
