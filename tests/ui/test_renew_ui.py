"""Issue 16 in the TUI, on the session's real SoftHSM token: Renew from the Actions menu opens
the wizard pre-filled from the source, Apply makes a linked successor with a new key; importing
the successor's certificate offers to retire the source (key destroyed, record kept retired);
a retired request's menu and view say so."""

from __future__ import annotations

import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from textual.widgets import OptionList

from tests.integration.ca import TestCA, pem
from tests.ui.lifecycle_harness import GROUP, LifecycleHarness, settle, type_into
from tests.ui.wizard_harness import next_step
from tui_csr.core.models import Request, Status
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.dialogs.actions import Action, ActionsMenu
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.dialogs.import_cert import ImportCertDialog
from tui_csr.ui.dialogs.renew_choice import RenewChoiceDialog
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.screens.view_csr import ViewCsrScreen
from tui_csr.ui.screens.wizard import GenerateWizard

SIZE = (100, 30)


def spki(csr_pem: str) -> bytes:
    return x509.load_pem_x509_csr(csr_pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def subject_der(csr_pem: str) -> bytes:
    return x509.load_pem_x509_csr(csr_pem.encode()).subject.public_bytes()


async def issued_source(service: CsrService, ca: TestCA) -> Request:
    source = await service.generate(GenerateParams(
        key_spec="RSA3072", hash="SHA384", pss=True,
        fields=[("CN", "renew-ui.example"), ("O", "Example"), ("C", "DE")],
        sans=[("dns", "renew-ui.example"), ("email", "pki@example.com")], groups=[GROUP],
        owner="bob", label=f"ui-{uuid.uuid4().hex[:10]}"))
    await service.import_certificate(source.id, pem(ca.issue(source.csr_pem)))
    return await service.get_request(source.id)


async def choose(pilot, app: LifecycleHarness, request: Request, action: Action) -> None:
    app.open_actions(request)
    await settle(pilot)
    menu = app.screen
    assert isinstance(menu, ActionsMenu)
    menu.query_one(OptionList).highlighted = [a for a, _ in menu.actions].index(action)
    await pilot.press("enter")
    await settle(pilot)


async def test_renew_prefills_the_wizard_and_retire_after_import(service: CsrService,
                                                                 tmp_path: Path) -> None:
    ca = TestCA()
    source = await issued_source(service, ca)
    before = await service.token.object_count()
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, source, Action.RENEW)
        assert isinstance(app.screen, RenewChoiceDialog)
        await pilot.press("enter")  # the first choice: a new key pair
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, GenerateWizard) and wizard.renews is not None
        assert "Renew '" in str(wizard.query_one("#wizard-title").render())
        step = wizard.token_step
        assert (step.key_spec, step.hash_name, step.pss) == ("RSA3072", "SHA384", True)
        assert step.label != source.label and step.wants_label()  # a new, suggested label
        assert wizard.dn_step.current_dn() is not None
        assert wizard.dn_step.current_dn().get("CN") == "renew-ui.example"
        assert [(r.kind, r.value) for r in wizard.san_step.rows] == [
            ("dns", "renew-ui.example"), ("email", "pki@example.com")]
        for _ in range(3):
            await next_step(pilot)
        assert wizard.groups_step.groups == [GROUP] and wizard.groups_step.owner == "bob"
        await next_step(pilot)
        assert wizard.current == 4
        await pilot.press("ctrl+g")
        await settle(pilot)
        result = app.screen
        assert isinstance(result, ResultScreen)
        new = result.request
        await pilot.press("escape")
        await settle(pilot)

        # The successor's certificate: imported, then the prompt offers to retire the source.
        (tmp_path / "new.pem").write_bytes(pem(ca.issue(new.csr_pem)))
        await choose(pilot, app, new, Action.IMPORT)
        assert isinstance(app.screen, ImportCertDialog)
        await type_into(pilot, "#path", "new.pem")
        await pilot.press("enter")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, ConfirmDialog)
        assert f"renews '{source.label}'" in str(prompt.query_one("#question").render())
        await pilot.press("y")
        await settle(pilot)
    assert new.renews == source.id
    assert spki(new.csr_pem) != spki(source.csr_pem)
    assert subject_der(new.csr_pem) == subject_der(source.csr_pem)
    assert (new.sans, new.groups, new.owner, new.scheme) == (
        source.sans, source.groups, source.owner, "PSS")
    old = service.store.get_request(source.id)
    assert old.status is Status.RETIRED and old.renewed_by == new.id
    assert not await service.token.key_exists(bytes.fromhex(source.key_id))
    # +2 (the new pair) +1 (its certificate) -2 (the old pair) -1 (the old certificate)
    assert await service.token.object_count() == before


async def test_declining_the_retire_prompt_keeps_the_source(service: CsrService,
                                                            tmp_path: Path) -> None:
    ca = TestCA()
    source = await issued_source(service, ca)
    new = await service.renew(source.id)
    (tmp_path / "new.pem").write_bytes(pem(ca.issue(new.csr_pem)))
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, new, Action.IMPORT)
        await type_into(pilot, "#path", "new.pem")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await settle(pilot)
    assert service.store.get_request(source.id).status is Status.ISSUED
    assert await service.token.key_exists(bytes.fromhex(source.key_id))


async def test_a_retired_request_says_so(service: CsrService, tmp_path: Path) -> None:
    ca = TestCA()
    source = await issued_source(service, ca)
    new = await service.renew(source.id)
    await service.import_certificate_for(new.id, pem(ca.issue(new.csr_pem)), retire_old=True)
    retired = service.store.get_request(source.id)
    assert retired.status is Status.RETIRED
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_actions(retired)
        await settle(pilot)
        menu = app.screen
        assert isinstance(menu, ActionsMenu)
        for action in (Action.IMPORT, Action.EDIT, Action.RENEW):
            assert menu.disabled_reason(action) is not None
        assert "retired" in (menu.disabled_reason(Action.RENEW) or "")
        assert menu.disabled_reason(Action.VIEW_CERTIFICATE) is None
        await pilot.press("escape")
        app.push_screen(ViewCsrScreen(service, retired))
        await settle(pilot)
        assert str(app.screen.query_one("#title").render()).endswith("(retired)")
    # Renewing the source again is refused: it is already renewed.
    menu_source = ActionsMenu(service.store.get_request(new.id))
    assert menu_source.disabled_reason(Action.RENEW) is None


async def test_renew_with_the_same_key_pair(service: CsrService, tmp_path: Path) -> None:
    """Renew, then "Same key pair": the successor's CSR is made at once, signed by the key the
    source has (no new object on the token), and opens in View CSR; escape renews nothing."""
    ca = TestCA()
    source = await issued_source(service, ca)
    before = await service.token.object_count()
    app = LifecycleHarness(service, save_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, source, Action.RENEW)
        assert isinstance(app.screen, RenewChoiceDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert service.store.get_request(source.id).renewed_by is None
        await choose(pilot, app, source, Action.RENEW)
        await pilot.press("down", "enter")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, ViewCsrScreen), view
        new = view.request
    assert new.renews == source.id and new.id != source.id
    assert spki(new.csr_pem) == spki(source.csr_pem)
    assert subject_der(new.csr_pem) == subject_der(source.csr_pem)
    assert x509.load_pem_x509_csr(new.csr_pem.encode()).is_signature_valid
    assert service.store.get_request(source.id).renewed_by == new.id
    assert await service.token.object_count() == before  # no key pair made
