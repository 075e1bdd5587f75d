"""Issue 12 item 1: text from the store, a token or a CA is shown literally everywhere.

A store holds requests, groups and an issued certificate whose texts are markup-like
(``[/b]``, ``[i]…[/i]``, ``[link=…]…[/link]``, ``[@click=app.quit]x[/]``) or carry escape
sequences. The app must open (a stray ``[/b]`` once made every start die with ``MarkupError``),
show each text exactly as stored on every tab, in View CSR, View certificate, the dialogs and
the notifications, and survive every action on them. Control characters appear as ``\\x1b``.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rich.text import Text
from textual.widgets import DataTable, Input, OptionList, SelectionList, Static, TextArea

from tests.ui.conftest import FAKE_PIN, FIXED, USER, fake_service, make_request, settle
from tui_csr.core.models import Group, Status
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.actions import ActionsMenu
from tui_csr.ui.dialogs.delete import DeleteDialog
from tui_csr.ui.dialogs.edit_groups import EditGroupsDialog
from tui_csr.ui.dialogs.error import ErrorDialog
from tui_csr.ui.dialogs.group_form import GroupFormDialog
from tui_csr.ui.dialogs.save import SaveDialog
from tui_csr.ui.screens.help import HelpScreen
from tui_csr.ui.screens.main import MainScreen
from tui_csr.ui.screens.view_certificate import ViewCertificateScreen
from tui_csr.ui.screens.view_csr import ViewCsrScreen

SIZE = (120, 40)
CLOSING = "Closing [/b] tag"
ITALIC = "[i]lab[/i]"
LINK = "[link=https://evil.example]click[/link]"
CLICK = "[@click=app.quit]x[/]"
ESCAPE = "\x1b[2J\x1b]0 owned\x07"
SHOWN_ESCAPE = "\\x1b[2J\\x1b]0 owned\\x07"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _certificate(subject_cn: str, issuer_cn: str) -> tuple[str, str]:
    """A certificate for ``subject_cn`` issued by a CA named ``issuer_cn``, and the CA's."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
    start = FIXED - timedelta(days=1)

    def build(subject: x509.Name, public_key, issuer_name: x509.Name) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
                .public_key(public_key).serial_number(0x5EED).not_valid_before(start)
                .not_valid_after(start + timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("lit.example")]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))

    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]),
                 key.public_key(), issuer)
    ca = build(issuer, ca_key.public_key(), issuer)
    pem = serialization.Encoding.PEM
    return leaf.public_bytes(pem).decode(), ca.public_bytes(pem).decode()


def _service(tmp_path: Path):
    svc = fake_service(tmp_path / "data", groups=(LINK, CLICK))
    svc.store.add_group(Group(ITALIC, policy=CLICK, description=LINK, created=FIXED,
                              created_by=USER))
    pending = make_request(1, ITALIC, CLOSING, groups=(LINK,), owner="bob")
    pending = replace(pending, subject=f"CN={CLOSING},O={LINK}",
                      subject_fields={"CN": CLOSING, "O": LINK})
    leaf, ca = _certificate(f"[b]{CLICK}", f"CA {ESCAPE} {LINK}")
    issued = make_request(2, CLICK, "[b]MARKUP[/b] [red]x[/red]", groups=(CLICK, ITALIC),
                          hours=1)
    issued = replace(issued, status=Status.ISSUED, certificate_pem=leaf + ca, issued=FIXED)
    svc.store.add_request(pending)
    svc.store.add_request(issued)
    return svc


def cells(table: DataTable) -> list[list[str]]:
    """Every cell of ``table`` as shown (a str cell would have been read as markup)."""
    rows = []
    for index in range(table.row_count):
        row = table.get_row_at(index)
        assert all(isinstance(c, Text) for c in row), "a str cell is parsed as markup"
        rows.append([c.plain for c in row])
    return rows


def statics(screen) -> str:
    """The text of every Static (and Label) on ``screen``, as rendered."""
    return "\n".join(str(w.render()) for w in screen.query(Static))


def assert_notifications_literal(app) -> None:
    for note in app._notifications:
        assert note.markup is False, note.message


