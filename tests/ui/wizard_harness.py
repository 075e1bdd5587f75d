"""A minimal app around the Generate CSR wizard, so the wizard's tests need nothing of the shell.

The app pushes :class:`GenerateWizard` on mount and records what it dismisses with. With
``tick=True`` a 10 ms timer records ``time.perf_counter()`` at every tick: the gaps between ticks
show whether the event loop was ever blocked.
"""

from __future__ import annotations

import time
from datetime import date

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from tests.integration import conftest as integration
from tui_csr.core.models import Request
from tui_csr.service import CsrService
from tui_csr.ui.screens.wizard import GenerateWizard

#: The fixtures the wizard tests use (a data folder holding group "Web", a logged-in service on
#: the session's SoftHSM token); test modules bind them to module names to use them.
data_dir = integration.data_dir
service = integration.service
GROUP = integration.GROUP

#: Snapshots and default labels use this date.
TODAY = date(2026, 1, 2)

_UNSET = object()


class WizardHarness(App[None]):
    """Pushes the wizard on mount; :attr:`result` is what it dismissed with."""

    TITLE = "tui-csr wizard harness"

    def __init__(self, service: CsrService, *, tick: bool = False) -> None:
        super().__init__()
        self.service = service
        self.result: Request | None | object = _UNSET
        self.ticks: list[float] = []
        #: ``(perf_counter, text)`` of every progress report Apply made.
        self.progress: list[tuple[float, str]] = []
        self._tick = tick

    def on_mount(self) -> None:
        self.wizard = GenerateWizard(self.service)
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
