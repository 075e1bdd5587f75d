"""Step 4, Signum Configurations: the certificate groups the request joins, and its owner."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Input, SelectionList, Static

from tui_csr.core.models import Group
from tui_csr.errors import InputError, TuiCsrError
from tui_csr.service import GenerateParams, validate_owner
from tui_csr.ui.text import literal, shown
from tui_csr.ui.widgets.toggles import StateSelectionList
from tui_csr.ui.wizard.common import Errors, FieldError, FieldRow, WizardStep, WorkFailed

NO_GROUPS = ("No certificate group exists yet. Every request must belong to one, and only an "
             "administrator can create groups (tui-csr groups add NAME).")


class GroupsStep(WizardStep):
    """Certificate groups (at least one) and an optional owner."""

    TITLE = "Signum Configurations"
    LIST_TITLE = "Configurations"
    FIELDS = frozenset({"group", "owner"})

    DEFAULT_CSS = """
    GroupsStep #groups { height: auto; max-height: 8; border: none; padding: 0; }
    GroupsStep #groups:focus { background-tint: $primary 15%; }
    GroupsStep #groups-title { color: $text-muted; }
    GroupsStep #no-groups { display: none; height: auto; margin-bottom: 1; }
    GroupsStep.-empty #no-groups { display: block; }
    GroupsStep.-empty #groups, GroupsStep.-empty #groups-title { display: none; }
    GroupsStep #no-groups-text { color: $text-warning; }
    GroupsStep #create-group { height: auto; margin-top: 1; border-left: outer $primary;
                                padding-left: 1; }
    GroupsStep #create-group-title { text-style: bold; }
    GroupsStep #create-group > Button { margin-top: 1; }
    GroupsStep .owner-row { margin-top: 1; }
    """

    @dataclass
    class GroupsLoaded(Message):
        """The store's groups, and the name to select (a group just created)."""

        groups: list[Group]
        select: str | None = None

    @dataclass
    class CreateFailed(Message):
        """Creating a group was refused."""

        message: str

    def compose(self) -> ComposeResult:
        """The group list, the create-a-group form (administrators) and the owner."""
        yield from self.heading()
        yield Static("Certificate groups (at least one; space toggles):", id="groups-title")
        yield StateSelectionList(id="groups")
        yield FieldError(id="group-error", wide=True)
        with Vertical(id="no-groups"):
            yield Static(NO_GROUPS, id="no-groups-text", markup=False)
            if self.service.is_admin:
                with Vertical(id="create-group"):
                    yield Static("You are an administrator: create a group here.",
                                 id="create-group-title")
                    yield FieldRow("Group name", Input(id="new-group", compact=True,
                                                       placeholder="e.g. Web servers"))
                    yield FieldRow("Policy", Input(id="new-group-policy", compact=True,
                                                   placeholder="optional policy name"))
                    yield FieldError(id="new-group-error")
                    yield Button("Create group", id="create-group-button", compact=True,
                                 variant="primary")
        with Vertical(classes="owner-row"):
            yield FieldRow("Owner", Input(id="owner", compact=True,
                                          placeholder="optional: user name or e-mail"))
            yield FieldError(id="owner-error")

    #: Groups to tick once the list is read (a renewal's source's).
    _preselect: set[str] = set()

    def prefill(self, groups: list[str], owner: str | None) -> None:
        """Start from a renewal's source: its groups ticked (once read), its owner."""
        self._preselect = set(groups)
        self.query_one("#owner", Input).value = owner or ""
        self.reload()

    def on_mount(self) -> None:
        """Read the groups."""
        self.reload()

    def entered(self) -> None:
        """Groups may have been created elsewhere meanwhile: read them again."""
        self.reload()

    @work(exclusive=True, group="groups", exit_on_error=False)
    async def reload(self, select: str | None = None) -> None:
        """Read the groups from the store (off the loop) and show them."""
        try:
            groups = await self.service.list_groups()
        except Exception as exc:  # shown by the wizard
            self.post_message(WorkFailed("Reading the certificate groups", exc))
            return
        self.post_message(self.GroupsLoaded(groups, select))

    @on(GroupsLoaded)
    def _show_groups(self, event: GroupsLoaded) -> None:
        selection = self.query_one("#groups", SelectionList)
        keep = set(selection.selected) | self._preselect
        self._preselect = set()
        if event.select:
            keep.add(event.select)
        selection.clear_options()
        for group in event.groups:
            prompt = literal(group.name)
            if group.policy:
                prompt.append(f" · policy {shown(group.policy)}", style="dim")
            selection.add_option((prompt, group.name, group.name in keep))
        if event.groups and selection.highlighted is None:
            selection.highlighted = 0  # space toggles the highlighted group: have one
        self.set_class(not event.groups, "-empty")
        if event.groups:
            self.query_one("#group-error", FieldError).clear()
            if event.select:
                selection.focus()

    @on(SelectionList.SelectedChanged, "#groups")
    def _selection_changed(self) -> None:
        if self.groups:
            self.query_one("#group-error", FieldError).clear()

    @on(Input.Changed, "#owner")
    def _owner_typed(self) -> None:
        self.query_one("#owner-error", FieldError).clear()

    # -- creating a group (administrators) -------------------------------------------------------
    @on(Button.Pressed, "#create-group-button")
    @on(Input.Submitted, "#new-group, #new-group-policy")
    def _create_pressed(self) -> None:
        name = self.query_one("#new-group", Input).value
        policy = self.query_one("#new-group-policy", Input).value
        self.query_one("#new-group-error", FieldError).clear()
        self._create(name, policy)

    @work(exclusive=True, group="create-group", exit_on_error=False)
    async def _create(self, name: str, policy: str) -> None:
        try:
            group = await self.service.add_group(name, policy=policy)
        except TuiCsrError as exc:
            self.post_message(self.CreateFailed(str(exc)))
            return
        except Exception as exc:  # not one of ours: say what it is, still under the form
            self.post_message(self.CreateFailed(f"Unexpected error ({type(exc).__name__}): {exc}"))
            return
        self.notify(f"Group '{group.name}' created.")
        self.reload(group.name)

    @on(CreateFailed)
    def _create_failed(self, event: CreateFailed) -> None:
        self.query_one("#new-group-error", FieldError).show(event.message)

    # -- WizardStep ------------------------------------------------------------------------------
    @property
    def groups(self) -> list[str]:
        """The chosen group names."""
        return list(self.query_one("#groups", SelectionList).selected)

    @property
    def owner(self) -> str:
        """The owner as typed."""
        return self.query_one("#owner", Input).value.strip()

    async def check(self) -> Errors:
        """At least one group; an owner, when given, must be a plausible user name."""
        errors: Errors = {}
        if not self.query_one("#groups", SelectionList).option_count:
            errors["group"] = ("There is no group to choose: create one below." if
                               self.service.is_admin else "There is no group to choose: ask an "
                               "administrator to create one.")
        elif not self.groups:
            errors["group"] = "Choose at least one certificate group."
        try:
            validate_owner(self.owner)
        except InputError as exc:
            errors["owner"] = exc.message
        return errors

    def is_dirty(self) -> bool:
        """A group chosen or an owner typed."""
        return bool(self.groups or self.owner)

    def contribute(self, params: GenerateParams) -> None:
        """Groups and owner."""
        params.groups = self.groups
        params.owner = self.owner or None

    def summary(self) -> list[tuple[str, str]]:
        """Groups and owner."""
        return [("Groups", ", ".join(self.groups) or "-"), ("Owner", self.owner or "-")]
