"""The whole flow through the real app, by keyboard, on the session's real SoftHSM token:
Requests tab -> g -> every wizard step -> Apply -> result -> copy -> save -> Requests tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from textual.widgets import TabbedContent

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import GROUP, next_step, settle, subject_of
from tui_csr.service import CsrService
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.save import SaveDialog
from tui_csr.ui.screens.main import MainScreen
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.screens.wizard import GenerateWizard
from tui_csr.ui.wizard import CountryPicker

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today


async def test_generate_copy_save_from_the_requests_tab(service: CsrService, token,
                                                         tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the save dialog proposes the current folder
    before = await service.token.object_count()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("g")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard)
        # 1. CryptoToken: ECDSA P-384, SHA-384.
        await pilot.press("right", "enter", "tab", "right", "enter", "tab", "right", "enter")
        assert (wizard.token_step.key_spec, wizard.token_step.hash_name) == ("P-384", "SHA384")
        await next_step(pilot)
        # 2. The DN typed as one string; the country picked from the list by part of its name.
        await pilot.press(*r"CN=e2e.example.com, O=Example\, Inc., OU=PKI, L=Zürich")
        await pilot.press(*["tab"] * 6)
        await pilot.press(*"switz", "enter")
        assert wizard.query_one(CountryPicker).code == "CH"
        await next_step(pilot)
        # 3. SANs: add two more entries, delete the last.
        await pilot.press(*"pki@example.com")
        await pilot.press("ctrl+o", *"second@example.com")
        await pilot.press("ctrl+o", *"gone@example.com")
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert [r.value for r in wizard.san_step.rows] == ["pki@example.com",
                                                           "second@example.com"]
        await next_step(pilot)
        # 4. Signum Configurations: the group and an owner.
        await pilot.press("space", "tab", *"alice")
        await next_step(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)
        # The result: copy, then save.
        result = app.screen
        assert isinstance(result, ResultScreen)
        request = result.request
        await pilot.press("c")
        assert app.clipboard == request.csr_pem
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SaveDialog)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert [row.request.id for row in app.main_screen.requests.rows] == [request.id]
        # Back on the list the table has the keys: enter opens the request, not the wizard.
        assert app.focused is app.main_screen.requests.table

    stored = await service.list_requests()
    assert [(r.id, r.groups, r.owner) for r in stored] == [(request.id, [GROUP], "alice")]
    saved = _saved_csrs(tmp_path)
    assert len(saved) == 1
    csr = x509.load_pem_x509_csr(saved[0])
    assert csr.is_signature_valid
    assert subject_of(csr) == {"CN": "e2e.example.com", "O": "Example, Inc.", "OU": "PKI",
                               "L": "Zürich", "C": "CH"}
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["pki@example.com", "second@example.com"]
    assert await service.token.object_count() == before + 2  # the key pair (no marker object)


def _saved_csrs(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.glob("*.csr")]


@pytest.mark.parametrize("overlay", ["f1", "ctrl+p", "question_mark"])
async def test_overlay_opened_during_generation_closes_on_its_own_terms(
        service: CsrService, token, overlay: str, monkeypatch) -> None:
    """Issue 12 item 2: RSA 4096, ctrl+g, then Help (F1 / ?) or the palette while the key is
    made. The overlay stays until the user closes it; then the Result shows, escape leads to
    the Requests tab, and exactly one request was stored (no traceback, no second Apply)."""
    before = await service.list_requests()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard)
        await pilot.press("tab", "right", "right", "enter")  # key spec RSA 4096
        assert wizard.token_step.key_spec == "RSA4096"
        await next_step(pilot)
        await pilot.press(*"CN=overlay.example.com")
        await next_step(pilot)
        await next_step(pilot)
        await pilot.press("space")
        await next_step(pilot)
        assert wizard.step is wizard.review_step, wizard.states
        # Pilot waits for the app to be idle after each key, which here is after the key is
        # made: start Apply as ctrl+g does, then the overlay key is handled mid-generation.
        pushed: list[tuple[str, bool]] = []
        push = app.push_screen

        def spy(screen, *args, **kwargs):
            pushed.append((type(screen).__name__, wizard.busy))
            return push(screen, *args, **kwargs)

        monkeypatch.setattr(app, "push_screen", spy)
        wizard.action_apply()
        assert wizard.busy
        # Back and Cancel cannot stop a generation: the footer does not offer them meanwhile.
        assert wizard.check_action("back", ()) is False
        assert wizard.check_action("cancel", ()) is False
        await pilot.press(overlay)
        overlay_name = {"ctrl+p": "CommandPalette"}.get(overlay, "HelpScreen")
        assert (overlay_name, True) in pushed, f"opened while generating? {pushed}"
        overlay_screen = next(s for s in app.screen_stack if type(s).__name__ == overlay_name)
        while wizard.busy:
            await pilot.pause(0.05)
        await pilot.pause()
        # Generation ended: the overlay is still open, the wizard waits under it.
        assert app.screen is overlay_screen
        assert wizard in app.screen_stack
        await pilot.press("escape")
        await settle(pilot)
        result = app.screen
        assert isinstance(result, ResultScreen)
        assert wizard not in app.screen_stack
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.main_screen.query_one("#tabs", TabbedContent).active == "requests-tab"
        assert [row.request.id for row in app.main_screen.requests.rows] == [result.request.id]
    after = await service.list_requests()
    assert len(after) == len(before) + 1
    assert result.request.id in {r.id for r in after}
