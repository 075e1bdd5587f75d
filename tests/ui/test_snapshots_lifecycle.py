"""Snapshots of the request-lifecycle screens: the Actions menu, View CSR, every dialog, and the
Certificates and Groups tabs.

Deterministic: a fake token, fixed records (ids, labels, dates) put straight into a fresh store,
certificates with a fixed serial and validity, local time UTC, one terminal size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from textual.screen import Screen

from tests.ui.conftest import FIXED, SAMPLE, add_requests, fake_service, make_request
from tests.ui.lifecycle_harness import LifecycleHarness, settle
from tui_csr.core.models import Group, Status
from tui_csr.hsm.token import TokenKey
from tui_csr.service import CsrService
from tui_csr.services.orphans import OrphanReport
from tui_csr.ui.dialogs.actions import NO_ATTESTATION, ActionsMenu, AttestationSaveDialog
from tui_csr.ui.dialogs.delete import DeleteDialog
from tui_csr.ui.dialogs.edit_groups import EditGroupsDialog
from tui_csr.ui.dialogs.group_form import GroupFormDialog
from tui_csr.ui.dialogs.import_cert import ImportCertDialog
from tui_csr.ui.dialogs.orphans import AdoptDialog, OrphansDialog
from tui_csr.ui.dialogs.renew_choice import RenewChoiceDialog
from tui_csr.ui.screens.view_csr import ViewCsrScreen

SIZE = (100, 30)
FOLDER = Path("/srv/pki/incoming")


def certificate(cn: str, serial: int, not_before: datetime, not_after: datetime,
                issuer: str = "Example CA 1") -> str:
    """A certificate PEM that is the same on every run: Ed25519 keys from fixed seeds sign
    deterministically. Its key is not the request's (the import refusal snapshot uses that)."""
    subject_key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    issuer_key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")]))
            .public_key(subject_key.public_key()).serial_number(serial)
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(issuer_key, None))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


ISSUED = (
    replace(make_request(11, "shop-2026", "shop.example.com", owner="bob", hours=4),
            status=Status.ISSUED, issued=FIXED,
            certificate_pem=certificate("shop.example.com", 0x1A2B3C4D5E6F,
                                        datetime(2026, 1, 15, tzinfo=UTC),
                                        datetime(2036, 1, 15, tzinfo=UTC))),
    replace(make_request(12, "old-intranet", "intranet.example.org",
                         groups=("Internal",), hours=5),
            status=Status.ISSUED, issued=FIXED,
            certificate_pem=certificate("intranet.example.org", 0x0F00BA4,
                                        datetime(2024, 3, 1, tzinfo=UTC),
                                        datetime(2025, 3, 1, tzinfo=UTC))),
)


@pytest.fixture
def svc(tmp_path: Path, utc: None) -> CsrService:
    """A fake-token service (user alice, an administrator) holding the fixed records."""
    service = fake_service(tmp_path / "data")
    add_requests(service, SAMPLE + ISSUED)
    service.store.add_group(Group("Empty", policy="none-yet", description="Not used yet",
                                  created=FIXED, created_by="alice"))
    return service


async def focus_table(pilot) -> None:
    """Settle, then focus the active tab's table (its keys then show in the footer)."""
    await settle(pilot)
    tabs = pilot.app.query_one("#tabs")
    view = pilot.app.groups if tabs.active == "groups-tab" else pilot.app.certificates
    view.table.focus()
    await pilot.pause()


#: "Now" for the snapshots' Certificates tab.
SNAPSHOT_NOW = datetime(2026, 2, 1, tzinfo=UTC)


def harness(service: CsrService, push: Callable[[], Screen] | None = None,
            tab: str = "certificates-tab") -> LifecycleHarness:
    # The Certificates tab counts days from a fixed "now": snapshots must not age.
    return LifecycleHarness(service, push=push, save_directory=FOLDER, tab=tab,
                            clock=lambda: SNAPSHOT_NOW)


class TestLifecycleScreens:
    """The Actions menu and View CSR."""

    def test_actions_menu(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: ActionsMenu(SAMPLE[0], attestation=NO_ATTESTATION))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_actions_menu_issued(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: ActionsMenu(ISSUED[0], attestation=None))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_view_csr(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: ViewCsrScreen(svc, SAMPLE[0]))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_view_csr_80x24(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: ViewCsrScreen(svc, ISSUED[0]))
        assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