async def test_markup_and_escapes_show_literally_on_every_screen(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    svc = _service(tmp_path)
    app = TuiCsrApp(svc, pin=FAKE_PIN, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.main_screen
        assert isinstance(app.screen, MainScreen)
        # -- Requests tab: the label, subject CN, groups and owner as stored.
        rows = cells(main.requests.table)
        assert [r[0] for r in rows] == [ITALIC]
        assert rows[0][1] == CLOSING and rows[0][4] == LINK and rows[0][5] == "bob"
        # The filter takes markup-like text as text.
        await pilot.press("slash", *"[/b]")
        await settle(pilot)
        assert [r[0] for r in cells(main.requests.table)] == [ITALIC]
        assert main.requests.filter_text == "[/b]"
        await pilot.press("escape")
        await settle(pilot)
        # -- View CSR.
        main.requests.table.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ViewCsrScreen)
        text = statics(app.screen)
        # (the Subject fact comes from the stored CSR, a fixed www.example.com one)
        assert ITALIC in text and f"\n{LINK}\n" in text
        # -- its Actions menu, Edit groups, Delete (each opened and closed).
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ActionsMenu)
        assert f"Actions: {ITALIC}" in statics(app.screen)
        menu = app.screen.query_one(OptionList)
        menu.highlighted = [a.value for a, _ in app.screen.actions].index("edit")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EditGroupsDialog)
        groups = app.screen.query_one(SelectionList)
        prompts = [str(groups.get_option_at_index(i).prompt)
                   for i in range(groups.option_count)]
        assert set(prompts) == {LINK, CLICK, ITALIC}
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        menu = app.screen.query_one(OptionList)
        menu.highlighted = [a.value for a, _ in app.screen.actions].index("delete")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DeleteDialog)
        assert f"Delete request '{ITALIC}'?" in statics(app.screen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("c")  # copy: a notification naming nothing but fixed text
        await pilot.press("escape")
        await settle(pilot)
        # -- Certificates tab (key 2): subject, issuer with the escape written out.
        await pilot.press("2")
        await settle(pilot)
        rows = cells(main.certificates.table)
        assert rows[0][0] == f"[b]{CLICK}"
        assert rows[0][2].startswith(f"CA {SHOWN_ESCAPE}")
        assert "\x1b" not in "".join(rows[0])
        assert rows[0][1] == "319 days"  # 2027-01-14 from 2026-03-01: the injected clock
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ViewCertificateScreen)
        decoded = app.screen.query_one(TextArea).text
        assert f"Subject: CN=[b]{CLICK}" in decoded
        assert SHOWN_ESCAPE in decoded and "\x1b" not in decoded
        assert "SHA-256:" in decoded and "Chain certificate 1 of 1:" in decoded
        # Save as PEM, then DER, then the chain: openssl reads each.
        for index, name in enumerate(("cert.pem", "cert.der", "chain.pem")):
            await pilot.press("s")
            await settle(pilot)
            dialog = app.screen
            assert isinstance(dialog, SaveDialog)
            assert [f.id for f in dialog.formats] == ["cert-pem", "cert-der", "cert-chain"]
            dialog.query_one(f"#{dialog.formats[index].id}").value = True
            await pilot.pause()
            dialog.query_one("#path", Input).value = name
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert isinstance(app.screen, ViewCertificateScreen)
        for name, form in (("cert.pem", "PEM"), ("cert.der", "DER")):
            await asyncio.to_thread(subprocess.run, ["openssl", "x509", "-in",
                                    str(tmp_path / name), "-inform", form, "-noout"],
                                    check=True)
        assert (tmp_path / "chain.pem").read_text().count("BEGIN CERTIFICATE") == 2
        await pilot.press("escape")
        await settle(pilot)
        # -- Groups tab (key 3): names, policies, descriptions; the edit dialog's title.
        await pilot.press("3")
        await settle(pilot)
        rows = cells(main.groups.table)
        assert sorted(r[0] for r in rows) == sorted([LINK, CLICK, ITALIC])
        italic = next(r for r in rows if r[0] == ITALIC)
        assert italic[1:3] == [CLICK, LINK]
        main.groups.table.move_cursor(row=[r[0] for r in rows].index(ITALIC))
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, GroupFormDialog)
        assert f"Edit group '{ITALIC}'" in statics(app.screen)
        assert app.screen.query_one("#policy", Input).value == CLICK
        await pilot.press("escape")
        await settle(pilot)
        # A group named like a click action: created, notified literally, app still running.
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#name", Input).value = "[@click=app.quit]new[/]"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert any("[@click=app.quit]new[/]" in n.message for n in app._notifications)
        # -- Help and the palette over each tab.
        for key in ("1", "2", "3"):
            await pilot.press(key, "f1")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape", "ctrl+p")
            await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
        assert_notifications_literal(app)
        assert not any(isinstance(s, ErrorDialog) for s in app.screen_stack)
        assert app.is_running and app.return_code is None
    assert {g.name for g in svc.store.list_groups()} >= {"[@click=app.quit]new[/]"}


@pytest.mark.parametrize("value", [CLOSING, ITALIC, LINK, CLICK])
async def test_error_and_confirm_dialogs_do_not_read_markup(tmp_path: Path, value: str) -> None:
    """Titles and questions quote labels and group names: shown as typed."""
    from tui_csr.ui.dialogs.confirm import ConfirmDialog

    svc = _service(tmp_path)
    app = TuiCsrApp(svc, pin=FAKE_PIN, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.push_screen(ErrorDialog(f"'{value}' was not deleted", f"{value} {ESCAPE}"))
        await pilot.pause()
        shown = statics(app.screen)
        assert f"'{value}' was not deleted" in shown and SHOWN_ESCAPE in shown
        await pilot.press("escape")
        await app.push_screen(ConfirmDialog(f"Remove group '{value}'?", value))
        await pilot.pause()
        assert f"Remove group '{value}'?" in statics(app.screen)
        app.notify(value, title=value)
        await pilot.pause()
        assert_notifications_literal(app)
