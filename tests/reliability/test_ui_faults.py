"""Token and store faults in the TUI (Pilot): each is one sentence plus its CKR code in a dialog
(or the login dialog, or the start-up error screen), and the app keeps running.

The faults come from the real code: the session's SoftHSM token is wrapped one level below
:class:`Pkcs11Token` (python-pkcs11's own token, slot and session objects), so the error mapping
in Pkcs11Token, AsyncToken, the service and the screens are all real. The stand-in answers as
SoftHSM does once its token folder is removed (searches find nothing, everything else fails
with CKR_GENERAL_ERROR; measured in test_token_faults.py), as a token whose user PIN is locked
(SoftHSM never locks one), or as a slot whose RSA keys stop at 3072 bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pkcs11 import Mechanism, TokenFlag
from pkcs11 import exceptions as px
from textual.widgets import RadioButton, Static

from tests.conftest import SoftHSM
from tests.integration.conftest import GROUP, make_settings
from tests.reliability.conftest import elf_library
from tests.ui.wizard_harness import WizardHarness, to_review
from tui_csr.hsm.token import Pkcs11Token
from tui_csr.hsm.worker import AsyncToken
from tui_csr.service import CsrService, GenerateParams
from tui_csr.store.repo import Store
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.actions import RequestActions
from tui_csr.ui.dialogs.delete import DeleteDialog
from tui_csr.ui.dialogs.error import ErrorDialog
from tui_csr.ui.dialogs.login import LoginDialog
from tui_csr.ui.screens.error_screen import FatalErrorScreen

SIZE = (100, 30)


class _Proxy:
    def __init__(self, real: Any, owner: StandInToken) -> None:
        self._real = real
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Session(_Proxy):
    def get_objects(self, *args: Any, **kwargs: Any) -> Any:
        if self._owner.vanishing > 0:  # another process destroys an object under the search
            self._owner.vanishing -= 1
            raise px.ObjectHandleInvalid()
        return iter(()) if self._owner.gone else self._real.get_objects(*args, **kwargs)

    def _fails_when_gone(name: str):  # noqa: N805 - a helper for the class body
        def call(self: _Session, *args: Any, **kwargs: Any) -> Any:
            if self._owner.gone:
                raise px.GeneralError()
            return getattr(self._real, name)(*args, **kwargs)
        return call

    generate_keypair = _fails_when_gone("generate_keypair")
    create_domain_parameters = _fails_when_gone("create_domain_parameters")
    create_object = _fails_when_gone("create_object")


class _Slot(_Proxy):
    def get_token(self) -> Any:
        if self._owner.gone:
            raise px.GeneralError()
        return self._real.get_token()

    def get_mechanism_info(self, mechanism: Any) -> Any:
        info = self._real.get_mechanism_info(mechanism)
        if self._owner.rsa_max and mechanism == Mechanism.RSA_PKCS_KEY_PAIR_GEN:
            return type("Info", (), {"min_key_length": info.min_key_length,
                                     "max_key_length": self._owner.rsa_max})()
        return info


class _Token(_Proxy):
    @property
    def slot(self) -> Any:
        return _Slot(self._real.slot, self._owner)

    @property
    def flags(self) -> Any:
        extra = {"locked": TokenFlag.USER_PIN_LOCKED,
                 "final": TokenFlag.USER_PIN_FINAL_TRY}.get(self._owner.pin_mode or "", 0)
        return TokenFlag(self._real.flags) | extra

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if self._owner.pin_mode == "locked":
            raise px.PinLocked()
        if self._owner.pin_mode == "final":
            raise px.PinIncorrect()
        return _Session(self._real.open(*args, **kwargs), self._owner)


class StandInToken(Pkcs11Token):
    """The real Pkcs11Token on the session token, over python-pkcs11 objects that can be made to
    answer like a removed token, a locked PIN or a smaller RSA range."""

    def __init__(self, token: SoftHSM, *, pin_mode: str | None = None,
                 rsa_max: int | None = None) -> None:
        super().__init__(token.module, token.label)
        self.pin_mode = pin_mode
        self.rsa_max = rsa_max
        self.gone = False
        self.vanishing = 0  # searches that meet an object destroyed under them

    def open(self):  # noqa: ANN201 - TokenInfo
        super().open()
        self._token = _Token(self._token, self)
        return self.info()


def standin_service(token: SoftHSM, data_dir: Path, **kw: Any) -> tuple[CsrService, StandInToken]:
    sync = StandInToken(token, **kw)
    service = CsrService(make_settings(token, data_dir), Store.open(data_dir),
                         token=AsyncToken(sync))
    return service, sync


async def settle(pilot: Any) -> None:
    """Wait until no worker runs and what they posted is handled; unlike the UI suite's helper
    this one lets workers fail (a failed worker is what these tests are about)."""
    app = pilot.app
    for _ in range(200):
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            await pilot.pause()
            if not any(worker.is_running for worker in app.workers):
                return
        await pilot.pause(0.02)
    raise AssertionError("workers still running")


def _text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


# -- PIN ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "needles"), [
    ("locked", ("The user PIN of token 'test' is locked; the security officer must unlock it.",
                "CKR_PIN_LOCKED")),
    ("final", ("Wrong PIN for token 'test'. One try is left before the PIN locks.",
               "CKR_PIN_INCORRECT")),
])
async def test_pin_faults_show_in_the_login_dialog(token: SoftHSM, data_dir: Path, mode: str,
                                                   needles: tuple[str, ...]) -> None:
    service, _ = standin_service(token, data_dir, pin_mode=mode)
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LoginDialog) and app.is_running
        problem = _text(app.screen, "#problem")
        for needle in needles:
            assert needle in problem, problem
        assert token.pin not in problem
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 0


# -- module and token selection -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "text", "elf", "folder", "label"])
async def test_start_up_faults_show_the_error_screen(token: SoftHSM, data_dir: Path,
                                                     tmp_path: Path, kind: str) -> None:
    settings = make_settings(token, data_dir)
    fake = tmp_path / "module.so"
    fake.write_text("not a library")
    settings.module = {"missing": str(tmp_path / "nope.so"), "text": str(fake),
                       "elf": str(elf_library()), "folder": str(tmp_path),
                       "label": token.module}[kind]
    if kind == "label":
        settings.token = "no-such-token"
    app = TuiCsrApp(CsrService.create(settings))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, FatalErrorScreen) and app.is_running
        message = _text(app.screen, "#message")
        assert len(message.splitlines()) == 1 and message.endswith("."), message
        if kind == "label":
            assert "No token with label 'no-such-token'" in message
            assert _text(app.screen, "#code") == "CKR_TOKEN_NOT_PRESENT"
        else:
            assert "PKCS#11 module" in message or "is not a PKCS#11 module" in message
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == (1 if kind == "label" else 2)


# -- the token disappears while the app runs ----------------------------------------------------

@pytest.fixture
async def logged_in(token: SoftHSM, data_dir: Path):
    """Makes logged-in stand-in services; closes their sessions on the token thread at the end.

    A python-pkcs11 session dropped elsewhere is closed by its finaliser in whatever thread drops
    it, possibly while the token thread is still in the module for a worker the app left behind:
    the module is not thread-safe (see tui_csr/hsm/worker.py), so close it where it belongs."""
    made: list[CsrService] = []

    async def make(**kw: Any) -> tuple[CsrService, StandInToken]:
        service, sync = standin_service(token, data_dir, **kw)
        await service.open_token()
        await service.login(token.pin)
        made.append(service)
        return service, sync

    yield make
    for service in made:
        service.token._token.gone = False  # type: ignore[union-attr]
        await service.token.close()


async def test_token_gone_before_delete_shows_a_dialog_and_keeps_the_record(
        token: SoftHSM, logged_in) -> None:
    service, sync = await logged_in()
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "gone.example"},
                                                groups=[GROUP], label="ui-gone-delete"))
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        sync.gone = True
        RequestActions(app, service, req, app.main_screen.reload_all).delete()
        await pilot.pause()
        assert isinstance(app.screen, DeleteDialog)
        await pilot.press(*req.label, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog) and app.is_running
        message = _text(app.screen, "#message")
        assert message == (f"While destroying key {req.key_id} on token 'test': the token is no "
                           "longer there (removed or disconnected). The request record was kept.")
        assert _text(app.screen, "#code") == "CKR_GENERAL_ERROR"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ErrorDialog) and app.is_running
    assert [r.id for r in service.store.list_requests()] == [req.id]
    sync.gone = False  # the token is back: the key is still there and can go now
    assert await service.token.key_exists(bytes.fromhex(req.key_id))
    await service.delete_request(req.id)


async def test_token_gone_at_start_orphan_scan_warns_and_app_runs(token: SoftHSM,
                                                                  logged_in) -> None:
    service, sync = await logged_in()
    sync.gone = True
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        notes = " | ".join(n.message for n in app._notifications)
        assert "While listing keys on token 'test': the token is no longer there" in notes
        assert "CKR_GENERAL_ERROR" in notes and app.is_running
        assert app.main_screen.ready  # the store's lists still work


async def test_token_gone_during_apply_is_shown_on_the_review_step(logged_in) -> None:
    service, sync = await logged_in()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await to_review(pilot, "CN=gone-apply.example")
        sync.gone = True
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert not app.dismissed and app.wizard.current == 4 and app.is_running
        assert app.wizard.review_step.apply_error == (
            "Apply failed: While creating the RSA 2048 key pair on token 'test': the token is "
            "no longer there (removed or disconnected). (CKR_GENERAL_ERROR)")
    assert service.store.list_requests() == []


# -- a key spec the token cannot make -----------------------------------------------------------

async def test_spec_outside_the_slot_range_is_disabled_with_the_reason(logged_in) -> None:
    service, _ = await logged_in(rsa_max=3072)
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wizard = app.wizard
        assert wizard.query_one("#spec-RSA4096", RadioButton).disabled
        assert not wizard.query_one("#spec-RSA3072", RadioButton).disabled
        note = str(wizard.query_one("#spec-note", Static).render())
        assert "RSA4096: Token 'test' supports RSA keys of" in note and "not 4096." in note


# -- a damaged store ------------------------------------------------------------------------------

async def test_damaged_store_shows_a_dialog_naming_the_file(token: SoftHSM, data_dir: Path,
                                                            logged_in) -> None:
    service, _ = await logged_in()
    store = data_dir / "tui-csr.json"
    store.write_bytes(store.read_bytes()[:-7])  # truncated
    damaged = store.read_bytes()
    app = TuiCsrApp(service, pin=token.pin)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog) and app.is_running
        message = _text(app.screen, "#message")
        assert f"The store {store} is unreadable" in message and "untouched" in message
        # Every tab reads the store and fails for the same reason: one dialog, not three.
        assert sum(isinstance(s, ErrorDialog) for s in app.screen_stack) == 1
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ErrorDialog) and app.is_running
    assert store.read_bytes() == damaged


# -- objects destroyed under a search by another process ---------------------------------------

async def test_a_search_meeting_a_vanished_object_runs_again(logged_in) -> None:
    """Regression: CKR_OBJECT_HANDLE_INVALID from an object another process destroyed during
    the search failed the orphan scan (see test_concurrency.py); searches now run again, and
    only a search that keeps failing is an error."""
    from tui_csr.errors import TokenError

    service, sync = await logged_in()
    keys = await service.token.list_keys()
    sync.vanishing = 2
    assert await service.token.list_keys() == keys
    assert not await service.token.label_in_use("no-such-label-anywhere")
    sync.vanishing = 99
    with pytest.raises(TokenError) as info:
        await service.token.list_keys()
    assert info.value.code == "CKR_OBJECT_HANDLE_INVALID"
    sync.vanishing = 0
