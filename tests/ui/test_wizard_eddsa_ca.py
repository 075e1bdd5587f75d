"""Issue 15 in the wizard, on the session's real SoftHSM token: Ed25519 offered only where the
token's mechanisms allow it (no hash to choose), basicConstraints (CA, path length) within what
the profiles allow, and no message that names a command-line flag."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from pkcs11 import Mechanism
from textual.widgets import RadioButton, RadioSet

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import (
    WizardHarness,
    error_under,
    load_csr,
    next_step,
    settle,
    type_into,
)
from tui_csr.core.models import Request
from tui_csr.hsm.token import Pkcs11Token
from tui_csr.hsm.worker import AsyncToken
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.wizard.common import FieldError

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)
#: A command-line flag such as ``--profile`` or ``--ca`` in a message.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def token_of(service: CsrService) -> AsyncToken:
    """The service's (logged-in) token."""
    assert service.token is not None
    return service.token


async def apply(pilot, app: WizardHarness) -> Request:
    """Apply (ctrl+g) and wait until the wizard leaves with the new request."""
    await pilot.press("ctrl+g")
    for _ in range(200):
        await settle(pilot)
        if app.dismissed:
            break
    assert isinstance(app.result, Request), app.wizard.review_step.apply_error
    return app.result


def shown_messages(app: WizardHarness) -> list[str]:
    """Every error line showing on the wizard, and the status line."""
    out = [e.message for e in app.wizard.query(FieldError) if e.message]
    return out + [str(app.wizard.query_one("#wizard-status").render())]


# -- Ed25519 ---------------------------------------------------------------------------------------

async def test_ed25519_by_keyboard_verifies_with_openssl(service: CsrService) -> None:
    assert (await service.spec_support())["Ed25519"] is None  # SoftHSM 2.6 lists EdDSA
    before = await token_of(service).object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        step = app.wizard.token_step
        assert step.query_one("#type-ed").display and not step.query_one("#type-ed").disabled
        # Focus starts on the key type: RSA -> ECDSA -> EdDSA.
        await pilot.press("right", "right", "enter")
        await settle(pilot)
        assert step.key_type.value == "EdDSA" and step.key_spec == "Ed25519"
        # Ed448 is offered exactly when the token can make it too.
        ed448 = (await service.spec_support())["Ed448"]
        assert step.query_one("#spec-Ed448", RadioButton).disabled == (ed448 is not None)
        # No hash to choose, no padding: both rows say why instead.
        assert not step.query_one("#hash", RadioSet).display
        assert step.query_one("#hash-na").display
        assert not step.query_one("#padding", RadioSet).display
        assert str(step.query_one("#padding-na").render()) == "Not used with EdDSA keys."
        await next_step(pilot)
        await type_into(pilot, "#dn", "CN=ed25519.example.org,O=Example,C=DE")
        await next_step(pilot)
        await next_step(pilot)
        await pilot.press("space")
        await next_step(pilot)
        review = app.wizard.review_step
        assert review.value_of("Key") == "Ed25519"
        assert review.value_of("Hash").startswith("none")
        assert review.value_of("Padding") == "EdDSA (no padding)"
        request = await apply(pilot, app)
    assert await token_of(service).object_count() == before + 2
    csr = load_csr(request.csr_pem)
    assert isinstance(csr.public_key(), ed25519.Ed25519PublicKey)
    assert csr.signature_algorithm_oid.dotted_string == "1.3.101.112"
    openssl_verifies(request.csr_pem)


def openssl_verifies(pem: str) -> None:
    """``openssl req -verify`` accepts the CSR's self-signature."""
    run = subprocess.run(["openssl", "req", "-verify", "-noout"], input=pem, text=True,
                         capture_output=True, check=False)
    assert run.returncode == 0 and "verify OK" in run.stdout + run.stderr, run.stderr


