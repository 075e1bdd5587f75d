"""Delete a request: say plainly that the private key is destroyed for good, and make the user
type the request's label before the Delete button works."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui_csr.core.models import Request, Status


def delete_warning(request: Request) -> str:
    """The sentence the dialog shows: what is destroyed, where, and that it cannot come back."""
    token = request.token_label or "?"
    text = (f"Deleting '{request.label}' destroys its private key on the HSM (token '{token}', "
            f"key id {request.key_id}). The key cannot be recovered: no certificate issued for "
            "this CSR will ever be usable again.")
    if request.status is Status.ISSUED:
        text += " The imported certificate is removed from the token as well."
    return text + " The request record is removed after the key."


class DeleteDialog(ModalScreen[bool]):
    """Confirm deleting ``request``; dismisses True only after the user typed its label.

    Escape (or Cancel) dismisses False. Delete stays disabled until the field holds exactly the
    label, so a stray enter can never destroy a key.
    """

    DEFAULT_CSS = """
    DeleteDialog { align: center middle; }
    DeleteDialog > Vertical {
        width: 76; max-width: 95%; height: auto; max-height: 100%; padding: 1 2;
        border: thick $error; background: $surface;
    }
    DeleteDialog #title { text-style: bold; color: $text-error; margin-bottom: 1; }
    DeleteDialog #subject { color: $text-muted; }
    DeleteDialog #warning { margin: 1 0; }
    DeleteDialog #hint { color: $text-warning; height: auto; }
    DeleteDialog #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    DeleteDialog Button { margin-left: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the request and its key",
                id="delete.cancel"),
    ]

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Label(f"Delete request '{r.label}'?", id="title", markup=False)
            yield Static(r.subject, id="subject", markup=False)
            yield Static(delete_warning(r), id="warning", markup=False)
            yield Label(f"Type the label {r.label} to confirm:", id="prompt", markup=False)
            yield Input(placeholder=r.label, id="confirm-label")
            yield Static("", id="hint", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Delete and destroy the key", id="delete", variant="error",
                             disabled=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-label", Input).focus()

    @property
    def confirmed(self) -> bool:
        """Whether the field holds exactly the request's label."""
        return self.query_one("#confirm-label", Input).value.strip() == self.request.label

    @on(Input.Changed, "#confirm-label")
    def _typed(self) -> None:
        self.query_one("#delete", Button).disabled = not self.confirmed
        self.query_one("#hint", Static).update("")

    @on(Input.Submitted, "#confirm-label")
    @on(Button.Pressed, "#delete")
    def delete(self) -> None:
        """Delete, if the label was typed; else say what is missing."""
        if self.confirmed:
            self.dismiss(True)
        else:
            self.query_one("#hint", Static).update(
                f"Type the label exactly ({self.request.label}) to enable Delete.")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Keep everything."""
        self.dismiss(False)