class TestLifecycleDialogs:
    """Each dialog as it opens (and the refusals shown in it)."""

    def test_delete(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: DeleteDialog(SAMPLE[0]))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_renew_choice_80x24(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: RenewChoiceDialog(ISSUED[0]))
        assert snap_compare(app, terminal_size=(80, 24), run_before=settle)

    def test_edit_groups_refuses_no_group(self, snap_compare, svc: CsrService) -> None:
        groups = ["Empty", "Internal", "Web"]
        app = harness(svc, lambda: EditGroupsDialog(SAMPLE[1], groups))

        async def untick_all(pilot) -> None:
            await settle(pilot)
            pilot.app.screen.query_one("SelectionList").deselect_all()
            # The dialog's own action, not a click: a clicked button stays "pressed" for
            # ~0.2 s, and a snapshot taken inside that window differs.
            await pilot.app.screen.run_action("save")
            await settle(pilot)

        assert snap_compare(app, terminal_size=SIZE, run_before=untick_all)

    def test_edit_groups(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: EditGroupsDialog(SAMPLE[1], ["Empty", "Internal", "Web"]))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_import_certificate(self, snap_compare, svc: CsrService) -> None:
        async def attempt(data: bytes):
            raise AssertionError("not called")

        app = harness(svc, lambda: ImportCertDialog(SAMPLE[0], attempt, directory=FOLDER))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_import_certificate_refused(self, snap_compare, svc: CsrService) -> None:
        async def attempt(data: bytes):
            return await svc.import_certificate(SAMPLE[0].id, data)

        app = harness(svc, lambda: ImportCertDialog(SAMPLE[0], attempt, directory=FOLDER))

        async def paste_foreign(pilot) -> None:
            await settle(pilot)
            pilot.app.screen.query_one("#pem").load_text(ISSUED[0].certificate_pem)
            await pilot.press("ctrl+s")
            await settle(pilot)

        assert snap_compare(app, terminal_size=SIZE, run_before=paste_foreign)

    def test_import_certificate_refused_80x24(self, snap_compare, svc: CsrService) -> None:
        async def attempt(data: bytes):
            return await svc.import_certificate(SAMPLE[0].id, data)

        app = harness(svc, lambda: ImportCertDialog(SAMPLE[0], attempt, directory=FOLDER))

        async def paste_foreign(pilot) -> None:
            await settle(pilot)
            pilot.app.screen.query_one("#pem").load_text(ISSUED[0].certificate_pem)
            await pilot.press("ctrl+s")
            await settle(pilot)

        assert snap_compare(app, terminal_size=(80, 24), run_before=paste_foreign)

    def test_group_create(self, snap_compare, svc: CsrService) -> None:
        async def submit(name: str, policy: str, description: str) -> None:
            raise AssertionError("not called")

        app = harness(svc, lambda: GroupFormDialog(submit), tab="groups-tab")
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_group_edit(self, snap_compare, svc: CsrService) -> None:
        async def submit(name: str, policy: str, description: str) -> None:
            raise AssertionError("not called")

        group = Group("Web", policy="web-policy", description="Public web servers")
        app = harness(svc, lambda: GroupFormDialog(submit, group=group), tab="groups-tab")
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_orphans(self, snap_compare, svc: CsrService) -> None:
        report = OrphanReport(
            [TokenKey(bytes.fromhex("a1" * 20), "lost-web-2025", True, True, True),
             TokenKey(bytes.fromhex("b2" * 20), "forgotten-api", True, False, True)],
            [SAMPLE[3]])
        app = harness(svc, lambda: OrphansDialog(svc, report))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_adopt(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: AdoptDialog(svc, "a1" * 20, "lost-web-2025",
                                               ["Empty", "Internal", "Web"]))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_attestation_save(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: AttestationSaveDialog(SAMPLE[0], b"\x30\x00",
                                                         directory=FOLDER))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)


class TestLifecycleTabs:
    """The Certificates and Groups tabs."""

    def test_certificates(self, snap_compare, svc: CsrService) -> None:
        assert snap_compare(harness(svc), terminal_size=SIZE, run_before=focus_table)

    def test_certificates_80x24(self, snap_compare, svc: CsrService) -> None:
        assert snap_compare(harness(svc), terminal_size=(80, 24), run_before=focus_table)

    def test_certificates_empty(self, snap_compare, tmp_path: Path, utc: None) -> None:
        app = harness(fake_service(tmp_path / "empty"))
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)

    def test_groups_admin(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, tab="groups-tab")
        assert snap_compare(app, terminal_size=SIZE, run_before=focus_table)

    def test_groups_not_admin(self, snap_compare, svc: CsrService) -> None:
        svc.settings.admins = ["root", "pkiadmin"]
        app = harness(svc, tab="groups-tab")
        assert snap_compare(app, terminal_size=SIZE, run_before=focus_table)


