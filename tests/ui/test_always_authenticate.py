"""Issue 10 item 7 in the TUI, on the session's real SoftHSM token: the wizard's "Always
authenticate" checkbox makes a key with CKA_ALWAYS_AUTHENTICATE, whose CSR is signed after the
PIN dialog asked for the PIN again (context-specific login); a wrong PIN or a cancel there is
one sentence on the review step, and neither a key nor a request is left."""

from __future__ import annotations

from textual.widgets import Input, Static

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import load_csr, settle, to_review
from tui_csr.service import CsrService
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.context_pin import CANCELLED, ContextPinDialog
from tui_csr.ui.screens.main import MainScreen
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.screens.wizard import GenerateWizard
from tui_csr.ui.widgets.toggles import StateCheckbox

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)


async def _apply_with_checkbox(pilot, dn: str) -> GenerateWizard:
    """From the main screen: open the wizard, tick "Always authenticate", go to the review and
    press Apply; returns the wizard (the PIN dialog is then on top)."""
    app = pilot.app
    await settle(pilot)
    assert isinstance(app.screen, MainScreen)
    await pilot.press("g")
    await settle(pilot)
    wizard = app.screen
    assert isinstance(wizard, GenerateWizard)
    box = wizard.query_one("#always-auth", StateCheckbox)
    assert box.value is False
    box.focus()
    await pilot.press("space")
    assert wizard.token_step.always_authenticate
    await to_review(pilot, dn)
    assert wizard.current == 4
    assert wizard.review_step.value_of("Key").endswith(", PIN before every signature")
    await pilot.press("ctrl+g")
    for _ in range(50):  # the generation runs in a worker until the token wants the PIN
        await pilot.pause(0.05)
        if isinstance(app.screen, ContextPinDialog):
            break
    return wizard


async def test_pin_dialog_signs_an_always_authenticate_key(service: CsrService, token) -> None:
    before = await service.token.object_count()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await _apply_with_checkbox(pilot, "CN=always-auth.example.com")
        dialog = app.screen
        assert isinstance(dialog, ContextPinDialog)
        question = dialog.query_one("#question", Static).render().plain
        assert "needs the PIN again before it signs" in question
        assert wizard.busy  # the Apply worker is waiting for the dialog, the loop is not
        field = dialog.query_one("#pin", Input)
        await pilot.press(*token.pin)
        assert field.password and field.value == token.pin
        await pilot.press("enter")
        assert field.value == ""  # the PIN does not stay in the widget
        await settle(pilot)
        result = app.screen
        assert isinstance(result, ResultScreen)
        request = result.request
    stored = await service.list_requests()
    assert [r.id for r in stored] == [request.id]
    assert stored[0].key_attributes is not None
    assert stored[0].key_attributes["ALWAYS_AUTHENTICATE"] is True
    load_csr(stored[0].csr_pem)  # signed by the key, signature valid
    assert await service.token.object_count() == before + 2


async def test_wrong_pin_in_the_dialog_leaves_no_key(service: CsrService, token) -> None:
    before = await service.token.object_count()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await _apply_with_checkbox(pilot, "CN=wrong-pin.example.com")
        assert isinstance(app.screen, ContextPinDialog)
        await pilot.press(*"999999", "enter")
        await settle(pilot)
        assert app.screen is wizard and not wizard.busy
        error = wizard.review_step.apply_error
        assert error.startswith("Apply failed: Wrong PIN")
        assert error.count(". ") <= 2 and "Traceback" not in error
    assert await service.list_requests() == []
    assert await service.token.object_count() == before


async def test_cancelling_the_dialog_leaves_no_key(service: CsrService, token) -> None:
    before = await service.token.object_count()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await _apply_with_checkbox(pilot, "CN=cancel-pin.example.com")
        assert isinstance(app.screen, ContextPinDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is wizard and not wizard.busy
        error = wizard.review_step.apply_error
        assert error == f"Apply failed: {CANCELLED}"
    assert await service.list_requests() == []
    assert await service.token.object_count() == before


async def test_without_the_checkbox_no_pin_dialog(service: CsrService, token) -> None:
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        await to_review(pilot, "CN=plain.example.com")
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
    stored = await service.list_requests()
    assert len(stored) == 1
    assert stored[0].key_attributes is not None
    assert stored[0].key_attributes.get("ALWAYS_AUTHENTICATE") is False
