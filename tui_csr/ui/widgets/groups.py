"""The Groups tab: every certificate group, its policy, and what it holds.

Administrators create (``n``), edit (``e``: name, policy, description) and remove (``x``) groups; for everyone else those
keys are hidden and a line says who the administrators are. The service checks the permission
again, so the UI hiding a key is a courtesy, not the guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker

from tui_csr.core.models import Group
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.error import ErrorDialog, ReportsWorkerErrors
from tui_csr.ui.dialogs.group_form import GroupFormDialog
from tui_csr.ui.text import LiteralTable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tui_csr.core.models import Request
    from tui_csr.service import CsrService

#: (column key, header) of the table, in display order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Group"), ("policy", "Policy"), ("description", "Description"),
    ("pending", "Pending requests"), ("issued", "Certificates"),
)

Usage = dict[str, tuple[int, int]]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def not_admin_text(service: CsrService) -> str:
    """Why a non-administrator sees no group actions."""
    admins = ", ".join(service.settings.admin_users()) or "none configured"
    return (f"Only administrators ({admins}) can create, edit or remove groups; "
            f"you are {service.user}.")


class GroupsTable(LiteralTable):
    """The groups table, with vim keys on top of the arrows."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, tooltip="Next group", id="groups.down"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="Previous group", id="groups.up"),
    ]


