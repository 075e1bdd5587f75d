"""Pilot tests of the UI shell: start-up and login, the Requests tab, help, result and saving."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest
from cryptography import x509
from textual.screen import Screen
from textual.widgets import Input, RadioButton, Static

from tests.ui.conftest import FAKE_PIN, PEM, SAMPLE, add_requests, fake_service, settle
from tui_csr.errors import StoreError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.clipboard import osc52, tmux_passthrough
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.error import ErrorDialog
from tui_csr.ui.dialogs.login import LoginDialog
from tui_csr.ui.dialogs.save import SaveDialog, safe_file_name
from tui_csr.ui.screens.error_screen import FatalErrorScreen
from tui_csr.ui.screens.help import HelpScreen
from tui_csr.ui.screens.main import NO_GROUP_TEXT, NO_REQUEST_TEXT, MainScreen
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.screens.view_csr import ViewCsrScreen

ROOT = Path(__file__).resolve().parents[2] / "tui_csr"
SIZE = (100, 30)


def labels(app: TuiCsrApp) -> list[str]:
    table = app.main_screen.requests.table
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def notices(app: TuiCsrApp) -> str:
    return " | ".join(n.message for n in app._notifications)


# -- import boundaries -----------------------------------------------------------------------

def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _hits(folder: str, banned: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / folder).rglob("*.py"))
            for name in _imports(path)
            if any(name == b or name.startswith(b + ".") for b in banned)]


def test_ui_imports_no_token_or_store_library() -> None:
    assert _hits("ui", ("pkcs11", "tinydb", "tui_csr.hsm", "tui_csr.store")) == []


@pytest.mark.parametrize("folder", ["core", "hsm", "store"])
def test_headless_layers_import_no_textual(folder: str) -> None:
    assert _hits(folder, ("textual",)) == []


# -- start-up and login ----------------------------------------------------------------------

async def test_start_with_pin_shows_identity_and_requests(service: CsrService) -> None:
    await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "x.example"},
                                          groups=["Web"], label="ui-start"))
    app = TuiCsrApp(service, pin="246810")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.sub_title == (f"token {service.token_info.label} · user {service.user} · "
                                 "admin")
        table = app.main_screen.requests.table
        assert labels(app) == ["ui-start"]
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1:4] == ["x.example", "EC P-256", "SHA256withECDSA"]
        assert row[4] == "Web" and row[7] == "no"


async def test_login_dialog_with_real_token(real_settings, token) -> None:
    service = CsrService.create(real_settings)
    app = TuiCsrApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LoginDialog)
        assert app.screen.query_one("#pin", Input).password
        await pilot.press(*token.pin, "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        empty = app.main_screen.requests.query_one("#empty", Static)
        assert empty.display and str(empty.render()) == NO_REQUEST_TEXT


async def test_wrong_pin_keeps_dialog_then_right_pin_closes_it(tmp_path: Path) -> None:
    app = TuiCsrApp(fake_service(tmp_path / "d"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, LoginDialog) and "'demo'" in str(
            dialog.query_one("#title").render())
        await pilot.press(*"0000", "enter")
        await settle(pilot)
        assert app.screen is dialog
        problem = str(dialog.query_one("#problem", Static).render())
        assert "Wrong PIN for token 'demo'. Few tries are left" in problem
        assert "CKR_PIN_INCORRECT" in problem
        assert dialog.query_one("#pin", Input).value == ""  # the PIN does not linger
        await pilot.press(*FAKE_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and app.main_screen.ready


async def test_pin_from_environment_skips_dialog(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUI_CSR_PIN", FAKE_PIN)
    app = TuiCsrApp(fake_service(tmp_path / "d"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and app.main_screen.ready


async def test_wrong_pin_given_shows_dialog_with_reason(tmp_path: Path) -> None:
    app = TuiCsrApp(fake_service(tmp_path / "d"), pin="9999")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LoginDialog)
        assert "Wrong PIN" in str(app.screen.query_one("#problem", Static).render())


async def test_unreadable_pin_file_falls_back_to_dialog(tmp_path: Path) -> None:
    service = fake_service(tmp_path / "d")
    service.settings.pin_file = tmp_path / "no-pin-file"
    app = TuiCsrApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LoginDialog)
        problem = str(app.screen.query_one("#problem", Static).render())
        assert problem.startswith(f"PIN file {tmp_path / 'no-pin-file'} cannot be read")


async def test_escape_on_login_quits(tmp_path: Path) -> None:
    app = TuiCsrApp(fake_service(tmp_path / "d"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 0


async def test_missing_module_is_fatal_with_quit_key(tmp_path: Path) -> None:
    from tui_csr.config import Settings

    settings = Settings(module=str(tmp_path / "nope.so"), token="demo", data_dir=tmp_path / "d")
    app = TuiCsrApp(CsrService.create(settings, user="alice"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, FatalErrorScreen)
        assert "nope.so does not exist" in str(app.screen.query_one("#message").render())
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 2 and app.fatal_error is not None


async def test_unknown_token_is_fatal_and_shows_code(real_settings) -> None:
    real_settings.token = "no-such-token"
    app = TuiCsrApp(CsrService.create(real_settings))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, FatalErrorScreen)
        assert "No token with label 'no-such-token'" in str(
            app.screen.query_one("#message").render())
        assert str(app.screen.query_one("#code").render()) == "CKR_TOKEN_NOT_PRESENT"


async def test_worker_failure_becomes_error_dialog(tmp_path: Path, monkeypatch) -> None:
    service = fake_service(tmp_path / "d")

    async def broken(*_args):
        raise StoreError("The request store /x/tui-csr.json cannot be read: it is not JSON.",
                         code="E_STORE")

    monkeypatch.setattr(service, "list_requests", broken)
    app = TuiCsrApp(service, pin=FAKE_PIN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ErrorDialog)
        assert "cannot be read: it is not JSON." in str(dialog.query_one("#message").render())
        assert str(dialog.query_one("#code").render()) == "E_STORE"
        assert not app.main_screen.requests.loading
        await pilot.press("enter")
        assert isinstance(app.screen, MainScreen)


# -- the Requests tab ------------------------------------------------------------------------

async def _started(tmp_path: Path, requests=SAMPLE, **kw) -> TuiCsrApp:
    service = fake_service(tmp_path / "d", **kw)
    add_requests(service, requests)
    return TuiCsrApp(service, pin=FAKE_PIN)


async def test_filter_narrows_rows_and_escape_clears(tmp_path: Path) -> None:
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"internal")
        assert app.focused is app.main_screen.requests.query_one("#filter")
        assert sorted(labels(app)) == ["api-rsa", "mail-pss"]  # by group
        await pilot.press(*"x", "enter")
        empty = app.main_screen.requests.query_one("#empty", Static)
        assert empty.display and "No request matches 'internalx'" in str(empty.render())
        await pilot.press("escape")
        assert len(labels(app)) == 4
        await pilot.press("slash", *"carol", "enter")  # by owner
        assert labels(app) == ["mail-pss"]
        assert app.focused is app.main_screen.requests.table


async def test_sort_keys_and_header_click(tmp_path: Path) -> None:
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert labels(app) == ["vpn-p384", "mail-pss", "api-rsa", "www-2026"]  # newest first
        await pilot.press("s", "s")  # created -> attestation -> label
        assert app.main_screen.requests.sort_column == "label"
        assert labels(app) == ["api-rsa", "mail-pss", "vpn-p384", "www-2026"]
        await pilot.press("S")
        assert labels(app) == ["www-2026", "vpn-p384", "mail-pss", "api-rsa"]
        table = app.main_screen.requests.table
        assert str(table.ordered_columns[0].label).endswith("▼")
        key_x = sum(c.get_render_width(table) for c in table.ordered_columns[:2]) + 1
        await pilot.click(table, offset=(key_x, 0))  # the Key header
        assert app.main_screen.requests.sort_column == "key"
        assert labels(app)[:2] == ["www-2026", "vpn-p384"]  # EC P-256, EC P-384, RSA...


async def test_j_k_move_and_enter_opens_view(tmp_path: Path) -> None:
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.requests.table
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        await pilot.press("enter")
        await settle(pilot)
        # Enter opens View CSR (issue 4: the request's decoded view).
        assert isinstance(app.screen, ViewCsrScreen) and app.screen.request.label == "mail-pss"
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_empty_states(tmp_path: Path) -> None:
    app = await _started(tmp_path, requests=())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        empty = app.main_screen.requests.query_one("#empty", Static)
        assert empty.display and str(empty.render()) == NO_REQUEST_TEXT
        assert "press g" in NO_REQUEST_TEXT.lower()
    app = await _started(tmp_path / "none", requests=(), groups=())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = str(app.main_screen.requests.query_one("#empty", Static).render())
        assert text == NO_GROUP_TEXT and "tui-csr groups add NAME" in text
        await pilot.press("g")  # no wizard: it could not finish anyway
        await pilot.pause()
        assert "administrator must create one first" in notices(app)


async def test_help_lists_keys_of_active_screen(tmp_path: Path) -> None:
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        keys = {k.description: k.keys for k in app.screen.keys}
        assert keys["Generate CSR"] == "g" and keys["Filter"] == "/"
        assert keys["Sort"] == "s" and keys["Help"] == "f1, ?" and keys["Down"] == "j"
        await pilot.press("escape")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert {"Copy PEM", "Save…", "Back"} <= {k.description for k in app.screen.keys}
        await pilot.press("escape", "escape", "slash", "question_mark")
        assert not isinstance(app.screen, HelpScreen)  # "?" typed into the filter
        assert app.main_screen.requests.filter_text == "?"


async def test_command_palette_offers_main_actions(tmp_path: Path) -> None:
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"Help")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)


async def test_generate_without_wizard_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tui_csr.ui.screens.wizard", None)
    app = await _started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert "wizard not available" in notices(app)


async def test_wizard_result_opens_result_screen(tmp_path: Path, monkeypatch) -> None:
    made = SAMPLE[0]

    class GenerateWizard(Screen):
        def __init__(self, service: CsrService) -> None:
            super().__init__()
            self.service = service

        def on_mount(self) -> None:
            self.service.store.add_request(made)
            self.dismiss(made)

    stub = types.ModuleType("tui_csr.ui.screens.wizard")
    stub.GenerateWizard = GenerateWizard  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui_csr.ui.screens.wizard", stub)
    app = await _started(tmp_path, requests=())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.click("#generate")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen) and app.screen.request is made
        assert labels(app) == [made.label]


# -- result screen: copy and save --------------------------------------------------------------

async def _result_app(service: CsrService, tmp_path: Path, monkeypatch, pin: str,
                      label: str) -> TuiCsrApp:
    # Labels are unique per test: every test shares the session's token.
    await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "save.example"},
                                          groups=["Web"], label=label))
    monkeypatch.chdir(tmp_path)
    return TuiCsrApp(service, pin=pin)  # the session is logged in already: login is a no-op


async def test_copy_puts_pem_on_clipboard_and_wraps_for_tmux(service, token, tmp_path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    app = await _result_app(service, tmp_path, monkeypatch, token.pin, "ui copy")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        written: list[str] = []
        monkeypatch.setattr(app._driver, "write", written.append)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("c")
        pem = app.screen.request.csr_pem
        assert app.clipboard == pem
        copies = [w for w in written if "]52;" in w]  # Textual writes other sequences too
        assert copies == [osc52(pem), tmux_passthrough(osc52(pem))]
        assert copies[1].startswith("\x1bPtmux;\x1b\x1b]52;c;")
        assert "terminal's clipboard" in notices(app) and "press s" in notices(app)


async def test_save_writes_pem_and_der(service, token, tmp_path, monkeypatch) -> None:
    app = await _result_app(service, tmp_path, monkeypatch, token.pin, "ui save/1")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, SaveDialog)
        assert app.screen.query_one("#path", Input).value == "ui_save_1.csr"
        await pilot.press("enter")
        await settle(pilot)
        pem_path = tmp_path / "ui_save_1.csr"
        assert isinstance(app.screen, ViewCsrScreen)
        assert f"Saved {pem_path}" in notices(app)
        csr = x509.load_pem_x509_csr(pem_path.read_bytes())
        assert csr.is_signature_valid
        await pilot.press("s")
        app.screen.query_one("#der", RadioButton).value = True
        await pilot.pause()
        assert app.screen.query_one("#path", Input).value == "ui_save_1.der"
        await pilot.press("enter")
        await settle(pilot)
        der = x509.load_der_x509_csr((tmp_path / "ui_save_1.der").read_bytes())
        assert der.subject == csr.subject
        assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


async def test_save_asks_before_overwriting(tmp_path: Path) -> None:
    service = fake_service(tmp_path / "d")
    target = tmp_path / "www-2026.csr"
    target.write_text("old")
    app = TuiCsrApp(service, pin=FAKE_PIN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        result = ResultScreen(SAMPLE[0], save_directory=tmp_path)
        await app.push_screen(result)
        await pilot.press("s", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog) and target.read_text() == "old"
        await pilot.press("enter", "y")
        await settle(pilot)
        assert app.screen is result and target.read_text() == PEM


async def test_save_reports_missing_folder(tmp_path: Path) -> None:
    app = TuiCsrApp(fake_service(tmp_path / "d"), pin=FAKE_PIN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.push_screen(SaveDialog(SAMPLE[0], directory=tmp_path))
        field = app.screen.query_one("#path", Input)
        field.value = "missing/x.csr"
        await pilot.press("enter")
        await pilot.pause()
        problem = str(app.screen.query_one("#problem", Static).render())
        assert problem == f"Folder {tmp_path / 'missing'} does not exist."
        assert isinstance(app.screen, SaveDialog)


def test_safe_file_name() -> None:
    assert safe_file_name("www.example.com-2026-01-02", ".csr") == "www.example.com-2026-01-02.csr"
    assert safe_file_name("../etc/passwd", ".der") == "etc_passwd.der"
    # Issue 12 item 11: letters of any script stay (the default name once read "M_ller_J_rg").
    assert safe_file_name("Müller Jörg-2026", ".csr") == "Müller_Jörg-2026.csr"
    assert safe_file_name("äöü", ".csr") == "äöü.csr"
    assert safe_file_name("\x1b[2J/..", ".csr") == "2J.csr"
    assert safe_file_name("…", ".csr") == "request.csr"


async def test_large_lists_are_whole_and_ctrl_end_reaches_the_last(tmp_path: Path) -> None:
    """The table is virtual (issue 14): it holds every request from the start, ctrl+end goes
    to the true last one, and the filter searches them all (more: test_requests_scale.py)."""
    from dataclasses import replace

    many = [replace(SAMPLE[0], id=f"{n:032x}", label=f"bulk-{n:04d}") for n in range(40)]
    app = await _started(tmp_path, requests=many)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.main_screen.requests
        assert view.table.row_count == len(many)
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert view.table.cursor_row == len(many) - 1
        assert view.selected_request() is not None
        assert view.selected_request().label == labels(app)[-1]
        await pilot.press("slash", *"bulk-0007")
        await pilot.pause()
        assert view.table.row_count == 1
