"""Snapshots of the Generate CSR wizard, one class per feature, on the session's SoftHSM token.

Deterministic: a fixed date for default labels, fixed inputs, CNs no other test uses (so the
suggested label never needs a '-2'), and never the loading indicator (it exists only while Apply
runs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import RadioButton

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import (
    GROUP,
    WizardHarness,
    next_step,
    settle,
    steady,
    to_review,
    type_into,
)
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.screens.wizard import GenerateWizard

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)
SMALL = (80, 24)
DN = "CN=snap-dn.example.org,O=Example Corp,OU=PKI Team,L=Berlin,ST=Berlin,C=DE"


Drive = Callable[[Pilot], Awaitable[None]]


def shot(snap_compare, service: CsrService, drive: Drive, size: tuple[int, int] = SIZE) -> bool:
    """Run the harness, ``drive`` it, steady the cursors and compare the screenshot."""

    async def run_before(pilot: Pilot) -> None:
        await drive(pilot)
        await steady(pilot)

    return snap_compare(WizardHarness(service), terminal_size=size, run_before=run_before)


async def dn_filled(pilot: Pilot) -> None:
    """The DN step with the DN typed as one string, the cursor back at its start."""
    await settle(pilot)
    await next_step(pilot)
    await pilot.press(*DN)
    await pilot.press("home")
    await settle(pilot)


class TestCryptoTokenStep:
    """Step 1."""

    def test_initial(self, snap_compare, service: CsrService) -> None:
        assert shot(snap_compare, service, settle)

    def test_ecdsa_with_label_error(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("right", "enter")  # ECDSA: padding is not used
            await type_into(pilot, "#label", "  ")
            await type_into(pilot, "#label", "x" * 65)
            await next_step(pilot)

        assert shot(snap_compare, service, run_before)


class TestDistinguishedNameStep:
    """Step 2: the DN string and the six fields."""

    def test_filled(self, snap_compare, service: CsrService) -> None:
        assert shot(snap_compare, service, dn_filled)

    def test_filled_80x24(self, snap_compare, service: CsrService) -> None:
        assert shot(snap_compare, service, dn_filled, SMALL)

    def test_malformed_80x24(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=Example Certificate, O-ABC Corp, C=US")
            await next_step(pilot)

        assert shot(snap_compare, service, run_before, SMALL)

    def test_country_list_80x24(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await type_into(pilot, "#f-cn", "snap-country.example.org")
            await type_into(pilot, "#f-c", "united")
            await pilot.press("down")

        assert shot(snap_compare, service, run_before, SMALL)


class TestSanStep:
    """Step 3."""

    def test_two_entries_one_invalid(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=snap-san.example.org")
            await next_step(pilot)
            await pilot.press(*"pki+admin@example.org", "ctrl+o", *"www..example.org")
            await pilot.press("shift+tab", "enter", "down", "enter")  # type: DNS
            await settle(pilot)

        assert shot(snap_compare, service, run_before)

    def test_not_supported(self, snap_compare, service: CsrService) -> None:
        service.settings.san_supported = False

        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=snap-nosan.example.org")
            await next_step(pilot)

        assert shot(snap_compare, service, run_before)


class TestSignumConfigurationsStep:
    """Step 4: groups and owner."""

    def test_groups(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=snap-groups.example.org")
            await next_step(pilot)
            await next_step(pilot)
            await pilot.press("space", "tab", *"alice")
            await settle(pilot)

        assert shot(snap_compare, service, run_before)

    def test_no_groups_admin(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await service.remove_group(GROUP)  # the step reads the groups when it is entered
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=snap-nogroups.example.org")
            await next_step(pilot)
            await next_step(pilot)
            await next_step(pilot)  # refused: no group
            await type_into(pilot, "#new-group", "Web servers")

        assert shot(snap_compare, service, run_before)


class TestReviewAndApply:
    """The review, and Apply failing."""

    def test_review(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await to_review(pilot, "CN=snap-review.example.org,O=Example Corp,C=DE",
                            sans=("ops@example.org", "pki@example.org"), owner="alice")

        assert shot(snap_compare, service, run_before)

    def test_apply_error(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await to_review(pilot, "CN=snap-apply.example.org,O=Example Corp")
            label = pilot.app.wizard.review_step.value_of("Key label")
            # The label is taken meanwhile, e.g. by a colleague.
            await service.generate(GenerateParams("P-256", dn="CN=colleague.example.org",
                                                  groups=[GROUP], label=label))
            await pilot.press("ctrl+g")
            await settle(pilot)

        assert shot(snap_compare, service, run_before)

    def test_cancel_asks(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await dn_filled(pilot)
            await pilot.press("escape")
            await settle(pilot)

        assert shot(snap_compare, service, run_before, SMALL)


def wizard_of(pilot: Pilot) -> GenerateWizard:
    """The harness's wizard."""
    app = pilot.app
    assert isinstance(app, WizardHarness)
    return app.wizard


class TestIssue15At80x24:
    """Issue 15 at 80x24: other DN attributes, a multi-valued RDN, EdDSA, CA and path length."""

    def test_other_attributes(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*("CN=snap-ev.example.org,O=Example GmbH,serialNumber=HRB 12345,"
                                "jurisdictionC=DE,1.3.6.1.4.1.99999.7=x"))
            await settle(pilot)
            step = wizard_of(pilot).dn_step
            await pilot.press("ctrl+o")  # a new row, its type list focused
            await settle(pilot)
            row = step.rows[-1]
            row.query_one(".attr-value").focus()
            await pilot.press(*"no type")
            await settle(pilot)
            step.scroll_end(animate=False)

        assert shot(snap_compare, service, run_before, SMALL)

    def test_multi_valued_rdn(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await next_step(pilot)
            await pilot.press(*"CN=snap-mv.example.org+UID=jdoe,O=Example")
            await settle(pilot)

        assert shot(snap_compare, service, run_before, SMALL)

    def test_eddsa(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("right", "right", "enter")  # EdDSA: Ed25519, no hash, no padding

        assert shot(snap_compare, service, run_before, SMALL)

    def test_review_ca_path_length(self, snap_compare, service: CsrService) -> None:
        async def run_before(pilot: Pilot) -> None:
            await service.groups.add("Issuing CAs", policy="sub-ca")
            await settle(pilot)
            wizard_of(pilot).query_one("#type-ec", RadioButton).value = True
            await settle(pilot)
            await next_step(pilot)
            await type_into(pilot, "#dn", "CN=Snap Issuing CA,O=Example,C=DE")
            await next_step(pilot)
            await next_step(pilot)
            wizard_of(pilot).groups_step.prefill(["Issuing CAs"], None)
            await settle(pilot)
            await next_step(pilot)
            review = wizard_of(pilot).review_step
            await type_into(pilot, "#path_len", "3")
            review.query_one("#ca").focus()
            await pilot.press("space")
            await settle(pilot)
            review.scroll_end(animate=False)

        assert shot(snap_compare, service, run_before, SMALL)
