"""Issue 10 items 4, 7 in the TUI: the token picker (real SoftHSM module with two tokens), the
login dialog's PIN format hint and the protected authentication path, and View CSR's key
flags (always authenticate, attributes the token forced)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.widgets import Input, OptionList, Static

from tests.conftest import LABEL, OTHER_LABEL
from tests.integration.conftest import make_settings
from tests.ui.conftest import FakeToken, add_requests, fake_service, make_request, settle
from tests.ui.lifecycle_harness import LifecycleHarness
from tui_csr.service import CsrService
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.login import LoginDialog
from tui_csr.ui.dialogs.token_picker import TokenPickerDialog
from tui_csr.ui.screens.main import MainScreen
from tui_csr.ui.screens.view_csr import ViewCsrScreen

SIZE = (80, 24)
HINT = "The PIN is the authentication key's id (4 hex digits) and its password: 0001password."


# -- the token picker, on the real module (the session's SoftHSM has two tokens) ------------------
def _unconfigured(token, data_dir: Path) -> CsrService:
    settings = make_settings(token, data_dir)
    settings.token = None
    settings.token_serial = None
    return CsrService.create(settings)


async def test_picker_lists_the_tokens_and_opens_the_chosen(token, data_dir: Path) -> None:
    service = _unconfigured(token, data_dir)
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, TokenPickerDialog)
        labels = [t.label for t in picker.tokens]
        assert sorted(labels) == sorted([LABEL, OTHER_LABEL])
        options = picker.query_one("#tokens", OptionList)
        shown = [str(options.get_option_at_index(n).prompt) for n in range(options.option_count)]
        assert any(f"'{OTHER_LABEL}'" in line for line in shown)
        assert service.token is None  # nothing selected, nobody logged in yet
        await pilot.press(*["down"] * labels.index(OTHER_LABEL), "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert service.token_info is not None and service.token_info.label == OTHER_LABEL
        assert service.pin_source is not None  # set after the login



async def test_picker_quit_leaves_the_app(token, data_dir: Path) -> None:
    service = _unconfigured(token, data_dir)
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, TokenPickerDialog)
        await pilot.press("escape")
        await settle(pilot)
    assert app.return_code == 0 and service.token is None


async def test_a_configured_token_is_opened_without_asking(token, data_dir: Path) -> None:
    service = CsrService.create(make_settings(token, data_dir))
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert service.token_info is not None and service.token_info.label == LABEL


# -- the login dialog -------------------------------------------------------------------------------
async def test_login_dialog_shows_the_profile_pin_hint(tmp_path: Path) -> None:
    service = fake_service(tmp_path / "data", token=FakeToken(pin_hint=HINT))
    app = TuiCsrApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, LoginDialog)
        assert dialog.query_one("#hint", Static).render().plain == HINT
        await pilot.press(*"1234", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_protected_path_logs_in_without_a_pin(tmp_path: Path) -> None:
    fake = FakeToken(protected_auth_path=True)
    service = fake_service(tmp_path / "data", token=fake)
    app = TuiCsrApp(service, pin="ignored")  # a PIN pad: no PIN is sent, not even a given one
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert fake.logged_in and fake.attempts == 1


async def test_protected_path_says_enter_on_device_and_retries(tmp_path: Path) -> None:
    fake = FakeToken(protected_auth_path=True)
    fake.pad_accepts = False  # the first PIN typed on the pad is wrong
    service = fake_service(tmp_path / "data", token=fake)
    app = TuiCsrApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, LoginDialog) and dialog.protected
        prompt = dialog.query_one("#prompt").render().plain
        assert "Enter the PIN on the device" in prompt
        assert not dialog.query_one("#pin", Input).display  # no field to type a PIN into
        problem = dialog.query_one("#problem", Static).render().plain
        assert problem.startswith("The PIN entered on the device for token 'demo' was wrong.")
        fake.pad_accepts = True
        await pilot.press("enter")  # "Log in" (focused): the device asks again
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert fake.logged_in and fake.attempts == 2


# -- View CSR ---------------------------------------------------------------------------------------
async def test_view_csr_shows_key_flags(tmp_path: Path, utc: None) -> None:
    service = fake_service(tmp_path / "data")
    request = replace(make_request(5, "codesign", "codesign.example.com"),
                      key_attributes={"ALWAYS_AUTHENTICATE": True, "SENSITIVE": True,
                                      "DECRYPT": True},
                      key_forced={"DECRYPT": True, "public.ENCRYPT": True})
    add_requests(service, (request,))
    app = LifecycleHarness(service, push=lambda: ViewCsrScreen(service, request))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        key = app.screen.query_one("#fact-key", Static).render().plain
    lines = key.split("\n")
    assert lines[0].startswith("EC P-256")
    assert lines[1:] == ["needs the PIN before every signature",
                         "set by the token: DECRYPT=true, public.ENCRYPT=true"]


async def test_view_csr_without_flags_says_nothing_more(tmp_path: Path, utc: None) -> None:
    service = fake_service(tmp_path / "data")
    request = replace(make_request(6, "plain", "plain.example.com"),
                      key_attributes={"ALWAYS_AUTHENTICATE": False, "SENSITIVE": True})
    add_requests(service, (request,))
    app = LifecycleHarness(service, push=lambda: ViewCsrScreen(service, request))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        key = app.screen.query_one("#fact-key", Static).render().plain
    assert "\n" not in key and "PIN" not in key
