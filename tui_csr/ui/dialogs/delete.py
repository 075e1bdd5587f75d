"""Delete a request: say plainly that the private key is destroyed for good, and make the user
type the request's label before the Delete button works."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_csr.core.models import Request, Status
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.text import shown


def delete_warning(request: Request, *, key_gone: bool = False) -> str:
    """The sentence the dialog shows: what is destroyed, where, and that it cannot come back
    (for a request whose key is already gone from the token: that only the record goes)."""
    token = request.token_label or "?"
    if request.status is Status.RETIRED:
        return (f"'{request.label}' is retired: its key pair was destroyed when it was retired "
                "(or is used by its renewal and stays). Deleting removes only the request "
                "record; the audit log keeps its entries.")
    if key_gone:
        return (f"The private key of '{request.label}' is no longer on token '{token}' (key id "
                f"{request.key_id}), so no certificate for this CSR can be used. Deleting removes "
                "only the request record.")
    text = (f"Deleting '{request.label}' destroys its private key on the HSM (token '{token}', "
            f"key id {request.key_id}). The key cannot be recovered: no certificate issued for "
            "this CSR will ever be usable again.")
    if request.status is Status.ISSUED:
        text += " The imported certificate is removed from the token as well."
    return text + " The request record is removed after the key."


def deleted_text(request: Request, *, key_gone: bool = False) -> str:
    """What to say once ``request`` was deleted."""
    if key_gone:
        return (f"The request '{request.label}' was removed; its key was already gone from "
                f"token '{request.token_label}'.")
    return (f"The key pair of '{request.label}' was destroyed on token "
            f"'{request.token_label}' and the request removed.")


class DeleteDialog(Dialog[bool]):
    """Confirm deleting ``request``; dismisses True only after the user typed its label.

    Escape (or Cancel) dismisses False. Delete stays disabled until the field holds exactly the
    label, so a stray enter can never destroy a key.
    """

    DEFAULT_CSS = """
    DeleteDialog > Vertical { width: 76; border: thick $error; }
    DeleteDialog #title { color: $text-error; }
    DeleteDialog #subject { color: $text-muted; }
    DeleteDialog #warning { margin: 1 0; }
    DeleteDialog #hint { color: $text-warning; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the request and its key",
                id="delete.cancel"),
    ]

    def __init__(self, request: Request, *, key_gone: bool = False) -> None:
        super().__init__()
        self.request = request
        self.key_gone = key_gone

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Label(shown(f"Delete request '{r.label}'?"), id="title", markup=False)
            yield Static(shown(r.subject), id="subject", markup=False)
            yield Static(shown(delete_warning(r, key_gone=self.key_gone)), id="warning",
                         markup=False)
            yield Label(shown(f"Type the label {r.label} to confirm:"), id="prompt",
                        markup=False)
            yield Input(placeholder=r.label, id="confirm-label")
            yield Static("", id="hint", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Delete the record" if self.key_gone
                             else "Delete and destroy the key", id="delete", variant="error",
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