class TestIssue12Screens:
    """The screens issue 12 fixed, at 80x24."""

    SMALL = (80, 24)

    def test_view_certificate_80x24(self, snap_compare, svc: CsrService) -> None:
        from tui_csr.ui.screens.view_certificate import ViewCertificateScreen

        app = harness(svc, lambda: ViewCertificateScreen(ISSUED[0], save_directory=FOLDER))
        assert snap_compare(app, terminal_size=self.SMALL, run_before=settle)

    def test_view_certificate_with_chain_80x24(self, snap_compare, svc: CsrService) -> None:
        """The chain imported with a certificate (issue 16): listed after the leaf."""
        from tui_csr.ui.screens.view_certificate import ViewCertificateScreen

        chain = certificate("Example CA 1", 0x77, datetime(2025, 1, 1, tzinfo=UTC),
                            datetime(2035, 1, 1, tzinfo=UTC), issuer="Example Root CA")
        with_chain = replace(ISSUED[0], certificate_pem=(ISSUED[0].certificate_pem or "") + chain)
        app = harness(svc, lambda: ViewCertificateScreen(with_chain, save_directory=FOLDER))

        async def to_the_chain(pilot) -> None:
            await settle(pilot)
            area = pilot.app.screen.query_one("#certificate-text")
            text = area.text
            assert "No chain was imported" not in text and "Example Root CA" in text
            line = next(n for n, row in enumerate(text.splitlines()) if "Example Root CA" in row)
            area.scroll_to(y=max(line - 3, 0), animate=False)
            await pilot.pause()

        assert snap_compare(app, terminal_size=self.SMALL, run_before=to_the_chain)

    def test_save_certificate_80x24(self, snap_compare, svc: CsrService) -> None:
        from tui_csr.ui.dialogs.save import SaveDialog, certificate_formats

        app = harness(svc, lambda: SaveDialog(ISSUED[0], directory=FOLDER, what="certificate",
                                              formats=certificate_formats(ISSUED[0])))
        assert snap_compare(app, terminal_size=self.SMALL, run_before=settle)

    def test_actions_menu_issued_80x24(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: ActionsMenu(ISSUED[0], attestation=NO_ATTESTATION))
        assert snap_compare(app, terminal_size=self.SMALL, run_before=settle)

    def test_group_edit_80x24(self, snap_compare, svc: CsrService) -> None:
        async def submit(name: str, policy: str, description: str) -> None:
            raise AssertionError("not called")

        group = Group("Web", policy="web-policy", description="Public web servers")
        app = harness(svc, lambda: GroupFormDialog(submit, group=group), tab="groups-tab")
        assert snap_compare(app, terminal_size=self.SMALL, run_before=settle)

    def test_delete_lost_key_80x24(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, lambda: DeleteDialog(SAMPLE[1], key_gone=True))
        assert snap_compare(app, terminal_size=self.SMALL, run_before=settle)

    def test_groups_80x24(self, snap_compare, svc: CsrService) -> None:
        app = harness(svc, tab="groups-tab")
        assert snap_compare(app, terminal_size=self.SMALL, run_before=focus_table)

    def test_markup_like_texts_80x24(self, snap_compare, tmp_path: Path, utc: None) -> None:
        """Labels, subjects, groups and an issuer holding markup and an escape, shown as typed."""
        service = fake_service(tmp_path / "markup", groups=("[link=x]web[/link]",))
        pending = make_request(31, "Closing [/b] tag", "[i]lab[/i]",
                               groups=("[link=x]web[/link]",), owner="bob")
        issued = replace(make_request(32, "[@click=app.quit]x[/]", "[b]bold[/b]",
                                      groups=("[link=x]web[/link]",), hours=1),
                         status=Status.ISSUED, issued=FIXED,
                         certificate_pem=certificate("[b]bold[/b]", 0x5EED,
                                                     datetime(2026, 1, 15, tzinfo=UTC),
                                                     datetime(2027, 1, 15, tzinfo=UTC),
                                                     issuer="CA \x1b[2J [red]x[/red]"))
        add_requests(service, (pending, issued))
        app = harness(service)
        assert snap_compare(app, terminal_size=self.SMALL, run_before=focus_table)
