"""A request's Actions menu (``a``) and the controller that carries out the chosen action.

:func:`open_actions` is the one entry point: it opens :class:`ActionsMenu` for a request and
hands the choice to :class:`RequestActions`, which opens the action's dialog, awaits the service
in a worker owned by the app (so closing a screen never cancels a deletion half-way), reports
refusals in the dialog or an :class:`ErrorDialog`, and calls ``on_change`` after anything that
changed the store so the caller can reload its tables.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_csr.core.models import Request, Status
from tui_csr.errors import TuiCsrError
from tui_csr.ui.dialogs.base import Dialog
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.delete import DeleteDialog, deleted_text
from tui_csr.ui.dialogs.edit_groups import EditGroupsDialog
from tui_csr.ui.dialogs.error import ErrorDialog, error_dialog_for
from tui_csr.ui.dialogs.import_cert import ImportCertDialog
from tui_csr.ui.dialogs.save import (
    SaveDialog,
    copy_certificate,
    copy_csr,
    safe_file_name,
    save_certificate,
    save_csr,
    write_atomic,
)
from tui_csr.ui.text import shown

if TYPE_CHECKING:
    from tui_csr.attestation import AttestationResult
    from tui_csr.service import CsrService
    from tui_csr.services.certificates import ImportResult

#: Said when the service offers no key attestation at all (or not yet).
NO_ATTESTATION = "This token does not support key attestation"

class Action(enum.Enum):
    """What the Actions menu offers; the menu dismisses with one of these (or None)."""

    VIEW = "view"
    COPY = "copy"
    DOWNLOAD = "download"
    VIEW_CERTIFICATE = "view-certificate"
    COPY_CERTIFICATE = "copy-certificate"
    DOWNLOAD_CERTIFICATE = "download-certificate"
    ATTESTATION = "attestation"
    EDIT = "edit"
    IMPORT = "import"
    RENEW = "renew"
    DELETE = "delete"


#: (action, menu text) in menu order.
ACTIONS: tuple[tuple[Action, str], ...] = (
    (Action.VIEW, "View CSR"),
    (Action.COPY, "Copy CSR to the clipboard"),
    (Action.DOWNLOAD, "Download CSR (PEM / DER)…"),
    (Action.VIEW_CERTIFICATE, "View certificate"),
    (Action.COPY_CERTIFICATE, "Copy certificate to the clipboard"),
    (Action.DOWNLOAD_CERTIFICATE, "Download certificate (PEM / DER / chain)…"),
    (Action.ATTESTATION, "Download key attestation…"),
    (Action.EDIT, "Edit groups and owner…"),
    (Action.IMPORT, "Import certificate…"),
    (Action.RENEW, "Renew (a new key pair, or the same)…"),
    (Action.DELETE, "Delete request (destroys the key)…"),
)
CERTIFICATE_ACTIONS = frozenset({Action.VIEW_CERTIFICATE, Action.COPY_CERTIFICATE,
                                  Action.DOWNLOAD_CERTIFICATE})


class ViewRequested(Message):
    """Show ``request`` decoded: its CSR (``certificate=False``) or its certificate. Posted to
    the app, which opens the screen (see :mod:`tui_csr.ui.navigation`): no dialog or tab
    imports a screen to open it or to test what is on top."""

    def __init__(self, request: Request, *, certificate: bool = False,
                 on_change: OnChange | None = None, save_directory: Path | None = None) -> None:
        super().__init__()
        self.request = request
        self.certificate = certificate
        self.on_change = on_change
        self.save_directory = save_directory


class RenewRequested(Message):
    """Open the Generate CSR wizard pre-filled from ``request`` to renew it (posted to the
    app, like :class:`ViewRequested`: the menu does not import the wizard)."""

    def __init__(self, request: Request, *, on_change: OnChange | None = None) -> None:
        super().__init__()
        self.request = request
        self.on_change = on_change


class RequestDeleted(Message):
    """Request ``request_id`` is gone; screens showing it close themselves."""

    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id

OnChange = Callable[[], None]


async def attestation_problem(service: CsrService, request: Request | None = None
                              ) -> str | None:
    """None when "Download key attestation" can be offered for ``request`` (the token can
    attest, or the request has an imported attestation, ``tui-csr attestation import``); else
    the reason it cannot. Cheap: no token or network call."""
    try:
        if request is not None:
            return service.attestation_available_for(request)
        return service.attestation_available()
    except TuiCsrError as exc:
        return str(exc)


class ActionsMenu(Dialog[Action | None]):
    """The actions for ``request``; dismisses with an :class:`Action` or None.

    ``attestation`` is None when key attestation works, else the reason shown beside the
    disabled entry. Import is disabled for a request that already has its certificate; the
    certificate's entries are listed for an issued request only.
    """

    DEFAULT_CSS = """
    ActionsMenu > Vertical { width: 64; }
    ActionsMenu #title { margin-bottom: 0; }
    ActionsMenu #subject { color: $text-muted; margin-bottom: 1; }
    ActionsMenu OptionList { height: auto; max-height: 13; }
    ActionsMenu .reason { color: $text-muted; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close the menu", id="actions.close"),
        Binding("j", "down", "Down", show=False, tooltip="Next action", id="actions.down"),
        Binding("k", "up", "Up", show=False, tooltip="Previous action", id="actions.up"),
    ]

    def __init__(self, request: Request, *, attestation: str | None = NO_ATTESTATION) -> None:
        super().__init__()
        self.request = request
        self.attestation = attestation

    def disabled_reason(self, action: Action) -> str | None:
        """Why ``action`` is not offered for this request (None: it is)."""
        if action is Action.ATTESTATION:
            return self.attestation
        status = self.request.status
        if status is Status.RETIRED:
            if action in (Action.IMPORT, Action.EDIT, Action.ATTESTATION):
                return "This request is retired: its key pair is no longer in use."
            if action is Action.RENEW:
                return "This request is retired; renew its successor."
        if action is Action.IMPORT and status is Status.ISSUED:
            return "This request already has its certificate."
        if action is Action.RENEW and self.request.renewed_by:
            return f"Already renewed by request {self.request.renewed_by[:8]}."
        return None

    @property
    def actions(self) -> list[tuple[Action, str]]:
        """The entries listed for this request."""
        issued = (self.request.status in (Status.ISSUED, Status.RETIRED)
                  and bool(self.request.certificate_pem))
        return [(a, t) for a, t in ACTIONS if issued or a not in CERTIFICATE_ACTIONS]

    def compose(self) -> ComposeResult:
        r = self.request
        options = [Option(text, id=action.value,
                          disabled=self.disabled_reason(action) is not None)
                   for action, text in self.actions]
        with Vertical():
            yield Label(shown(f"Actions: {r.label}"), id="title", markup=False)
            yield Static(shown(r.subject), id="subject", markup=False)
            yield OptionList(*options, id="actions", markup=False)
            for action, text in self.actions:
                reason = self.disabled_reason(action)
                if reason:
                    end = "" if reason.endswith(".") else "."
                    yield Static(f"{text.rstrip('…')}: {reason}{end}", classes="reason",
                                 markup=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(Action(event.option_id))

    def action_down(self) -> None:
        """Highlight the next action."""
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        """Highlight the previous action."""
        self.query_one(OptionList).action_cursor_up()

    def action_close(self) -> None:
        """Close without doing anything."""
        self.dismiss(None)


def attestation_files(result: AttestationResult | bytes, path: Path) -> list[tuple[Path, bytes]]:
    """Every file to write for an attestation ``result`` saved as ``path``: its own ``files``
    (e.g. a Fortanix chain beside the main file) or, for plain bytes, just ``path``."""
    if isinstance(result, bytes | bytearray):
        return [(path, bytes(result))]
    return list(result.files(path))


class AttestationSaveDialog(SaveDialog):
    """Save a fetched key attestation (bytes, or a result with ``files()``), with the save
    dialog's rules: a file name in a folder that exists, and a confirmation before overwriting
    the main file; any extra file that already exists is refused, never replaced."""

    DEFAULT_CSS = """
    AttestationSaveDialog #summary { color: $text-muted; height: auto; max-height: 8; }
    """

    def __init__(self, request: Request, result: AttestationResult | bytes, *,
                 directory: Path | None = None) -> None:
        super().__init__(request, directory=directory)
        self.result = result

    def compose(self) -> ComposeResult:
        fetched = None if isinstance(self.result, bytes | bytearray) else self.result
        summary = fetched.summary_lines if fetched is not None else None
        suffix = fetched.default_suffix if fetched is not None else ".p7b"
        with Vertical():
            yield Label(f"Save the key attestation of '{self.request.label}'", id="title",
                        markup=False)
            if callable(summary):
                yield Static("\n".join(summary()), id="summary", markup=False)
            yield Label("File (a relative name is saved in the folder below):")
            yield Input(safe_file_name(f"{self.request.label}-attestation", suffix), id="path")
            yield Static(f"Folder: {self.directory}", id="folder", markup=False)
            yield Static("", id="problem", classes="-empty", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    @work(exclusive=True, exit_on_error=False, group="save")
    async def _write(self, path: Path) -> None:
        try:
            files = attestation_files(self.result, path)
            clash = [p for p, _ in files[1:] if p.exists()]
            if clash:
                self.show_problem(f"{clash[0]} already exists; choose another name.")
                return
            for target, data in files:
                await asyncio.to_thread(write_atomic, target, data)
        except OSError as exc:
            self.show_problem(f"{path} cannot be written: {exc.strerror or exc}.")
            return
        self.dismiss(path)


class RequestActions:
    """Carries out one action for one request on ``app``.

    Service calls run in app-owned workers (``exit_on_error=False``); each worker catches its
    own failure and shows it in an :class:`ErrorDialog`, so it never reaches the app's loop as
    an unhandled error and never depends on which screen started it.
    """

    def __init__(self, app: App, service: CsrService, request: Request,
                 on_change: OnChange | None = None, *, save_directory: Path | None = None
                 ) -> None:
        self.app = app
        self.service = service
        self.request = request
        self.on_change = on_change or (lambda: None)
        self.save_directory = save_directory

    def run(self, action: Action | None) -> None:
        """Start ``action`` (None does nothing)."""
        handlers: dict[Action, Callable[[], None]] = {
            Action.VIEW: self.view, Action.COPY: self.copy, Action.DOWNLOAD: self.download,
            Action.VIEW_CERTIFICATE: self.view_certificate,
            Action.COPY_CERTIFICATE: self.copy_certificate,
            Action.DOWNLOAD_CERTIFICATE: self.download_certificate,
            Action.ATTESTATION: self.attestation, Action.EDIT: self.edit,
            Action.IMPORT: self.import_certificate, Action.RENEW: self.renew,
            Action.DELETE: self.delete,
        }
        if action is not None:
            handlers[action]()

    def _start(self, work: Coroutine[Any, Any, None], title: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
                self.app.push_screen(error_dialog_for(exc, title))

        self.app.run_worker(guarded(), group="request-actions", exit_on_error=False)

    def _changed(self) -> None:
        self.on_change()

    # -- the actions --------------------------------------------------------------------------
    def view(self) -> None:
        """Open the decoded view (the app skips it when the screen on top shows it already)."""
        self.app.post_message(ViewRequested(self.request, on_change=self.on_change,
                                            save_directory=self.save_directory))

    def view_certificate(self) -> None:
        """Open the decoded certificate."""
        self.app.post_message(ViewRequested(self.request, certificate=True,
                                            save_directory=self.save_directory))

    def copy_certificate(self) -> None:
        """Copy the certificate's PEM to the clipboard."""
        copy_certificate(self.app, self.request)

    def download_certificate(self) -> None:
        """Save the certificate as PEM, DER or the chain as PEM."""
        save_certificate(self.app, self.request, self.save_directory)

    def copy(self) -> None:
        """Copy the PEM to the clipboard (OSC 52; also kept in ``app.clipboard``)."""
        copy_csr(self.app, self.request, otherwise="use Download instead")

    def download(self) -> None:
        """Save the CSR as PEM or DER (the save dialog asks before overwriting)."""
        save_csr(self.app, self.request, self.save_directory)

    def attestation(self) -> None:
        """Fetch the key attestation, then ask where to save it."""
        self._start(self._attestation(), "The key attestation cannot be downloaded")

    async def _attestation(self) -> None:
        reason = await attestation_problem(self.service, self.request)
        if reason:
            self.app.notify(f"{reason}.", title="No key attestation", severity="warning")
            return
        self.app.notify(f"Fetching the key attestation of '{self.request.label}'…")
        result = await self.service.attestation(self.request.id)

        def saved(path: Path | None) -> None:
            if path is not None:
                self.app.notify(f"Saved {path}", title="Key attestation saved")

        self.app.push_screen(AttestationSaveDialog(self.request, result,
                                                   directory=self.save_directory), saved)

    def edit(self) -> None:
        """Change the groups and owner (the dialog applies it, so refusals show there)."""
        self._start(self._edit(), "The groups cannot be changed")

    async def _edit(self) -> None:
        groups = [g.name for g in await self.service.list_groups()]

        async def apply(chosen: list[str], owner: str | None) -> None:
            self.request = await self.service.set_groups(self.request.id, chosen, owner,
                                                         change_owner=True)

        def done(result: tuple[list[str], str | None] | None) -> None:
            if result is None:
                return
            chosen, owner = result
            self.app.notify(f"'{self.request.label}' is now in {', '.join(chosen)}; owner "
                            f"{owner or 'none'}.", title="Groups changed")
            self._changed()

        self.app.push_screen(EditGroupsDialog(self.request, groups, apply=apply), done)

    def renew(self) -> None:
        """Ask how: a new key pair opens the wizard pre-filled from this request (Apply makes
        its successor); the same key pair makes the successor's CSR right away."""
        from tui_csr.ui.dialogs.renew_choice import RenewChoiceDialog, RenewHow

        def chosen(how: RenewHow | None) -> None:
            if how is RenewHow.NEW_KEY:
                self.app.post_message(RenewRequested(self.request, on_change=self.on_change))
            elif how is RenewHow.SAME_KEY:
                self._start(self._renew_same_key(),
                            f"'{self.request.label}' was not renewed")

        self.app.push_screen(RenewChoiceDialog(self.request), chosen)

    async def _renew_same_key(self) -> None:
        new = await self.service.renew(self.request.id, None, same_key=True)
        self.app.notify(f"'{new.label}' renews '{self.request.label}' with the same key pair; "
                        "send its CSR to the CA.", title="Renewed")
        self._changed()
        self.app.post_message(ViewRequested(new, on_change=self.on_change,
                                            save_directory=self.save_directory))

    def offer_retire(self, old_id: str) -> None:
        """The certificate of a renewal was imported: offer to retire the request it renews
        (its key pair destroyed, the record kept as retired)."""
        self._start(self._offer_retire(old_id), "The old request was not retired")

    async def _offer_retire(self, old_id: str) -> None:
        old = await self.service.get_request(old_id)
        if old.status is Status.RETIRED:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._start(self._retire(old), f"'{old.label}' was not retired")

        self.app.push_screen(ConfirmDialog(
            "Retire the old request?",
            f"'{self.request.label}' renews '{old.label}' and now has its certificate. Retire "
            f"'{old.label}'? Its key pair is destroyed on token '{old.token_label}' (unless the "
            "renewal uses the same key); the record stays, marked retired.",
            confirm_label="Retire", cancel_label="Keep it", danger=True), answered)

    async def _retire(self, old: Request) -> None:
        result = await self.service.retire_request(old.id)
        key = ("its key pair was destroyed" if result.key_destroyed
               else "its key pair stays: the renewal uses it")
        self.app.notify(f"'{old.label}' is retired; {key}.", title="Request retired")
        self._changed()

    def import_certificate(self) -> None:
        """Import the CA's certificate; a refusal stays in the dialog."""
        async def attempt(data: bytes) -> ImportResult:
            return await self.service.import_certificate(self.request.id, data)

        def done(result: ImportResult | None) -> None:
            if result is None:
                return
            self.request = result.request
            for warning in result.warnings:
                self.app.notify(warning, title="Imported with a warning", severity="warning")
            cert = result.certificate
            self.app.notify(f"Certificate serial {cert.serial} from {cert.issuer} is on the "
                            f"token with the key of '{result.request.label}'; the request moved "
                            "to the Certificates tab.", title="Certificate imported")
            self._changed()
            if result.request.renews:
                self.offer_retire(result.request.renews)

        self.app.push_screen(ImportCertDialog(self.request, attempt,
                                              directory=self.save_directory), done)

    def delete(self) -> None:
        """Confirm (the label typed), then destroy the key pair and the record."""
        def confirmed(yes: bool | None) -> None:
            if yes:
                self._start(self._delete(), "The request was not deleted")

        self.app.push_screen(DeleteDialog(self.request, key_gone=self.key_gone), confirmed)

    @property
    def key_gone(self) -> bool:
        """Whether the start-up scan found this request's key gone from the token."""
        return self.request.id in getattr(self.app, "lost_key_ids", ())

    async def _delete(self) -> None:
        request = self.request
        try:
            await self.service.delete_request(request.id)
        except TuiCsrError as exc:
            self.app.push_screen(ErrorDialog.from_error(exc, f"'{request.label}' was not "
                                                             "deleted"))
            return
        # A screen showing a request that no longer exists has nothing left to show.
        for screen in self.app.screen_stack:
            screen.post_message(RequestDeleted(request.id))
        self.app.notify(deleted_text(request, key_gone=self.key_gone), title="Request deleted")
        self._changed()


def open_actions(host: App | DOMNode, service: CsrService, request: Request,
                 on_change: OnChange | None = None, *, save_directory: Path | None = None
                 ) -> None:
    """Open the Actions menu for ``request`` and carry out what the user picks.

    ``host`` is the app or any widget or screen on it; ``on_change`` is called (on the event
    loop) after an action changed the store: edit, import, delete.
    """
    app = host if isinstance(host, App) else host.app

    async def show() -> None:
        reason = await attestation_problem(service, request)
        controller = RequestActions(app, service, request, on_change,
                                    save_directory=save_directory)
        app.push_screen(ActionsMenu(request, attestation=reason), controller.run)

    app.run_worker(show(), group="request-actions", exit_on_error=False)
