"""Pilot tests of the request lifecycle on the real SoftHSM2 token: view, copy, download, edit
groups, delete, certificate import (and its refusal), the Groups tab and the orphans dialog."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from textual.widgets import (
    Button,
    DataTable,
    Input,
    OptionList,
    RadioButton,
    SelectionList,
    TextArea,
)

from tests.integration.ca import TestCA, der, pem
from tests.ui.conftest import make_request
from tests.ui.lifecycle_harness import GROUP, LifecycleHarness, settle, type_into
from tui_csr.core.models import Request, Status
from tui_csr.errors import NotFoundError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.services.orphans import OrphanReport
from tui_csr.ui.dialogs.actions import (
    ACTIONS,
    CERTIFICATE_ACTIONS,
    ActionsMenu,
    AttestationSaveDialog,
)
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.delete import DeleteDialog
from tui_csr.ui.dialogs.edit_groups import NO_GROUP_CHOSEN, EditGroupsDialog
from tui_csr.ui.dialogs.error import ErrorDialog
from tui_csr.ui.dialogs.group_form import GroupFormDialog
from tui_csr.ui.dialogs.import_cert import ImportCertDialog
from tui_csr.ui.dialogs.orphans import AdoptDialog, OrphansDialog
from tui_csr.ui.dialogs.save import SaveDialog
from tui_csr.ui.screens.view_csr import ViewCsrScreen

SIZE = (100, 30)


async def make(service: CsrService, cn: str = "life.example") -> Request:
    """A fresh request on the token, with a label no other test uses."""
    label = f"ui-{uuid.uuid4().hex[:10]}"
    return await service.generate(GenerateParams(key_spec="P-256", fields={"CN": cn},
                                                 groups=[GROUP], label=label))


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def notices(app) -> str:
    return " | ".join(n.message for n in app._notifications)


async def choose(pilot, app: LifecycleHarness, request: Request, action: str) -> None:
    """Open the Actions menu for ``request`` and pick ``action`` with enter."""
    app.open_actions(request)
    await settle(pilot)
    assert isinstance(app.screen, ActionsMenu)
    app.screen.query_one(OptionList).highlighted = [
        a.value for a, _ in app.screen.actions].index(action)
    await pilot.press("enter")
    await settle(pilot)


# -- view, copy, download ---------------------------------------------------------------------

async def test_view_shows_decoded_fields_and_valid_signature(service: CsrService) -> None:
    req = await make(service, "view.example")
    app = LifecycleHarness(service, push=lambda: ViewCsrScreen(service, req))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ViewCsrScreen)
        assert text(app, "#fact-subject") == "CN=view.example"
        assert text(app, "#fact-key") == "EC P-256"
        assert text(app, "#fact-algorithm") == "SHA256withECDSA"
        assert text(app, "#fact-signature").startswith("valid")
        assert app.screen.query_one("#fact-signature").has_class("-valid")
        assert len(text(app, "#fact-csr_sha256").split(":")) == 32
        assert text(app, "#fact-uri") == req.pkcs11_uri
        assert text(app, "#fact-token").startswith(service.token.label)
        assert text(app, "#fact-groups") == GROUP
        assert text(app, "#fact-created").endswith(f"by {service.user}")
        assert app.screen.query_one("#pem", TextArea).text == req.csr_pem
        await pilot.press("c")
        assert app.clipboard == req.csr_pem
        await pilot.press("escape")
        assert not isinstance(app.screen, ViewCsrScreen)


async def test_menu_offers_every_action_and_view_opens(service: CsrService) -> None:
    req = await make(service)
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_actions(req)
        await settle(pilot)
        menu = app.screen
        assert isinstance(menu, ActionsMenu)
        options = menu.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == \
            [a.value for a, _ in ACTIONS if a not in CERTIFICATE_ACTIONS]
        attestation = options.get_option("attestation")
        if menu.attestation is not None:  # SoftHSM has no attestation: disabled with reason
            assert attestation.disabled
            assert menu.attestation in " ".join(str(s.render()) for s in
                                                menu.query(".reason"))
        await pilot.press("enter")  # the first entry: View CSR
        await settle(pilot)
        assert isinstance(app.screen, ViewCsrScreen) and app.screen.request.id == req.id
        await pilot.press("escape")
        app.open_actions(req)
        await settle(pilot)
        await pilot.press("escape")
        assert not isinstance(app.screen, ActionsMenu)


async def test_copy_puts_the_pem_on_the_clipboard(service: CsrService) -> None:
    req = await make(service)
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "copy")
        assert app.clipboard == req.csr_pem
        assert "clipboard" in notices(app)


async def test_download_pem_and_der(service: CsrService, tmp_path: Path) -> None:
    req = await make(service)
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "download")
        assert isinstance(app.screen, SaveDialog)
        await pilot.press("enter")
        await settle(pilot)
        pem_file = tmp_path / f"{req.label}.csr"
        assert x509.load_pem_x509_csr(pem_file.read_bytes()).subject.rfc4514_string() == \
            "CN=life.example"
        await choose(pilot, app, req, "download")
        app.screen.query_one("#der", RadioButton).value = True
        await pilot.pause()
        app.screen.query_one("#path", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        csr = x509.load_der_x509_csr((tmp_path / f"{req.label}.der").read_bytes())
        assert csr.is_signature_valid
        assert "Saved" in notices(app)


async def test_attestation_save_writes_bytes_and_refuses_silent_overwrite(
        service: CsrService, tmp_path: Path) -> None:
    req = await make(service)
    app = LifecycleHarness(service, push=lambda: AttestationSaveDialog(
        req, b"\x30\x03attested", directory=tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#path", Input).value == f"{req.label}-attestation.p7b"
        await pilot.press("enter")
        await settle(pilot)
        assert (tmp_path / f"{req.label}-attestation.p7b").read_bytes() == b"\x30\x03attested"
        app.push_screen(AttestationSaveDialog(req, b"new", directory=tmp_path))
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)  # never replaced without asking
        await pilot.press("escape")
        await settle(pilot)
        assert (tmp_path / f"{req.label}-attestation.p7b").read_bytes() == b"\x30\x03attested"


# -- edit groups ------------------------------------------------------------------------------

async def test_edit_groups_and_owner(service: CsrService) -> None:
    req = await make(service)
    await service.add_group("Internal", "internal-policy")
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "edit")
        dialog = app.screen
        assert isinstance(dialog, EditGroupsDialog)
        groups = dialog.query_one(SelectionList)
        assert groups.selected == [GROUP]
        groups.deselect_all()
        await pilot.pause()
        await pilot.click("#save")
        await settle(pilot)
        assert app.screen is dialog  # zero groups: refused under the list
        assert text(app, "#groups-problem") == NO_GROUP_CHOSEN
        assert service.store.get_request(req.id).groups == [GROUP]
        groups.select("Internal")
        await type_into(pilot, "#owner", "carol")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, EditGroupsDialog)
        stored = service.store.get_request(req.id)
        assert stored.groups == ["Internal"] and stored.owner == "carol"
        assert app.changes == 1
        assert "edit-groups" in [e.action for e in service.store.list_audit()]


async def test_edit_groups_bad_owner_stays_in_dialog(service: CsrService) -> None:
    req = await make(service)
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "edit")
        app.screen.query_one("#owner", Input).value = "bad/owner"
        await pilot.click("#save")
        await settle(pilot)
        assert isinstance(app.screen, EditGroupsDialog)
        assert "not a valid user name" in text(app, "#owner-problem")
        assert service.store.get_request(req.id).owner is None


# -- delete -----------------------------------------------------------------------------------

async def test_delete_from_view_destroys_key_and_record(service: CsrService) -> None:
    req = await make(service)
    before = await service.token.object_count()
    app = LifecycleHarness(service, push=lambda: ViewCsrScreen(service, req,
                                                              on_change=app.on_change))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ActionsMenu)
        app.screen.query_one(OptionList).highlighted = [
            a.value for a, _ in app.screen.actions].index("delete")
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, DeleteDialog)
        assert "cannot be recovered" in text(app, "#warning")
        assert dialog.query_one("#delete", Button).disabled
        await pilot.press("enter")  # nothing typed: nothing happens
        await settle(pilot)
        assert app.screen is dialog and req.label in text(app, "#hint")
        await pilot.press(*req.label)
        assert not dialog.query_one("#delete", Button).disabled
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, (DeleteDialog, ViewCsrScreen))  # the view closed
        assert "Request deleted" in [n.title for n in app._notifications]
    # The private key and the public key are gone (no marker object exists any more: issue 10).
    assert await service.token.object_count() == before - 2
    assert not await service.token.key_exists(bytes.fromhex(req.key_id))
    with pytest.raises(NotFoundError):
        service.store.get_request(req.id)
    audit = [e for e in service.store.list_audit() if e.action == "delete"]
    assert [e.subject for e in audit] == [req.id]
    assert app.changes == 1


async def test_escape_keeps_the_request(service: CsrService) -> None:
    req = await make(service)
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "delete")
        await pilot.press(*req.label, "escape")
        await settle(pilot)
    assert service.store.get_request(req.id).id == req.id
    assert await service.token.key_exists(bytes.fromhex(req.key_id))


# -- import a certificate ---------------------------------------------------------------------

async def test_import_certificate_file_moves_request_to_certificates(
        service: CsrService, tmp_path: Path) -> None:
    req = await make(service, "issued.example")
    cert = TestCA().issue(req.csr_pem)
    (tmp_path / "issued.der").write_bytes(der(cert))
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.certificates.table.row_count == 0
        await choose(pilot, app, req, "import")
        assert isinstance(app.screen, ImportCertDialog)
        await type_into(pilot, "#path", "issued.der")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ImportCertDialog)
        serial = f"{cert.serial_number:X}"
        assert serial in notices(app) and "CN=Test CA" in notices(app)
        table = app.certificates.table
        assert table.row_count == 1
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "issued.example" and row[2] == "Test CA"
        assert row[6] == GROUP
    key_id = bytes.fromhex(req.key_id)
    assert await service.token.certificates(key_id) == [der(cert)]
    assert service.store.get_request(req.id).status is Status.ISSUED
    assert [r.id for r in await service.list_requests()] == []


async def test_certificate_for_another_key_is_refused_in_the_dialog(
        service: CsrService) -> None:
    req = await make(service)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = TestCA().issue(req.csr_pem, public_key=other)
    before = await service.token.object_count()
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "import")
        dialog = app.screen
        dialog.query_one("#pem", TextArea).load_text(pem(cert).decode())
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert "for another key" in text(app, "#pem-problem")
        await type_into(pilot, "#path", "missing.crt")
        dialog.query_one("#pem", TextArea).load_text("")
        await pilot.press("enter")
        await settle(pilot)
        assert "does not exist" in text(app, "#path-problem")
        assert app.changes == 0
    assert await service.token.object_count() == before
    assert await service.token.certificates(bytes.fromhex(req.key_id)) == []
    assert service.store.get_request(req.id).status is Status.PENDING


async def test_expired_certificate_imports_with_a_warning(service: CsrService) -> None:
    req = await make(service)
    cert = TestCA().issue(req.csr_pem, start_days=-30, days=10)
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "import")
        app.screen.query_one("#pem", TextArea).load_text(pem(cert).decode())
        await pilot.press("ctrl+s")
        await settle(pilot)
        warnings = [n for n in app._notifications if n.severity == "warning"]
        assert warnings and "expired" in warnings[0].message
        assert "expired" in str(app.certificates.table.get_row_at(0)[1])


# -- groups -----------------------------------------------------------------------------------

async def test_a_new_group_policy_names_the_pending_requests_it_would_refuse(
        service: CsrService) -> None:
    service.store.add_request(make_request(78, "held-2", "held2.example"))  # in group Web
    app = LifecycleHarness(service, tab="groups-tab")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.groups.table.focus()
        app.groups.table.move_cursor(row=0)
        await pilot.press("e")
        assert isinstance(app.screen, GroupFormDialog)
        app.screen.query_one("#policy", Input).value = "sub-ca"
        await pilot.press("enter")
        await settle(pilot)
        assert service.store.get_group(GROUP).policy == "sub-ca"
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"1 pending request(s) in '{GROUP}' do not fit its new "
                                      "policy: 'held-2': ")
        assert f"group '{GROUP}' (profile sub-ca)" in warnings[0]


async def test_groups_admin_creates_edits_and_removes(service: CsrService) -> None:
    service.store.add_request(make_request(77, "held", "held.example"))  # holds group Web
    app = LifecycleHarness(service, tab="groups-tab")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.groups
        view.table.focus()
        assert [str(c) for c in view.table.get_row_at(0)] == [GROUP, "web-policy", "", "1", "0"]
        await pilot.press("n")
        assert isinstance(app.screen, GroupFormDialog)
        app.screen.query_one("#policy", Input).value = "mail-policy"
        await type_into(pilot, "#name", "Mail")
        await pilot.press("enter")
        await settle(pilot)
        assert [(g.name, g.policy) for g in service.store.list_groups()] == [
            ("Mail", "mail-policy"), (GROUP, "web-policy")]
        view.table.move_cursor(row=0)
        await pilot.press("e")
        assert app.screen.query_one("#name", Input).value == "Mail"
        # Issue 12 item 5: policy and description are editable too, with the name.
        app.screen.query_one("#policy", Input).value = "mail-policy-2"
        app.screen.query_one("#description", Input).value = "Mail relays"
        await type_into(pilot, "#name", "Mail2")
        await pilot.press("enter")
        await settle(pilot)
        assert [(g.name, g.policy, g.description) for g in service.store.list_groups()] == [
            ("Mail2", "mail-policy-2", "Mail relays"), (GROUP, "web-policy", "")]
        # A clash is refused under the name and goes away once the name is changed.
        view.table.move_cursor(row=0)
        await pilot.press("e")
        await type_into(pilot, "#name", GROUP.lower())
        await pilot.press("enter")
        await settle(pilot)
        assert "already exists" in text(app, "#problem")
        await pilot.press("x")
        assert text(app, "#problem") == ""
        await pilot.press("escape")
        await settle(pilot)
        view.table.move_cursor(row=1)  # Web holds a request: refused, with the count
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        assert "still holds 1 request" in text(app, "#message")
        await pilot.press("escape")
        view.table.move_cursor(row=0)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert [g.name for g in service.store.list_groups()] == [GROUP]
    actions = [e.action for e in service.store.list_audit()]
    assert {"group-add", "group-edit", "group-rename", "group-remove"} <= set(actions)


async def test_groups_non_admin_sees_why_and_cannot_change(service: CsrService) -> None:
    service.settings.admins = ["someone-else"]
    audit_before = len(service.store.list_audit())
    app = LifecycleHarness(service, tab="groups-tab")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.groups
        view.table.focus()
        assert text(app, "#groups-role") == (
            "Only administrators (someone-else) can create, edit or remove groups; "
            f"you are {service.user}.")
        shown = {b.binding.action for b in app.screen.active_bindings.values()
                 if b.enabled and b.binding.show}
        assert not shown & {"create", "edit", "remove"}
        for key in ("n", "e", "x"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(app.screen, (GroupFormDialog, ConfirmDialog, ErrorDialog))
    assert [g.name for g in service.store.list_groups()] == [GROUP]
    assert len(service.store.list_audit()) == audit_before


# -- orphans ----------------------------------------------------------------------------------

async def test_orphans_destroy_and_adopt(service: CsrService) -> None:
    from types import SimpleNamespace

    from tests.integration.test_intents import make_orphan

    # Two generations killed after their key pair was made (open intents, no records).
    doomed, adopted = [SimpleNamespace(key_id=(await make_orphan(
        service, "P-256", f"ui-{uuid.uuid4().hex[:10]}")).hex()) for _ in range(2)]
    lost = await make(service, "lost.example")
    await service.token.destroy(bytes.fromhex(lost.key_id))  # the record stays: a lost key
    report = await service.scan_orphans()
    mine = {doomed.key_id, adopted.key_id}
    report = OrphanReport([k for k in report.keys_without_record if k.key_id.hex() in mine],
                          report.records_without_key)
    app = LifecycleHarness(service, push=lambda: OrphansDialog(service, report, app.on_change))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, OrphansDialog)
        assert "lost.example" in text(app, "#lost")
        table = dialog.query_one("#keys", DataTable)
        table.focus()
        table.move_cursor(row=[k.key_id.hex() for k in dialog.keys].index(doomed.key_id))
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert not await service.token.key_exists(bytes.fromhex(doomed.key_id))
        assert [k.key_id.hex() for k in dialog.keys] == [adopted.key_id]
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AdoptDialog)
        assert app.screen.query_one(SelectionList).selected == [GROUP]
        await type_into(pilot, "#cn", "adopted.example")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and dialog.keys == []
        assert app.changes == 2
    again = [r for r in service.store.list_requests() if r.key_id == adopted.key_id]
    assert [r.subject for r in again] == ["CN=adopted.example"]
    assert "destroy-orphan" in [e.action for e in service.store.list_audit()]
