"""Issue 12 items 3 and 5-11 through the real app (scripted token): each test fails on the
behaviour the issue reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TabbedContent, TextArea

from tests.ui.conftest import FAKE_PIN, SAMPLE, add_requests, fake_service, settle
from tui_csr.config import Settings
from tui_csr.core.dn import parse_dn
from tui_csr.errors import InputError
from tui_csr.services.certificates import missing_sans, parse_certificate
from tui_csr.services.orphans import OrphanReport
from tui_csr.ui.app import TuiCsrApp, TuiCsrCommands
from tui_csr.ui.dialogs.delete import DeleteDialog, delete_warning, deleted_text
from tui_csr.ui.dialogs.group_form import GroupFormDialog
from tui_csr.ui.keymap import apply_keymap, declared_ids
from tui_csr.ui.screens.help import HelpScreen
from tui_csr.ui.screens.main import KEY_GONE, MainScreen
from tui_csr.ui.widgets.toggles import (
    CHOSEN,
    TICKED,
    UNCHOSEN,
    UNTICKED,
    StateRadioButton,
    StateSelectionList,
)

SIZE = (80, 24)


def _app(tmp_path: Path, **kw) -> TuiCsrApp:
    service = fake_service(tmp_path / "d", **kw)
    add_requests(service)
    return TuiCsrApp(service, pin=FAKE_PIN)


# -- item 8: tabs by key, Help titled by its tab, n on Groups from the tab bar, the palette --

async def test_tabs_by_number_and_ctrl_page_keys(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tabs = app.main_screen.query_one(TabbedContent)
        await pilot.press("3")
        assert tabs.active == "groups-tab"
        await pilot.press("ctrl+pagedown")
        assert tabs.active == "requests-tab"
        await pilot.press("ctrl+pageup")
        assert tabs.active == "groups-tab"
        await pilot.press("2")
        await settle(pilot)
        assert tabs.active == "certificates-tab"
        # Shown in the footer ("1-3 Tabs") and in Help.
        shown = {b.binding.key_display or b.binding.key: b.binding.description
                 for b in app.screen.active_bindings.values() if b.binding.show}
        assert shown.get("1-3") == "Tabs"
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert app.screen._title == "Keys: Certificates"
        assert "Tabs: 1 2 3 or ctrl+pageup/pagedown" in str(app.screen.query_one("#hint")
                                                             .render())


async def test_help_on_groups_is_titled_groups_and_n_works_from_the_tab_bar(
        tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("f1")
        assert app.screen._title == "Keys: Groups"
        await pilot.press("escape")
        app.main_screen.query_one(TabbedContent).query_one("Tabs").focus()
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, GroupFormDialog)


async def test_palette_finds_certificates_and_every_action(tmp_path: Path) -> None:
    names = [name for name, _, _ in TuiCsrCommands.ENTRIES]
    for wanted in ("Certificates tab", "View certificate", "Download certificate (PEM / DER / "
                   "chain)", "Import certificate", "Delete request (destroys the key)",
                   "Edit groups and owner", "Download key attestation", "Requests tab",
                   "Groups tab", "Edit group"):
        assert wanted in names, wanted
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = TuiCsrCommands(app.screen)
        hits = [hit async for hit in provider.search("cert")]
        found = {str(hit.text) for hit in hits}
        assert {"Certificates tab", "View certificate", "Import certificate"} <= found
        await app.run_action("tab(2)")
        assert app.main_screen.active_tab == "groups-tab"


# -- item 3: the footer during generation --------------------------------------------------
# (the real RSA-4096 run is in tests/ui/test_end_to_end.py; here the rule itself)

async def test_back_and_cancel_leave_the_footer_while_busy(tmp_path: Path) -> None:
    from tui_csr.ui.screens.wizard import GenerateWizard

    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard)
        wizard._show_step(1)
        assert wizard.check_action("back", ()) is True
        wizard.busy = True
        assert wizard.check_action("back", ()) is False
        assert wizard.check_action("cancel", ()) is False
        wizard.busy = False


# -- item 7: sorting onto a column hidden at 80 columns -----------------------------------

async def test_sort_names_the_column_and_brings_it_into_view(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.requests.table
        for _ in range(len(table.columns)):  # on to Owner, off to the right at 80 columns
            await pilot.press("s")
            await pilot.pause()
            if app.main_screen.requests.sort_column == "owner":
                break
        assert app.main_screen.requests.sort_column == "owner"
        assert "Sorted by Owner, ascending (▲)." in [n.message for n in app._notifications]
        headers = [str(c.label) for c in table.columns.values()]
        assert "Owner ▲" in headers
        columns = list(table.columns.values())
        index = [c.key.value for c in columns].index("attestation")
        await pilot.press("S")  # reverse, then on to the last column (off the right edge)
        for _ in range(len(columns)):
            if app.main_screen.requests.sort_column == "attestation":
                break
            await pilot.press("s")
            await pilot.pause()
        await pilot.pause()
        x = sum(c.get_render_width(table) for c in columns[:index])
        width = columns[index].get_render_width(table)
        visible = table.scrollable_content_region.width
        assert x + width > visible, "the test needs a column hidden at 80 columns"
        await pilot.pause()
        assert table.scroll_x <= x and x + width <= table.scroll_x + visible + 2  # the edge


# -- item 9: a request whose key is gone ---------------------------------------------------

async def test_request_with_lost_key_is_marked_and_delete_says_only_the_record(
        tmp_path: Path) -> None:
    app = _app(tmp_path)
    lost = SAMPLE[2]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main_screen.post_message(MainScreen.OrphansFound(OrphanReport([], [lost])))
        await settle(pilot)
        await pilot.press("escape")  # the orphans report
        await settle(pilot)
        rows = {r.request.id: r.cells for r in app.main_screen.requests.rows}
        assert rows[lost.id][2] == KEY_GONE
        assert rows[SAMPLE[0].id][2] != KEY_GONE
        assert lost.id in app.lost_key_ids
    assert "destroys its private key" not in delete_warning(lost, key_gone=True)
    assert "only the request record" in delete_warning(lost, key_gone=True)
    assert "was destroyed" not in deleted_text(lost, key_gone=True)
    assert "destroys its private key" in delete_warning(lost)
    dialog = DeleteDialog(lost, key_gone=True)
    assert dialog.key_gone


# -- item 10: import errors without parser internals; SANs the certificate lacks ---------

def test_import_errors_name_no_parser_internals() -> None:
    for data in (b"\x30\x82\x01\x00\x01", b"junk", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                 "-----END CERTIFICATE-----\n"):
        with pytest.raises(InputError) as info:
            parse_certificate(data)
        assert "ParseError" not in info.value.message and "ShortData" not in info.value.message
        assert info.value.message.startswith("This is not an X.509 certificate:")


def test_missing_sans_are_named() -> None:
    from tests.ui.test_literal_text import _certificate

    leaf, _ = _certificate("a", "CA")
    cert = parse_certificate(leaf)
    assert missing_sans([("dns", "lit.example")], cert) == []
    assert missing_sans([("dns", "LIT.example"), ("email", "a@b.example")], cert) == \
        ["email:a@b.example"]


# -- item 6: several OUs in the fields view --------------------------------------------------

async def test_wizard_keeps_each_ou_in_both_views(tmp_path: Path) -> None:
    from tui_csr.ui.screens.wizard import GenerateWizard

    app = _app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard)
        await pilot.press("ctrl+n")
        await settle(pilot)
        step = wizard.dn_step
        step.query_one("#dn", Input).value = "CN=a,OU=PKI,OU=IT,O=Example,C=DE"
        await pilot.pause()
        ou = step.query_one("#f-ou", TextArea)
        assert ou.text == "IT\nPKI"  # outermost first, as --ou IT --ou PKI
        assert step.subject() == parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")
        ou.focus()
        ou.load_text("IT\nPKI\nSub")
        await pilot.pause()
        assert step.query_one("#dn", Input).value == "CN=a,OU=Sub,OU=PKI,OU=IT,O=Example,C=DE"
        ou.load_text("IT")
        await pilot.pause()
        assert step.query_one("#dn", Input).value == "CN=a,OU=IT,O=Example,C=DE"


async def test_step_mark_goes_once_the_dn_is_fixed(tmp_path: Path) -> None:
    from tui_csr.ui.screens.wizard import GenerateWizard
    from tui_csr.ui.wizard.step_list import StepState

    app = _app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard)
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press(*"O=x")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert wizard.states[1] is StepState.ERROR
        wizard.dn_step.query_one("#dn", Input).value = "CN=fixed.example,O=x"
        await pilot.pause()
        assert wizard.states[1] is not StepState.ERROR


# -- item 11: state visible without colour; NO_COLOR ----------------------------------------

async def test_toggle_state_is_in_the_glyph(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    from textual.app import App, ComposeResult
    from textual.filter import Monochrome

    class Toggles(App[None]):
        def compose(self) -> ComposeResult:
            yield StateRadioButton("on", value=True, id="on")
            yield StateRadioButton("off", id="off")
            yield StateSelectionList(("ticked", 1, True), ("unticked", 2, False), id="list")

    app = Toggles()
    assert app.no_color and any(isinstance(f, Monochrome) for f in app.get_line_filters())
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        assert str(app.query_one("#on", StateRadioButton)._button).startswith(CHOSEN)
        assert str(app.query_one("#off", StateRadioButton)._button).startswith(UNCHOSEN)
        lines = [app.query_one("#list").render_line(y).text for y in range(2)]
        assert TICKED in lines[0] and UNTICKED in lines[1]


# -- issue 11: user keymaps -------------------------------------------------------------------

async def test_keys_table_remaps_a_binding_by_id(tmp_path: Path) -> None:
    assert {"requests.filter", "wizard.apply", "main.tab_1"} <= declared_ids()
    app = _app(tmp_path)
    app.service.settings.keys = {"main.refresh": "f5", "no.such.id": "f6"}
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert any("no.such.id" in n.message for n in app._notifications)
        await pilot.press("f1")
        keys = {k.id: k.keys for k in app.screen.keys}
        assert keys["main.refresh"] == "f5"  # Help shows the remapped key and its id
    assert apply_keymap(app, Settings()) == []  # no [keys] table: nothing to apply
