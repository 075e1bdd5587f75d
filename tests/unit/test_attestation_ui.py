"""The attestation facts in the UI: View CSR offers ``t`` for a request with an imported
attestation and the dialog shows its HSM, key and checks; without one the key stays hidden."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from asn1crypto import pem
from textual.app import App
from textual.widgets import Static

from tests.unit.attestation_chains import certs_only_bag, luna_rsa_chain, new_key, request_for
from tui_csr.attestation.check import check_attestation
from tui_csr.attestation.imported import check_for_request
from tui_csr.attestation.reader import AttCert
from tui_csr.attestation.roots import PinnedRoot, spki_hash
from tui_csr.config import Settings
from tui_csr.service import CsrService
from tui_csr.store.repo import Store
from tui_csr.ui.dialogs.actions import attestation_problem
from tui_csr.ui.dialogs.attestation import AttestationFactsDialog
from tui_csr.ui.screens.view_csr import ViewCsrScreen


def _service(tmp_path: Path, with_attestation: bool):
    key = new_key("RSA")
    chain = luna_rsa_chain(key)
    request = request_for(key, label="rsa-web")
    if with_attestation:
        root = AttCert.load(chain[-1])
        pin = PinnedRoot("Test Chrysalis-ITS Root", "Test", "RSA 2048", spki_hash(root.spki_der))
        report, stored = check_for_request(request, pem.armor("PKCS7", certs_only_bag(chain)),
                                           roots=(pin,))
        assert report.ok and check_attestation(certs_only_bag(chain)).format == "pkcs7"
        request = dataclasses.replace(request, attestation=stored)
    store = Store.open(tmp_path / "data")
    store.add_request(request)
    return CsrService(Settings(data_dir=tmp_path / "data"), store), request


async def test_view_csr_offers_the_imported_attestation(tmp_path: Path) -> None:
    service, request = _service(tmp_path, with_attestation=True)
    # attestation = "none", yet the imported file is offered for this request.
    assert await attestation_problem(service, request) is None
    assert await attestation_problem(service) is not None

    app = App()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(ViewCsrScreen(service, request))
        await pilot.pause()
        assert app.screen.check_action("attestation", ()) is True
        await pilot.press("t")
        for _ in range(50):
            await pilot.pause(0.05)
            if isinstance(app.screen, AttestationFactsDialog):
                text = str(app.screen.query_one("#facts", Static).render())
                if "HSM:" in text:
                    break
        assert isinstance(app.screen, AttestationFactsDialog)
        assert "HSM: model Luna K7, serial 521174, firmware 7.8.4" in text
        # The imported file is checked again with the shipped roots only: the test root is
        # unknown there, and the dialog says so rather than hiding it.
        assert "FAIL root: the root is unknown" in text
        assert "ok   key:" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ViewCsrScreen)


async def test_view_csr_hides_the_key_without_an_attestation(tmp_path: Path) -> None:
    service, request = _service(tmp_path, with_attestation=False)
    app = App()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(ViewCsrScreen(service, request))
        await pilot.pause()
        assert app.screen.check_action("attestation", ()) is False
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, ViewCsrScreen)