class _Slot:
    """The real slot without CKM_EC_EDWARDS_KEY_PAIR_GEN in its list (as through p11-kit)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_mechanisms(self) -> set[Any]:
        return set(self._real.get_mechanisms()) - {Mechanism.EC_EDWARDS_KEY_PAIR_GEN}


class _Token:
    def __init__(self, real: Any) -> None:
        self._real, self.slot = real, _Slot(real.slot)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def hide_eddsa(service: CsrService) -> None:
    """Make the service's token list no Edwards key generation (the approach of the stand-ins
    in tests/reliability/test_token_faults.py, in process): the real token, its slot's
    mechanism list without the one mechanism."""
    assert service.token is not None
    inner = service.token._token
    token = getattr(inner, "_inner", inner)
    assert isinstance(token, Pkcs11Token)
    token._token = _Token(token._token)
    token._mechanisms = None  # read again, through the stand-in
    token._mechanism_info = {}


async def test_ed25519_not_offered_without_edwards_key_generation(service: CsrService) -> None:
    hide_eddsa(service)
    support = await service.spec_support()
    assert support["Ed25519"] and "EC_EDWARDS_KEY_PAIR_GEN" in support["Ed25519"]
    assert support["P-256"] is None
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        step = app.wizard.token_step
        ed = step.query_one("#type-ed", RadioButton)
        assert not ed.display and ed.disabled
        # By keyboard the key type goes RSA -> ECDSA -> back to RSA: EdDSA is skipped.
        await pilot.press("right", "right", "enter")
        await settle(pilot)
        assert step.key_type.value == "RSA"
        # Nor is it listed as "unavailable": it is simply not offered.
        assert "Ed25519" not in str(step.query_one("#spec-note").render())


# -- basicConstraints ------------------------------------------------------------------------------

async def _to_review(pilot, app: WizardHarness, dn: str, group: str,
                     sans: list[tuple[str, str]] | None = None) -> None:
    await settle(pilot)
    app.wizard.query_one("#type-ec", RadioButton).value = True  # P-256
    await settle(pilot)
    await next_step(pilot)
    await type_into(pilot, "#dn", dn)
    await next_step(pilot)
    if sans:
        await app.wizard.san_step.prefill(sans)
    await next_step(pilot)
    app.wizard.groups_step.prefill([group], None)
    await settle(pilot)
    await next_step(pilot)
    await settle(pilot)
    assert app.wizard.current == 4


async def test_sub_ca_with_path_length_in_basic_constraints(service: CsrService) -> None:
    await service.groups.add("Issuing CAs", policy="sub-ca")
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await _to_review(pilot, app, "CN=Example Issuing CA 1,O=Example,C=DE", "Issuing CAs")
        review = app.wizard.review_step
        assert review.value_of("Basic constr.") == "CA:TRUE, pathlen:0 (critical)"
        await type_into(pilot, "#path_len", "1")
        await settle(pilot)
        assert error_under(app, "path_len") == ""
        assert review.value_of("Basic constr.") == "CA:TRUE, pathlen:1 (critical)"
        review.query_one("#ca").focus()
        await pilot.press("space")  # tick CA (the profile asks for it anyway)
        await settle(pilot)
        assert review.value_of("Basic constr.") == "CA:TRUE, pathlen:1 (critical)"
        request = await apply(pilot, app)
    csr = load_csr(request.csr_pem)
    bc = csr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 1
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign


async def test_ca_without_profile_and_path_length_needs_ca(service: CsrService) -> None:
    """Group "Web" has a policy naming no profile: CA and path length are the user's."""
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await _to_review(pilot, app, "CN=Example Root Operator CA,O=Example", harness.GROUP)
        review = app.wizard.review_step
        assert review.value_of("Basic constr.") == "not requested"
        await type_into(pilot, "#path_len", "2")
        await settle(pilot)
        message = error_under(app, "path_len")
        assert message == "A path length applies to a CA request only (basicConstraints CA:TRUE)."
        await type_into(pilot, "#path_len", "x")
        await settle(pilot)
        assert error_under(app, "path_len") == "The path length 'x' is not a whole number."
        await type_into(pilot, "#path_len", "2")
        review.query_one("#ca").focus()
        await pilot.press("space")
        await settle(pilot)
        assert error_under(app, "path_len") == ""
        assert review.value_of("Basic constr.") == "CA:TRUE, pathlen:2 (critical)"
        assert not any(FLAG.search(m) for m in shown_messages(app))
        request = await apply(pilot, app)
    bc = load_csr(request.csr_pem).extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 2


async def test_profile_forbidding_ca_refuses_it_under_the_field(service: CsrService) -> None:
    await service.groups.add("TLS", policy="tls-server")
    before = await token_of(service).object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await _to_review(pilot, app, "CN=not-a-ca.example.org", "TLS",
                         [("dns", "not-a-ca.example.org")])
        assert app.wizard.review_step.refusal == ""
        review = app.wizard.review_step
        review.query_one("#ca").focus()
        await pilot.press("space")
        await settle(pilot)
        expected = "ca: group 'TLS' (profile tls-server) is for end-entity certificates, not a CA"
        assert error_under(app, "ca") == expected
        await pilot.press("ctrl+g")
        await settle(pilot)
        await settle(pilot)
        assert not app.dismissed
        assert error_under(app, "ca") == expected
        assert review.apply_error.startswith("Apply failed: " + expected)
        assert not any(FLAG.search(m) for m in shown_messages(app))
    assert await token_of(service).object_count() == before
    assert await service.list_requests(None) == []


# -- no command-line flags in what the wizard says -------------------------------------------------

async def test_an_explicit_profile_is_named_without_a_flag(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.wizard.token_step.choose_profile("code-signing")
        await settle(pilot)
        await next_step(pilot)
        await type_into(pilot, "#dn", "CN=signer.example,O=Example,C=DE")
        await next_step(pilot)
        await next_step(pilot)
        await pilot.press("space")
        await next_step(pilot)
        await settle(pilot)
        message = error_under(app, "key_spec")
        assert message.startswith("key_spec: the chosen profile code-signing needs RSA 3072")
        shown = shown_messages(app) + [app.wizard.review_step.apply_error]
        assert message in shown[-1]
        assert not any(FLAG.search(m) for m in shown), shown


async def test_renewing_an_ecdsa_request_as_ed25519(service: CsrService) -> None:
    """The source's hash does not follow a renewal to EdDSA (which has none)."""
    source = await service.generate(GenerateParams(
        key_spec="P-256", hash="SHA384", dn="CN=renew-ed.example.org,O=Example",
        groups=[harness.GROUP], label="renew-ed-source"))
    app = WizardHarness(service, renews=source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        step = app.wizard.token_step
        assert step.key_spec == "P-256"
        step.query_one("#key-type").focus()
        await pilot.press("right", "enter")  # ECDSA -> EdDSA
        await settle(pilot)
        assert step.key_spec == "Ed25519"
        for _ in range(4):
            await next_step(pilot)
        assert app.wizard.current == 4, shown_messages(app)
        request = await apply(pilot, app)
    assert request.key_spec == "Ed25519" and request.renews == source.id
    openssl_verifies(request.csr_pem)
