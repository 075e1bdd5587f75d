"""Issue 15 in the TUI, on the session's real SoftHSM token: the CryptoToken step offers the
profile, the Review step shows the extensions the profiles resolve and lets the user change
keyUsage/EKU within what they allow, and a broken profile rule is the service's own sentence
under the field, with no key made. View CSR lists the requested extensions and the profiles."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from textual.widgets import Select

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import (
    WizardHarness,
    error_under,
    load_csr,
    next_step,
    settle,
    steady,
    type_into,
)
from tui_csr.core.models import Request
from tui_csr.errors import InputError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.screens.view_csr import fact_values
from tui_csr.ui.wizard.token_step import FROM_GROUPS

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)


async def _to_review(pilot, app: WizardHarness, *, dn: str, group: str, ec: bool = False,
                     sans: list[tuple[str, str]] | None = None) -> None:
    """Defaults on the CryptoToken step (P-256 when ``ec``), ``dn`` typed, ``sans`` entered,
    ``group`` ticked, then Next to the review."""
    wizard = app.wizard
    await settle(pilot)
    if ec:
        wizard.query_one("#type-ec").value = True
        await settle(pilot)
    await next_step(pilot)
    await type_into(pilot, "#dn", dn)
    await next_step(pilot)
    if sans:
        await wizard.san_step.prefill(sans)
    await next_step(pilot)
    wizard.groups_step.prefill([group], None)
    await settle(pilot)
    await next_step(pilot)
    await settle(pilot)


def _service_refusal(service: CsrService, params: GenerateParams) -> str:
    try:
        service.validate(params)
    except InputError as exc:
        return exc.message
    raise AssertionError("the service accepted the request")


async def test_code_signing_group_refuses_rsa2048_under_the_key_spec(service: CsrService
                                                                      ) -> None:
    await service.groups.add("Code signing", policy="code-signing")
    before = await service.token.object_count()
    expected = _service_refusal(service, GenerateParams(
        key_spec="RSA2048", dn="CN=signer,O=Example,C=DE", groups=["Code signing"]))
    assert expected == ("key_spec: group 'Code signing' (profile code-signing) needs RSA 3072 "
                        "or larger, or P-256/P-384")
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await _to_review(pilot, app, dn="CN=signer,O=Example,C=DE", group="Code signing")
        wizard = app.wizard
        assert wizard.token_step.key_spec == "RSA2048"
        assert wizard.current == 4
        # Refused as soon as the review resolves the profiles: under the field, step marked.
        assert error_under(app, "key_spec") == expected
        assert expected in wizard.review_step.apply_error
        assert wizard.review_step.value_of("EKU") == "-"
        # Apply says the same and makes nothing.
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert not app.dismissed
        assert error_under(app, "key_spec") == expected
        assert wizard.review_step.apply_error.startswith("Apply failed: " + expected)
    assert await service.token.object_count() == before
    assert await service.list_requests(None) == []


async def test_explicit_profile_from_the_select_applies(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wizard = app.wizard
        select = wizard.query_one("#profile", Select)
        assert select.value == FROM_GROUPS
        assert wizard.token_step.profile is None
        wizard.token_step.choose_profile("code-signing")
        await settle(pilot)
        assert wizard.token_step.profile == "code-signing"
        await settle(pilot)
        await next_step(pilot)
        await type_into(pilot, "#dn", "CN=signer,O=Example,C=DE")
        await next_step(pilot)
        await next_step(pilot)
        await pilot.press("space")  # group "Web" (a label without constraints)
        await next_step(pilot)
        await settle(pilot)
        assert error_under(app, "key_spec") == (
            "key_spec: the chosen profile code-signing needs RSA 3072 or larger, or "
            "P-256/P-384")


async def test_tls_server_review_shows_server_auth_and_the_csr_carries_it(
        service: CsrService) -> None:
    await service.groups.add("TLS", policy="tls-server")
    before = await service.token.object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await _to_review(pilot, app, dn="CN=www.example.com", group="TLS", ec=True,
                         sans=[("dns", "www.example.com")])
        wizard = app.wizard
        review = wizard.review_step
        assert wizard.current == 4
        assert review.refusal == ""
        assert review.value_of("Profiles") == "tls-server v1 (group 'TLS')"
        assert review.value_of("EKU") == "serverAuth"
        assert review.value_of("Key usage") == "digitalSignature (critical)"
        assert review.value_of("Basic constr.") == "CA:FALSE (critical)"
        # Outside what the profile allows: the service's sentence under the field.
        await type_into(pilot, "#eku", "codeSigning")
        await settle(pilot)
        assert error_under(app, "eku") == "eku: group 'TLS' (profile tls-server) requires serverAuth"
        await type_into(pilot, "#eku", "serverAuth,codeSigning")
        await settle(pilot)
        assert error_under(app, "eku") == ("eku: group 'TLS' (profile tls-server) does not "
                                           "allow codeSigning (allowed: serverAuth, clientAuth)")
        # Within it: the review follows.
        await type_into(pilot, "#eku", "serverAuth,clientAuth")
        await settle(pilot)
        assert error_under(app, "eku") == ""
        assert review.value_of("EKU") == "serverAuth, clientAuth"
        await pilot.press("ctrl+g")
        for _ in range(100):
            await settle(pilot)
            if app.dismissed:
                break
        assert isinstance(app.result, Request)
        request = app.result
    assert await service.token.object_count() == before + 2
    csr = load_csr(request.csr_pem)
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_agreement
    bc = csr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    # View CSR lists them, and the profile used.
    stored = await service.get_request(request.id)
    facts = fact_values(stored, None)
    assert facts["extensions"].splitlines() == [
        "keyUsage (critical): digitalSignature", "extendedKeyUsage: serverAuth, clientAuth",
        "basicConstraints (critical): CA:FALSE"]
    assert facts["profiles"] == "tls-server v1 (group 'TLS')"


# -- snapshots at 80x24 ----------------------------------------------------------------------------

SMALL = (80, 24)


def test_snapshot_crypto_token_step_profile_select(snap_compare, service: CsrService) -> None:
    """The CryptoToken step with the profile select open (built-in profiles, described)."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        select = pilot.app.wizard.query_one("#profile", Select)
        select.focus()
        await pilot.pause()
        await pilot.press("enter")
        await steady(pilot)

    assert snap_compare(WizardHarness(service), terminal_size=SMALL, run_before=run_before)


def test_snapshot_review_with_extensions(snap_compare, service: CsrService) -> None:
    """Review of a tls-server group's request: the extensions as the profile resolves them."""

    async def run_before(pilot) -> None:
        await service.groups.add("TLS", policy="tls-server")
        app = pilot.app
        await _to_review(pilot, app, dn="CN=snap-tls.example.org", group="TLS", ec=True,
                         sans=[("dns", "snap-tls.example.org")])
        app.wizard.review_step.scroll_end(animate=False)
        await steady(pilot)

    assert snap_compare(WizardHarness(service), terminal_size=SMALL, run_before=run_before)
