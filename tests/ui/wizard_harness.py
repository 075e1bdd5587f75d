"""A minimal app around the Generate CSR wizard, so the wizard's tests need nothing of the shell.

The app pushes :class:`GenerateWizard` on mount and records what it dismisses with. With
``tick=True`` a 10 ms timer records ``time.perf_counter()`` at every tick: the gaps between ticks
show whether the event loop was ever blocked.
"""

from __future__ import annotations

import time
from datetime import date

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from tests.integration import conftest as integration
from tui_csr.core.models import Request
from tui_csr.service import CsrService
from tui_csr.ui.screens.wizard import GenerateWizard
from tui_csr.ui.wizard import FieldError

#: The fixtures the wizard tests use (a data folder holding group "Web", a logged-in service on
#: the session's SoftHSM token); test modules bind them to module names to use them.
data_dir = integration.data_dir
service = integration.service
GROUP = integration.GROUP

#: Snapshots and default labels use this date.
TODAY = date(2026, 1, 2)


@pytest.fixture(autouse=True)
def fixed_today(service: CsrService) -> None:
    """Default labels use a fixed date (autouse in the modules that bind it to a name)."""
    service.today = lambda: TODAY


_UNSET = object()


class WizardHarness(App[None]):
    """Pushes the wizard on mount; :attr:`result` is what it dismissed with."""

    TITLE = "tui-csr wizard harness"

    def __init__(self, service: CsrService, *, tick: bool = False,
                 renews: Request | None = None) -> None:
        super().__init__()
        self.service = service
        self._renews = renews
        self.result: Request | None | object = _UNSET
        self.ticks: list[float] = []
        #: ``(perf_counter, text)`` of every progress report Apply made.
        self.progress: list[tuple[float, str]] = []
        #: For each report: were the wizard's buttons (all of them) disabled meanwhile?
        self.disabled_during_progress: list[bool] = []
        self._tick = tick

    def on_mount(self) -> None:
        """Push the wizard (and start the timer)."""
        self.wizard = GenerateWizard(self.service, renews=self._renews)
        self.push_screen(self.wizard, self._dismissed)
        if self._tick:
            self.set_interval(0.01, self._on_tick)

    def _dismissed(self, result: Request | None) -> None:
        self.result = result

    def _on_tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def on_generate_wizard_apply_progress(self, event: GenerateWizard.ApplyProgress) -> None:
        """Progress reports bubble up from the wizard: note when each arrived."""
        self.progress.append((time.perf_counter(), event.text))
        buttons = self.wizard.query("#wizard-buttons Button")
        self.disabled_during_progress.append(all(b.disabled for b in buttons))

    @property
    def dismissed(self) -> bool:
        """Whether the wizard has been dismissed (with a request or None)."""
        return self.result is not _UNSET


async def settle(pilot: Pilot) -> None:
    """Let workers finish and the messages they posted be handled."""
    app = pilot.app
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def steady(pilot: Pilot) -> None:
    """Settle, then stop every text cursor blinking (shown, steady) so a screenshot does not
    depend on when in the blink cycle it is taken."""
    await settle(pilot)
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause()


async def type_into(pilot: Pilot, selector: str, text: str) -> None:
    """Focus the input ``selector`` on the wizard, clear it and type ``text`` key by key."""
    app = pilot.app
    widget = app.screen.query_one(selector, Input)
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*text)  # Pilot turns single characters into their key names
    await pilot.pause()


async def next_step(pilot: Pilot) -> None:
    """Press Next (ctrl+n) and wait until the step's check has been handled."""
    await pilot.press("ctrl+n")
    await settle(pilot)


async def to_review(pilot: Pilot, dn: str, *, sans: tuple[str, ...] = (),
                    owner: str = "") -> None:
    """From the first step to the review with defaults: the DN typed as one string, the given
    email SANs, group "Web" chosen."""
    await settle(pilot)
    await next_step(pilot)  # CryptoToken: defaults
    await type_into(pilot, "#dn", dn)
    await next_step(pilot)
    for number, value in enumerate(sans):
        if number:
            await pilot.press("ctrl+o")
        await pilot.press(*value)
    await next_step(pilot)
    await pilot.press("space")  # the focused group list: toggle "Web"
    if owner:
        await type_into(pilot, "#owner", owner)
    await next_step(pilot)


async def open_step(pilot: Pilot, index: int, dn: str) -> None:
    """From the first step to step ``index`` (0-based) with defaults and ``dn`` typed; group
    "Web" is chosen on the way past step 4."""
    await settle(pilot)
    for step in range(index):
        if step == 1:
            await pilot.press(*dn)
        if step == 3:
            await pilot.press("space")
        await next_step(pilot)


def error_under(app: WizardHarness, field: str) -> str:
    """The message of the error line ``#<field>-error`` on the wizard ('' when none)."""
    return app.wizard.query_one(f"#{field}-error", FieldError).message


def value_of(app: WizardHarness, selector: str) -> str:
    """The value of an Input on the wizard."""
    return app.wizard.query_one(selector, Input).value


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a CSR and check its self-signature with cryptography."""
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    return csr


def subject_of(csr: x509.CertificateSigningRequest) -> dict[str, str]:
    """The CSR subject as ``{short name: value}``."""
    names = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O",
             NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.LOCALITY_NAME: "L",
             NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.COUNTRY_NAME: "C"}
    return {names[a.oid]: str(a.value) for a in csr.subject}
