"""The Generate CSR wizard: CryptoToken, Distinguished Name, SANs, Signum Configurations, Review.

Each step is checked when the user leaves it (Next); the messages appear under the fields they
are about and the step is marked in the list at the side. Apply runs
:meth:`CsrService.generate <tui_csr.service.CsrService.generate>` in a worker while the UI stays
live; a failure keeps every value, so the user can fix it and apply again.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Static
from textual.worker import Worker, WorkerState

from tui_csr.core.models import Request
from tui_csr.errors import TuiCsrError
from tui_csr.service import CsrService, GenerateParams, RenewOverrides
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.text import shown
from tui_csr.ui.wizard.common import Errors, WizardStep, WorkFailed
from tui_csr.ui.wizard.dn_step import DistinguishedNameStep
from tui_csr.ui.wizard.groups_step import GroupsStep
from tui_csr.ui.wizard.review_step import ReviewStep
from tui_csr.ui.wizard.san_step import SanStep
from tui_csr.ui.wizard.step_list import StepList, StepState
from tui_csr.ui.wizard.token_step import CryptoTokenStep

_APPLY_GROUP = "wizard-apply"


class GenerateWizard(Screen[Request | None]):
    """Generate a CSR whose key pair is made on the token; dismisses with the new
    :class:`~tui_csr.core.models.Request`, or None when cancelled."""

    DEFAULT_CSS = """
    GenerateWizard { layout: vertical; }
    GenerateWizard #wizard-title {
        height: 1; padding: 0 1; background: $primary; color: $text; text-style: bold;
    }
    GenerateWizard #wizard-body { height: 1fr; }
    GenerateWizard #wizard-content { width: 1fr; height: 1fr; }
    GenerateWizard #wizard-buttons {
        height: auto; padding: 0 1; align-horizontal: right; background: $panel;
        border-top: hkey $border-blurred;
    }
    GenerateWizard #wizard-buttons > Button { margin-left: 1; min-width: 10; }
    GenerateWizard #wizard-status {
        width: 1fr; height: 3; content-align: left middle; color: $text-error;
    }
    GenerateWizard.-narrow StepList { width: 22; }
    GenerateWizard #apply { display: none; }
    GenerateWizard.-review #apply { display: block; }
    GenerateWizard.-review #next { display: none; }
    """

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]

    BINDINGS = [
        Binding("ctrl+n,alt+right", "next", "Next", tooltip="Check this step and go on",
                id="wizard.next"),
        Binding("ctrl+b,alt+left", "back", "Back", tooltip="Go to the previous step",
                id="wizard.back"),
        Binding("ctrl+g", "apply", "Apply", tooltip="Generate the key pair and sign the CSR",
                id="wizard.apply"),
        Binding("escape", "cancel", "Cancel", tooltip="Leave the wizard (asks first when "
                "something was entered)", id="wizard.cancel"),
        Binding("plus,ctrl+o", "san_add", "Add SAN", tooltip="Add a SAN entry",
                id="wizard.san_add"),
        Binding("minus,ctrl+t", "san_delete", "Delete SAN", tooltip="Delete the focused SAN "
                "entry", id="wizard.san_delete"),
        Binding("ctrl+r", "san_refresh", "Empty 1st SAN", tooltip="Empty the first SAN entry",
                id="wizard.san_refresh"),
    ]

    @dataclass
    class StepChecked(Message):
        """A step was checked on the way from ``source`` to ``target``."""

        source: int
        target: int
        errors: Errors
        label: str | None = None

    @dataclass
    class LabelSuggested(Message):
        """The default key label for the subject typed so far."""

        label: str

    @dataclass
    class ApplyProgress(Message):
        """What Apply is doing now (from the service's progress callback)."""

        text: str

    @dataclass
    class ApplyFinished(Message):
        """Apply ended: with the new request, or with the error that stopped it."""

        request: Request | None
        error: Exception | None = None

    def __init__(self, service: CsrService, *, renews: Request | None = None) -> None:
        super().__init__()
        self.service = service
        #: The request this one renews: the steps start from its values, Apply renews it.
        self.renews = renews
        self.token_step = CryptoTokenStep(service, id="step-token")
        self.dn_step = DistinguishedNameStep(service, id="step-dn")
        self.san_step = SanStep(service, id="step-san")
        self.groups_step = GroupsStep(service, id="step-groups")
        self.review_step = ReviewStep(service, id="step-review")
        self.review_step.params_source = self._collect_params
        self.steps: list[WizardStep] = [self.token_step, self.dn_step, self.san_step,
                                        self.groups_step, self.review_step]
        self.states = [StepState.TODO for _ in self.steps]
        self.current = 0
        self.busy = False
        #: The result the wizard leaves with, once decided (waits while an overlay is on top).
        self._outcome: tuple[Request | None] | None = None
        self._left = False

    def compose(self) -> ComposeResult:
        """Title, step list, the steps, the buttons and the footer."""
        yield Static("", id="wizard-title", markup=False)
        with Horizontal(id="wizard-body"):
            yield StepList([step.LIST_TITLE or step.TITLE for step in self.steps],
                           full_titles=[step.TITLE for step in self.steps], id="step-list")
            with ContentSwitcher(initial=self.steps[0].id, id="wizard-content"):
                yield from self.steps
        with Horizontal(id="wizard-buttons"):
            yield Static("", id="wizard-status", markup=False)
            yield Button("Back", id="back", tooltip="Previous step (ctrl+b)")
            yield Button("Next", id="next", variant="primary", tooltip="Next step (ctrl+n)")
            yield Button("Apply", id="apply", variant="success",
                         tooltip="Generate the key pair and the CSR (ctrl+g)")
            yield Button("Cancel", id="cancel", tooltip="Leave the wizard (escape)")
        yield Footer()

    async def on_mount(self) -> None:
        """Start on the first step (pre-filled from the request being renewed)."""
        if self.renews is not None:
            await self._prefill(self.renews)
        self._show_step(0)

    async def _prefill(self, source: Request) -> None:
        params = self.service.renewal.params_for(source, RenewOverrides())
        self.token_step.prefill(params)
        self.dn_step.prefill(params.dn or source.subject)
        await self.san_step.prefill(list(params.sans))
        self.groups_step.prefill(list(params.groups), params.owner)

    @property
    def title_text(self) -> str:
        """``Generate CSR`` or ``Renew 'label'``."""
        if self.renews is None:
            return "Generate CSR"
        return f"Renew '{shown(self.renews.label)}'"

    # -- moving between steps --------------------------------------------------------------------
    @property
    def step(self) -> WizardStep:
        """The step on screen."""
        return self.steps[self.current]

    def _show_step(self, index: int) -> None:
        self.current = index
        step = self.steps[index]
        self.query_one(ContentSwitcher).current = step.id
        self.query_one(StepList).mark(self.states, index)
        self.query_one("#wizard-title", Static).update(
            f"{self.title_text}  ·  step {index + 1} of {len(self.steps)}: {step.TITLE}")
        self.set_class(step is self.review_step, "-review")
        self.query_one("#wizard-status", Static).update("")
        self.query_one("#back", Button).disabled = index == 0 or self.busy
        if step is self.review_step:
            self.review_step.show_summary([row for s in self.steps for row in s.summary()])
        if step is self.token_step and self.token_step.wants_label():
            self._suggest_label()
        step.entered()
        step.focus_first()
        self.refresh_bindings()

    def action_next(self) -> None:
        """Check the current step; go to the next one when it has no errors."""
        if not self.busy and self.current < len(self.steps) - 1:
            self._check_and_go(self.current, self.current + 1)

    def action_back(self) -> None:
        """Go to the previous step (nothing is checked, nothing is lost)."""
        if not self.busy and self.current > 0:
            self._show_step(self.current - 1)

    @work(exclusive=True, group="wizard-nav", exit_on_error=False)
    async def _check_and_go(self, source: int, target: int) -> None:
        try:
            errors = await self.steps[source].check()
            label = None
            if not errors and self.steps[target] is self.review_step and \
                    self.token_step.wants_label():
                label = await self._free_label()
        except Exception as exc:  # e.g. the token went away while checking the label
            self.post_message(WorkFailed(f"Checking {self.steps[source].TITLE}", exc))
            return
        self.post_message(self.StepChecked(source, target, errors, label))

    @on(StepChecked)
    def _step_checked(self, event: StepChecked) -> None:
        if event.source != self.current or self.busy:
            return  # the user moved on meanwhile
        step = self.steps[event.source]
        step.show_errors(event.errors)
        if event.errors:
            self._mark(event.source, StepState.ERROR)
            count = len(event.errors)
            self.query_one("#wizard-status", Static).update(
                f"{count} problem{'s' if count > 1 else ''} to fix: see under the fields.")
            step.focus_error()
            return
        if event.label:
            self.token_step.set_suggested_label(event.label)
        self.states[event.source] = StepState.DONE
        self._show_step(event.target)

    @on(WizardStep.Fixed)
    def _step_fixed(self, event: WizardStep.Fixed) -> None:
        """A step in error became valid: its ✗ goes (it is checked again on Next)."""
        for index, candidate in enumerate(self.steps):
            if candidate is event.step and self.states[index] is StepState.ERROR \
                    and not candidate.has_errors:
                self._mark(index, StepState.TODO)

    def _mark(self, index: int, state: StepState) -> None:
        self.states[index] = state
        self.query_one(StepList).mark(self.states, self.current)

    async def _free_label(self) -> str | None:
        """The default label for the subject so far, free in the store and on the token."""
        dn = self.dn_step.current_dn()
        if dn is None:
            return None
        base = await self.service.suggest_label(dn)
        candidate = base
        for n in range(2, 100):
            if await self.service.label_problem(candidate) is None:
                return candidate
            candidate = f"{base}-{n}"
        return base

    @work(exclusive=True, group="wizard-label", exit_on_error=False)
    async def _suggest_label(self) -> None:
        try:
            label = await self._free_label()
        except Exception as exc:
            self.post_message(WorkFailed("Suggesting a key label", exc))
            return
        if label:
            self.post_message(self.LabelSuggested(label))

    @on(LabelSuggested)
    def _label_suggested(self, event: LabelSuggested) -> None:
        if self.token_step.wants_label():
            self.token_step.set_suggested_label(event.label)

    # -- apply -----------------------------------------------------------------------------------
    def action_apply(self) -> None:
        """Generate the key pair on the token and the CSR, in a worker."""
        if self.busy or self.step is not self.review_step:
            return
        params = self._collect_params()
        self.review_step.show_apply_error(None)
        self._set_busy(True, "Checking the request…")
        self._generate(params)

    def _collect_params(self) -> GenerateParams:
        """The request as the steps have it now."""
        params = GenerateParams(key_spec="")
        for step in self.steps:
            step.contribute(params)
        return params

    @on(ReviewStep.Refused)
    def _review_refused(self, event: ReviewStep.Refused) -> None:
        """The profiles (or another rule) refuse the request as it stands: the message goes
        under its field, as Apply would show it."""
        self._apply_failed(event.error, prefix="The request is refused")

    @work(exclusive=True, group=_APPLY_GROUP, exit_on_error=False)
    async def _generate(self, params: GenerateParams) -> None:
        try:
            if self.renews is not None:
                request = await self.service.renew(
                    self.renews.id, renew_overrides(self.renews, params),
                    progress=self._progress)
            else:
                request = await self.service.generate(params, progress=self._progress)
        except Exception as exc:  # every failure is shown on the review, never as a traceback
            self.post_message(self.ApplyFinished(None, exc))
            return
        self.post_message(self.ApplyFinished(request))

    def _progress(self, text: str) -> None:
        # Called by the service on the event loop, inside the worker: post, the handler shows it.
        self.post_message(self.ApplyProgress(f"{text}…"))

    @on(ApplyProgress)
    def _show_progress(self, event: ApplyProgress) -> None:
        if self.busy:
            self.review_step.set_busy(event.text)

    def _set_busy(self, busy: bool, text: str | None = None) -> None:
        self.busy = busy
        for button in self.query("#wizard-buttons Button").results(Button):
            button.disabled = busy or (button.id == "back" and self.current == 0)
        self.review_step.set_busy(text if busy else None)
        self.refresh_bindings()

    @on(ApplyFinished)
    def _apply_finished(self, event: ApplyFinished) -> None:
        self._set_busy(False)
        if event.request is not None:
            self.leave(event.request)
        else:
            self._apply_failed(event.error)

    # -- the outcome -----------------------------------------------------------------------------
    def leave(self, result: Request | None) -> None:
        """Close the wizard with ``result``. ``Screen.dismiss`` pops whatever screen is on top:
        while Help or the command palette is open over the wizard (opened during generation)
        the wizard waits until that overlay is closed by the user, then leaves itself."""
        if self._left or self._outcome is not None:
            return
        self._outcome = (result,)
        # Not is_current: that is also true under a modal overlay (Help, the palette).
        if self.app.screen is self:
            self._leave_now()

    def on_screen_resume(self) -> None:
        """Back on top (an overlay closed): leave now if the outcome was decided meanwhile."""
        if self._outcome is not None:
            self._leave_now()

    def _leave_now(self) -> None:
        if self._left or self._outcome is None:
            return
        self._left = True
        self.dismiss(self._outcome[0])

    @on(WorkFailed)
    def _work_failed(self, event: WorkFailed) -> None:
        self.notify(f"{event.what} failed: {_describe(event.error)}", severity="error")

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        # The workers catch what they can; this is the net for the rest (and cancellation).
        worker = event.worker
        if worker.group == _APPLY_GROUP and event.state is WorkerState.CANCELLED:
            self._set_busy(False)
            self._apply_failed(None)
        elif event.state is WorkerState.ERROR:
            if worker.group == _APPLY_GROUP:
                self._set_busy(False)
                self._apply_failed(worker.error if isinstance(worker.error, Exception) else None)
            else:
                self.notify(_describe(worker.error), title="Something went wrong",
                            severity="error")

    def _apply_failed(self, error: BaseException | None, prefix: str = "Apply failed") -> None:
        if error is None:
            self.review_step.show_apply_error("Apply was cancelled; nothing was stored.")
            return
        message = _describe(error)
        field = error.field if isinstance(error, TuiCsrError) else None
        where = ""
        for index, step in enumerate(self.steps):
            if step.owns(field) and field is not None and field != "apply":
                step.show_error(field, getattr(error, "message", message))
                if step is self.review_step:
                    break
                self._mark(index, StepState.ERROR)
                where = f" Fix it on step {index + 1} ({step.TITLE}) and apply again."
                break
        self.review_step.show_apply_error(f"{prefix}: {message}{where}")
        self.query_one("#apply", Button).focus()

    # -- leaving ---------------------------------------------------------------------------------
    def action_cancel(self) -> None:
        """Leave; asks first when something was typed."""
        if self.busy:
            return
        if not any(step.is_dirty() for step in self.steps):
            self.leave(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.leave(None)

        self.app.push_screen(ConfirmDialog(
            "Discard this CSR?", "What you entered in the wizard will be lost.",
            confirm_label="Discard", cancel_label="Keep editing", danger=True), answered)

    # -- SAN keys --------------------------------------------------------------------------------
    async def action_san_add(self) -> None:
        """Add a SAN entry."""
        await self.san_step.add_entry()

    async def action_san_delete(self) -> None:
        """Delete the focused SAN entry."""
        await self.san_step.delete_entry()

    def action_san_refresh(self) -> None:
        """Empty the first SAN entry."""
        self.san_step.refresh_first()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys only where they make sense (the footer follows)."""
        if action.startswith("san_"):
            return not self.busy and self.step is self.san_step and self.san_step.supported
        if action == "apply":
            return (not self.busy) if self.step is self.review_step else False
        if action == "next":
            return False if self.step is self.review_step else (not self.busy or None)
        # While the key is generated nothing can stop it safely (the token is mid-call and the
        # pair must be stored or destroyed): Back and Cancel leave the footer instead of being
        # offered and doing nothing.
        if action == "back":
            return False if self.busy else (None if self.current == 0 else True)
        if action == "cancel":
            return not self.busy
        return True

    # -- buttons ---------------------------------------------------------------------------------
    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


def renew_overrides(source: Request, params: GenerateParams) -> RenewOverrides:
    """What the wizard's values change of ``source``. An unchanged subject is not passed on,
    so the renewal keeps the source's subject byte for byte."""
    from tui_csr.core.dn import parse_dn

    dn: str | None = params.dn
    try:
        if dn is not None and parse_dn(dn).multi_fields == parse_dn(source.subject).multi_fields:
            dn = None
    except TuiCsrError:
        pass  # a subject the parser refuses: the renewal says why
    return RenewOverrides(
        key_spec=params.key_spec or None, hash=params.hash, pss=params.pss, dn=dn,
        sans=list(params.sans), groups=list(params.groups), owner=params.owner or "",
        label=params.label, always_authenticate=params.always_authenticate,
        profile=params.profile, key_usage=params.key_usage, eku=params.eku, ca=params.ca,
        path_len=params.path_len)


def _describe(error: BaseException | None) -> str:
    """One line for the user: the message and the CKR code for our errors, the type otherwise."""
    if isinstance(error, TuiCsrError):
        return str(error)
    if error is None:
        return "Cancelled."
    return f"Unexpected error ({type(error).__name__}): {error}"
