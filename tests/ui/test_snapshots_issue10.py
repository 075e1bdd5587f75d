"""80x24 snapshots of issue 10's screens (the CryptoToken step with "Always authenticate" ticked,
the PIN dialog at signing, the login dialog with a PIN format hint and on a PIN pad, the token
picker, View CSR with the key's flags) and issue 16's (the wizard renewing a request, the
Certificates tab's expiry marks, the Requests tab's count).

Deterministic: fixed records, a fake token for the login dialogs, fixed token descriptions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui import wizard_harness as harness
from tests.ui.conftest import FakeToken, add_requests, fake_service, make_request, settle
from tests.ui.lifecycle_harness import LifecycleHarness
from tests.ui.wizard_harness import WizardHarness, steady
from tui_csr.hsm.describe import TokenDescription
from tui_csr.service import CsrService
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.context_pin import ContextPinDialog
from tui_csr.ui.dialogs.token_picker import TokenPickerDialog
from tui_csr.ui.screens.view_csr import ViewCsrScreen
from tui_csr.ui.widgets.toggles import StateCheckbox

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SMALL = (80, 24)
YUBI_HINT = ("YubiHSM 2: the PIN is the authentication key's id as 4 hex digits followed by "
             "its password, e.g. 0001password.")


async def _steady(pilot: Pilot) -> None:
    await settle(pilot)
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause()


def _token(label: str, serial: str, **kw) -> TokenDescription:
    values = dict(slot_id=0, slot_description="slot", label=label, serial=serial,
                  manufacturer="SoftHSM project", model="SoftHSM v2", login_required=True,
                  protected_auth_path=False, pin_count_low=False, pin_final_try=False,
                  pin_locked=False, write_protected=False, profile="softhsm",
                  profile_reason="library", pin_hint=None)
    values.update(kw)
    return TokenDescription(**values)


def test_crypto_token_step_always_authenticate(snap_compare, service: CsrService) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        box = pilot.app.screen.query_one("#always-auth", StateCheckbox)
        box.focus()
        await pilot.press("space")
        await steady(pilot)

    assert snap_compare(WizardHarness(service), terminal_size=SMALL, run_before=run_before)


@pytest.mark.usefixtures("utc")
class TestIssue10Dialogs:
    def test_context_pin_dialog(self, snap_compare, tmp_path: Path) -> None:
        svc = fake_service(tmp_path / "fake")
        app = LifecycleHarness(svc, push=lambda: ContextPinDialog("demo", lambda pin: None))
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)

    def test_login_with_pin_hint(self, snap_compare, tmp_path: Path) -> None:
        svc = fake_service(tmp_path / "fake", token=FakeToken(pin_hint=YUBI_HINT))
        assert snap_compare(TuiCsrApp(svc), terminal_size=SMALL, run_before=_steady)

    def test_login_on_pin_pad_failed(self, snap_compare, tmp_path: Path) -> None:
        fake = FakeToken(protected_auth_path=True)
        fake.pad_accepts = False
        svc = fake_service(tmp_path / "fake", token=fake)
        assert snap_compare(TuiCsrApp(svc), terminal_size=SMALL, run_before=_steady)

    def test_token_picker(self, snap_compare, tmp_path: Path) -> None:
        svc = fake_service(tmp_path / "fake")
        tokens = [_token("test", "3f1a0c2b9d8e7f60"),
                  _token("other", "5b2c1d0e9f8a7b61", pin_final_try=True),
                  _token("pinpad", "0000000000000001", protected_auth_path=True,
                         manufacturer="Example", model="Reader")]
        app = LifecycleHarness(svc, push=lambda: TokenPickerDialog(
            "/usr/lib/softhsm/libsofthsm2.so", tokens))
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)

    def test_view_csr_key_flags(self, snap_compare, tmp_path: Path) -> None:
        svc = fake_service(tmp_path / "fake")
        request = replace(make_request(5, "codesign", "codesign.example.com"),
                          key_attributes={"ALWAYS_AUTHENTICATE": True, "DECRYPT": True},
                          key_forced={"DECRYPT": True})
        add_requests(svc, (request,))
        app = LifecycleHarness(svc, push=lambda: ViewCsrScreen(svc, request))
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)


# -- issue 16 ---------------------------------------------------------------------------------------
def test_renew_wizard_prefilled(snap_compare, service: CsrService) -> None:
    # The wizard only reads the source to fill its steps: a fixed record is enough here.
    source = replace(make_request(31, "snap-renew-source", "snap-renew.example.org",
                                  key_spec="P-384", hash_="SHA384", owner="bob",
                                  groups=(harness.GROUP,)),
                     subject="CN=snap-renew.example.org,O=Example Corp",
                     sans=[("dns", "snap-renew.example.org")])

    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)

    assert snap_compare(WizardHarness(service, renews=source), terminal_size=SMALL,
                        run_before=run_before)


@pytest.mark.usefixtures("utc")
class TestExpiry:
    def test_certificates_marks_80x24(self, snap_compare, tmp_path: Path) -> None:
        from tests.ui.test_expiry_ui import NOW, RECORDS

        svc = fake_service(tmp_path / "fake")
        add_requests(svc, RECORDS)
        app = LifecycleHarness(svc, clock=lambda: NOW)
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)

    def test_requests_tab_count_80x24(self, snap_compare, tmp_path: Path) -> None:
        from tests.ui.test_expiry_ui import NOW, RECORDS

        svc = fake_service(tmp_path / "fake")
        add_requests(svc, RECORDS)
        app = TuiCsrApp(svc, pin="1234", clock=lambda: NOW)
        assert snap_compare(app, terminal_size=SMALL, run_before=_steady)
