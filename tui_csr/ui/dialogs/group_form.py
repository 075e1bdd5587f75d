"""Create a certificate group, or edit one: name, policy, description (administrators only;
the service checks and audits)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_csr.core.models import Group
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.text import shown

#: Saves ``(name, policy, description)`` (e.g. ``service.add_group``); raises TuiCsrError to
#: refuse, and the dialog shows the sentence under the name.
SubmitGroup = Callable[[str, str, str], Awaitable[object]]


class GroupFormDialog(ReportsWorkerErrors, Dialog[str | None]):
    """Name, policy and description of a group; dismisses with the name saved, or None.

    Given ``group`` the dialog edits it: the fields start with its values and each can change.
    """

    DEFAULT_CSS = """
    GroupFormDialog #note { color: $text-muted; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without saving",
                id="group_form.cancel"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the group", id="group_form.save"),
    ]

    error_title = "The group cannot be saved"

    def __init__(self, submit: SubmitGroup, *, group: Group | None = None) -> None:
        super().__init__()
        self._submit = submit
        self.group = group

    @property
    def editing(self) -> bool:
        """Whether the dialog edits an existing group (else it creates one)."""
        return self.group is not None

    def compose(self) -> ComposeResult:
        g = self.group
        title = f"Edit group '{shown(g.name)}'" if g else "Create a certificate group"
        with Vertical():
            yield Label(title, id="title", markup=False)
            yield Label("Name:")
            yield Input(g.name if g else "", placeholder="e.g. Web servers", id="name")
            yield Static("", id="problem", classes="-empty", markup=False)
            yield Label("Policy (certificates in the group fall under it):")
            yield Input(g.policy if g else "", placeholder="e.g. web-tls-2026", id="policy")
            yield Static("", id="policy-problem", classes="-empty problem", markup=False)
            yield Label("Description:")
            yield Input(g.description if g else "", id="description")
            yield Static("", id="description-problem", classes="-empty problem", markup=False)
            if g is not None:
                yield Static("A new name is written into every request of the group.",
                             id="note", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save" if g else "Create", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def show_problem(self, text: str | None, field: str = "name") -> None:
        """Show ``text`` under ``name``, ``policy`` or ``description`` (None clears them all)."""
        for ident, problem in (("name", "#problem"), ("policy", "#policy-problem"),
                               ("description", "#description-problem")):
            widget = self.query_one(problem, Static)
            here = text if ident == field else None
            widget.update(here or "")
            widget.set_class(not here, "-empty")

    @on(Input.Changed)
    def _typed(self) -> None:
        # A refusal ("Group 'Demo' already exists.") is about what was typed then: once the
        # text changes it no longer applies.
        self.show_problem(None)

    def value(self, field: str) -> str:
        """The stripped text of ``name``, ``policy`` or ``description``."""
        return self.query_one(f"#{field}", Input).value.strip()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        """Check the name is there, then save through ``submit``."""
        name = self.value("name")
        if not name:
            self.show_problem("Give the group a name.")
            self.query_one("#name", Input).focus()
            return
        g = self.group
        if g is not None and (name, self.value("policy"), self.value("description")) == (
                g.name, g.policy, g.description):
            self.dismiss(None)  # nothing changed
            return
        self.show_problem(None)
        self._save(name, self.value("policy"), self.value("description"))

    @work(exclusive=True, exit_on_error=False, group="group-form")
    async def _save(self, name: str, policy: str, description: str) -> None:
        button = self.query_one("#save", Button)
        button.disabled = True
        try:
            await self._submit(name, policy, description)
        except TuiCsrError as exc:
            field = exc.field if exc.field in {"policy", "description"} else "name"
            self.show_problem(str(exc), field)
            return
        finally:
            button.disabled = False
        self.dismiss(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)