class GroupsView(ReportsWorkerErrors, Vertical):
    """The groups with policy, description and the number of requests and certificates."""

    DEFAULT_CSS = """
    GroupsView { height: 1fr; }
    GroupsView #groups-role { height: auto; padding: 0 1; color: $text-muted; }
    GroupsView GroupsTable { height: auto; max-height: 100%; }
    GroupsView #groups-empty { height: 1fr; padding: 1 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("n", "create", "New group", tooltip="Create a certificate group",
                id="groups.create"),
        Binding("e", "edit", "Edit", tooltip="Edit the selected group's name, policy and "
                "description", id="groups.edit"),
        Binding("x", "remove", "Remove", tooltip="Remove the selected (empty) group",
                id="groups.remove"),
    ]

    error_title = "The groups cannot be loaded"

    class Loaded(Message):
        """The groups and their usage were read."""

        def __init__(self, groups: list[Group], usage: Usage | None) -> None:
            super().__init__()
            self.groups = groups
            self.usage = usage

    class Changed(Message):
        """A group was created, edited or removed (other tabs show group names)."""

    def __init__(self, service: CsrService, **kwargs) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.groups: list[Group] | None = None  # None until loaded
        self.usage: Usage | None = None

    def compose(self) -> ComposeResult:
        role = ("You administer certificate groups: n creates one, e edits the selected "
                "one, x removes it." if self.service.is_admin else not_admin_text(self.service))
        yield Static(role, id="groups-role", markup=False)
        yield GroupsTable(id="groups-table", cursor_type="row", zebra_stripes=True)
        yield Static("Reading the groups…", id="groups-empty", markup=False)

    def on_mount(self) -> None:
        self.show_rows()

    @property
    def table(self) -> GroupsTable:
        """The table widget."""
        return self.query_one(GroupsTable)

    # -- loading ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the groups and their usage again (in a worker)."""
        self.loading = True
        self._load()

    @work(exclusive=True, exit_on_error=False, group="groups")
    async def _load(self) -> None:
        groups = await self.service.list_groups()
        usage = await self.service.group_usage()
        self.post_message(self.Loaded(groups, usage))

    def worker_failed(self, worker: Worker) -> None:
        """A failed load: stop the loading indicator (the app shows the error)."""
        self.loading = False

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.groups, self.usage = event.groups, event.usage
        self.loading = False
        self.show_rows()
        self.refresh_bindings()

    def counts(self, name: str) -> tuple[int, int] | None:
        """(pending requests, certificates) in group ``name``; None when unknown."""
        if self.usage is None:
            return None
        folded = {k.casefold(): v for k, v in self.usage.items()}
        return folded.get(name.casefold(), (0, 0))

    def show_rows(self) -> None:
        """Fill the table, or say what to do when there is no group."""
        table = self.table
        keep = self.selected_group()
        table.clear(columns=True)
        for key, title in COLUMNS:
            table.add_column(title, key=key)
        for g in self.groups or []:
            counts = self.counts(g.name)
            pending, issued = (str(c) for c in counts) if counts else ("?", "?")
            table.add_row(g.name, g.policy, g.description, pending, issued,
                          key=g.name)
        if keep is not None and any(g.name == keep.name for g in self.groups or []):
            table.move_cursor(row=table.get_row_index(keep.name))
        empty = self.query_one("#groups-empty", Static)
        if self.groups is None:
            empty.update("Reading the groups…")
        else:
            empty.update("No certificate group exists yet. " + (
                "Press n to create one." if self.service.is_admin
                else "An administrator must create one."))
        empty.display = not self.groups
        table.display = bool(self.groups)

    def selected_group(self) -> Group | None:
        """The group under the cursor, if any."""
        table = self.table
        if table.row_count == 0 or not self.groups:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((g for g in self.groups if g.name == key), None)

    # -- actions ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Group actions exist for administrators only; edit and remove need a group."""
        if action in {"create", "edit", "remove"} and not self.service.is_admin:
            return False
        if action in {"edit", "remove"}:
            return True if self.groups else None
        return True

    def action_create(self) -> None:
        """Ask for a new group's name, policy and description, and create it."""
        async def submit(name: str, policy: str, description: str) -> None:
            await self.service.add_group(name, policy, description)

        self.app.push_screen(GroupFormDialog(submit), self._saved)

    def action_edit(self) -> None:
        """Edit the selected group's name, policy and description."""
        group = self.selected_group()
        if group is None:
            return

        async def submit(name: str, policy: str, description: str) -> None:
            saved = await self.service.edit_group(group.name, new_name=name, policy=policy,
                                                  description=description)
            if saved.policy != group.policy:
                self._misfits = await self.service.group_misfits(saved.name)

        self._misfits = ()
        self.app.push_screen(GroupFormDialog(submit, group=group), self._saved)

    #: Pending requests the group's new policy would refuse (set by an edit, shown once saved).
    _misfits: Sequence[tuple[Request, str]] = ()

    def _saved(self, name: str | None) -> None:
        if name is not None:
            self.notify(f"Group '{name}' saved.", title="Groups")
            misfits, self._misfits = self._misfits, ()
            if misfits:
                first = "; ".join(f"'{r.label}': {reason}" for r, reason in misfits[:2])
                more = f" (and {len(misfits) - 2} more)" if len(misfits) > 2 else ""
                self.notify(f"{len(misfits)} pending request(s) in '{name}' do not fit its new "
                            f"policy: {first}{more}", title="Policy changed",
                            severity="warning", timeout=12)
            self._changed()

    def action_remove(self) -> None:
        """Remove the selected group, if nothing is in it (after a confirmation)."""
        group = self.selected_group()
        if group is None:
            return
        counts = self.counts(group.name)
        if counts and sum(counts):
            pending, issued = counts
            self.app.push_screen(ErrorDialog(
                "The group was not removed",
                f"Group '{group.name}' still holds {_plural(pending, 'request')} and "
                f"{_plural(issued, 'certificate')}; move or delete them first."))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._remove(group.name)

        self.app.push_screen(ConfirmDialog(
            f"Remove group '{group.name}'?", "The group is empty; removing it cannot be undone "
            "(an administrator can create it again).", confirm_label="Remove",
            cancel_label="Keep it", danger=True), answered)

    @work(exclusive=True, exit_on_error=False, group="groups-remove")
    async def _remove(self, name: str) -> None:
        try:
            await self.service.remove_group(name)
        except TuiCsrError as exc:
            self.app.push_screen(ErrorDialog.from_error(exc, "The group was not removed"))
            return
        self.notify(f"Group '{name}' removed.", title="Groups")
        self._changed()

    def _changed(self) -> None:
        self.reload()
        self.post_message(self.Changed())
