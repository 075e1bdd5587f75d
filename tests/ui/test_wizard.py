"""The Generate CSR wizard, driven by keyboard on the session's real SoftHSM token."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID
from textual.widgets import TextArea

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import (
    GROUP,
    WizardHarness,
    error_under,
    load_csr,
    next_step,
    open_step,
    settle,
    subject_of,
    to_review,
    type_into,
    value_of,
)
from tui_csr.errors import TokenError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.dialogs.confirm import ConfirmDialog
from tui_csr.ui.wizard import CountryPicker, SanRow, StepState
from tui_csr.ui.wizard.san_step import SAN_UNSUPPORTED

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)


# -- the whole flow ------------------------------------------------------------------------------
async def test_whole_flow_rsa_by_keyboard(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wizard = app.wizard
        # 1. CryptoToken: focus starts on the key type (RSA); RSA 3072, SHA-384, PSS.
        assert app.focused is not None and app.focused.id == "key-type"
        assert wizard.query_one("#token-label").render().plain == service.token.label
        await pilot.press("tab", "right", "enter")  # key spec
        await pilot.press("tab", "right", "enter")  # hash
        await pilot.press("tab", "right", "enter")  # padding
        assert (wizard.token_step.key_spec, wizard.token_step.hash_name) == ("RSA3072", "SHA384")
        assert wizard.token_step.pss
        await next_step(pilot)
        assert wizard.current == 1 and wizard.states[0] is StepState.DONE

        # 2. DN typed as one string fills the fields; the country is picked by part of its name.
        assert app.focused is not None and app.focused.id == "dn"
        await pilot.press(*"CN=flow-rsa.example.com, O=Example Corp, OU=PKI, L=Berlin, ST=Berlin")
        assert value_of(app, "#f-cn") == "flow-rsa.example.com"
        assert value_of(app, "#f-o") == "Example Corp"
        assert app.wizard.query_one("#f-ou", TextArea).text == "PKI"
        assert value_of(app, "#f-l") == "Berlin"
        assert value_of(app, "#f-st") == "Berlin"
        assert wizard.query_one(CountryPicker).code is None
        await pilot.press(*["tab"] * 6)
        assert app.focused is not None and app.focused.id == "f-c"
        await pilot.press(*"germ")
        picker = wizard.query_one(CountryPicker)
        assert picker.is_open
        await pilot.press("enter")
        assert picker.code == "DE" and not picker.is_open
        assert value_of(app, "#f-c") == "Germany (DE)"
        assert value_of(app, "#dn") == ("CN=flow-rsa.example.com,O=Example Corp,OU=PKI,L=Berlin,"
                                        "ST=Berlin,C=DE")
        await next_step(pilot)
        assert wizard.current == 2

        # 3. SANs: '+' and '-' typed into a value stay in the value; ctrl+o adds, ctrl+t deletes.
        await pilot.press(*"pki+admin-x@example.com")
        await pilot.press("ctrl+o")
        await pilot.press("shift+tab", "enter", "down", "enter", "tab")  # type: DNS
        await pilot.press(*"www.flow-rsa.example.com")
        await pilot.press("ctrl+o")
        await pilot.press(*"to-be-deleted@example.com")
        rows = wizard.san_step.rows
        assert len(rows) == 3 and rows[1].kind == "dns"
        assert rows[0].value == "pki+admin-x@example.com"
        await pilot.press("ctrl+t")  # deletes the focused (third) entry
        await settle(pilot)
        assert [(r.kind, r.value) for r in wizard.san_step.rows] == [
            ("email", "pki+admin-x@example.com"), ("dns", "www.flow-rsa.example.com")]
        await next_step(pilot)
        assert wizard.current == 3

        # 4. Signum Configurations: choose the group, type an owner.
        await pilot.press("space")
        await pilot.press("tab")
        await pilot.press(*"alice")
        await next_step(pilot)
        assert wizard.current == 4
        review = wizard.review_step
        assert review.value_of("Key") == "RSA 3072"
        assert review.value_of("Padding") == "PSS"
        assert review.value_of("Key label") == "flow-rsa.example.com-2026-01-02"
        assert review.value_of("Groups") == GROUP
        assert review.value_of("Country") == "Germany (DE)"

        # Apply.
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert app.dismissed

    request = app.result
    assert request is not None
    stored = service.store.list_requests()
    assert [r.id for r in stored] == [request.id]
    assert stored[0].groups == [GROUP] and stored[0].owner == "alice"
    assert stored[0].label == "flow-rsa.example.com-2026-01-02"
    csr = load_csr(stored[0].csr_pem)
    assert subject_of(csr) == {"CN": "flow-rsa.example.com", "O": "Example Corp", "OU": "PKI",
                               "L": "Berlin", "ST": "Berlin", "C": "DE"}
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["pki+admin-x@example.com"]
    assert san.get_values_for_type(x509.DNSName) == ["www.flow-rsa.example.com"]
    key = csr.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
    assert csr.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    assert await service.token.key_exists(bytes.fromhex(request.key_id))


async def test_whole_flow_ecdsa(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wizard = app.wizard
        await pilot.press("right", "enter")  # ECDSA
        assert wizard.has_class("-review") is False
        assert wizard.token_step.has_class("-ec")
        await pilot.press("tab", "right", "enter")  # P-384
        await pilot.press("tab", "right", "right", "enter")  # SHA-512
        assert (wizard.token_step.key_spec, wizard.token_step.hash_name) == ("P-384", "SHA512")
        await pilot.press("tab")  # the padding is hidden for EC: next stop is the label
        assert app.focused is not None and app.focused.id == "label"
        await pilot.press(*"ec-flow-key")
        await next_step(pilot)
        await pilot.press(*"CN=ec-flow.example.com,C=US")
        await next_step(pilot)
        await pilot.press(*"192.0.2.7")
        await pilot.press("shift+tab", "enter", "down", "down", "enter")  # type: IP
        await next_step(pilot)
        await pilot.press("space")
        await next_step(pilot)
        assert wizard.review_step.value_of("Padding") == "ECDSA (no padding)"
        await pilot.press("ctrl+g")
        await settle(pilot)
    request = app.result
    assert request is not None and request.label == "ec-flow-key"
    csr = load_csr(request.csr_pem)
    key = csr.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    assert csr.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA512
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert [r.id for r in service.store.list_requests()] == [request.id]


# -- validation errors: under the field, Next refuses, no key is made ------------------------------
async def test_malformed_dn_string(service: CsrService) -> None:
    before = await service.token.object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 1, "")
        await pilot.press(*"CN=Example Certificate, O-ABC Corp, C=US")
        assert "'O-ABC Corp' is not TYPE=value" in error_under(app, "dn")
        # The fields keep what the string last parsed to.
        assert value_of(app, "#f-cn") == "Example Certificate"
        assert value_of(app, "#f-o") == ""
        await next_step(pilot)
        wizard = app.wizard
        assert wizard.current == 1 and wizard.states[1] is StepState.ERROR
        assert "'O-ABC Corp' is not TYPE=value" in error_under(app, "dn")
        # Fixing the string clears the error and Next goes on.
        await type_into(pilot, "#dn", "CN=Example Certificate, O=ABC Corp, C=US")
        assert error_under(app, "dn") == "" and value_of(app, "#f-o") == "ABC Corp"
        await next_step(pilot)
        assert wizard.current == 2
    assert await service.token.object_count() == before


async def test_common_name_too_long(service: CsrService) -> None:
    before = await service.token.object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 1, "")
        await type_into(pilot, "#f-cn", "a" * 65)
        assert error_under(app, "cn") == "CN is 65 characters; the maximum is 64."
        await next_step(pilot)
        wizard = app.wizard
        assert wizard.current == 1 and wizard.states[1] is StepState.ERROR
        assert error_under(app, "cn") == "CN is 65 characters; the maximum is 64."
        assert app.focused is not None and app.focused.id == "f-cn"
        await pilot.press("backspace")
        assert error_under(app, "cn") == ""
        assert value_of(app, "#dn") == "CN=" + "a" * 64
        # And a CN is required at all.
        await type_into(pilot, "#f-cn", "")
        await next_step(pilot)
        assert wizard.current == 1 and error_under(app, "cn") == "CN is required."
    assert await service.token.object_count() == before


async def test_bad_email(service: CsrService) -> None:
    before = await service.token.object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 2, "CN=bad-email.example.com")
        await pilot.press(*"bad@@example.com")
        row = app.wizard.san_step.rows[0]
        assert row.error.message.startswith("Email 'bad@@example.com' is not a valid address")
        await next_step(pilot)
        wizard = app.wizard
        assert wizard.current == 2 and wizard.states[2] is StepState.ERROR
        assert row.error.message.startswith("Email 'bad@@example.com' is not a valid address")
        # ctrl+r empties the first entry: the way out; empty entries are ignored.
        await pilot.press("ctrl+r")
        assert row.value == "" and row.error.message == ""
        await next_step(pilot)
        assert wizard.current == 3
    assert await service.token.object_count() == before


async def test_duplicate_san_is_flagged(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 2, "CN=dup.example.com")
        await pilot.press(*"a@example.com", "ctrl+o", *"a@EXAMPLE.com")
        first, second = app.wizard.san_step.rows
        assert first.error.message == ""
        assert second.error.message == "Email 'a@example.com' is listed twice."


async def test_no_group_chosen(service: CsrService) -> None:
    before = await service.token.object_count()
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 3, "CN=no-group.example.com")
        wizard = app.wizard
        assert wizard.current == 3
        await next_step(pilot)
        assert wizard.current == 3 and wizard.states[3] is StepState.ERROR
        assert error_under(app, "group") == "Choose at least one certificate group."
        await pilot.press("space")
        assert error_under(app, "group") == ""
    assert await service.token.object_count() == before


async def test_label_in_use_is_refused_on_the_first_step(service: CsrService) -> None:
    await service.generate(GenerateParams("P-256", dn="CN=taken.example.com", groups=[GROUP],
                                          label="taken-label"))
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "#label", "taken-label")
        await next_step(pilot)
        assert app.wizard.current == 0
        assert error_under(app, "label") == "A request labelled 'taken-label' already exists."


# -- the key label -------------------------------------------------------------------------------
async def test_default_label_filled_from_the_common_name(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert value_of(app, "#label") == ""  # no CN yet: nothing to suggest
        await next_step(pilot)
        await pilot.press(*"CN=label.example.com")
        await pilot.press("ctrl+b")
        await settle(pilot)
        assert app.wizard.current == 0
        assert value_of(app, "#label") == "label.example.com-2026-01-02"
        # Still the suggestion: a new CN gives a new one.
        await next_step(pilot)
        await type_into(pilot, "#f-cn", "other.example.com")
        await pilot.press("ctrl+b")
        await settle(pilot)
        assert value_of(app, "#label") == "other.example.com-2026-01-02"


async def test_unsupported_spec_is_disabled_with_its_reason(service: CsrService,
                                                            monkeypatch) -> None:
    real = service.spec_support

    async def fake_support() -> dict[str, str | None]:
        support = await real()
        support["RSA2048"] = "The token cannot make RSA-2048 keys (CKM_RSA_PKCS_KEY_PAIR_GEN)."
        return support

    monkeypatch.setattr(service, "spec_support", fake_support)
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wizard = app.wizard
        from textual.widgets import RadioButton, Static

        assert wizard.query_one("#spec-RSA2048", RadioButton).disabled
        assert wizard.token_step.key_spec == "RSA3072"  # the first spec the token can make
        assert "RSA2048: The token cannot make RSA-2048 keys" in str(
            wizard.query_one("#spec-note", Static).render())


# -- cancel --------------------------------------------------------------------------------------
async def test_cancel_without_data_just_leaves(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.dismissed and app.result is None


async def test_cancel_with_data_asks_first(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 1, "")
        await pilot.press(*"CN=typed.example.com")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")  # keep editing
        await settle(pilot)
        assert app.screen is app.wizard and not app.dismissed
        assert value_of(app, "#dn") == "CN=typed.example.com"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.dismissed and app.result is None


# -- apply ---------------------------------------------------------------------------------------
async def test_apply_failure_keeps_values_and_retry_works(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await to_review(pilot, "CN=collide.example.com,O=Example", sans=("ops@example.com",))
        wizard = app.wizard
        assert wizard.current == 4
        label = wizard.review_step.value_of("Key label")
        assert label == "collide.example.com-2026-01-02"
        # Someone else takes the label meanwhile.
        await service.generate(GenerateParams("P-256", dn="CN=other.example.com",
                                              groups=[GROUP], label=label))
        count = await service.token.object_count()
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert not app.dismissed
        message = f"A request labelled '{label}' already exists."
        assert wizard.review_step.apply_error.startswith(f"Apply failed: {message}")
        assert "step 1 (CryptoToken)" in wizard.review_step.apply_error
        assert wizard.states[0] is StepState.ERROR
        assert error_under(app, "label") == message
        assert await service.token.object_count() == count
        # Every value is kept; the buttons work again.
        assert wizard.review_step.value_of("Subject DN") == "CN=collide.example.com,O=Example"
        assert not wizard.query_one("#apply").disabled
        # Fix the label on step 1 and apply again.
        await pilot.press("ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b")
        await settle(pilot)
        assert wizard.current == 0
        await type_into(pilot, "#label", "collide-fixed")
        for _ in range(4):
            await next_step(pilot)
        assert wizard.current == 4 and wizard.review_step.value_of("Key label") == "collide-fixed"
        assert wizard.states[0] is StepState.DONE
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert app.dismissed
    request = app.result
    assert request is not None and request.label == "collide-fixed"
    assert request.sans == [("email", "ops@example.com")]
    assert {r.label for r in service.store.list_requests()} == {label, "collide-fixed"}


async def test_token_failure_shows_message_and_code(service: CsrService, monkeypatch) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise TokenError("The token has no room for another key.", field="token",
                         code="CKR_DEVICE_MEMORY")

    monkeypatch.setattr(service.token, "generate_keypair", broken)
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await to_review(pilot, "CN=full.example.com")
        await pilot.press("ctrl+g")
        await settle(pilot)
        wizard = app.wizard
        assert not app.dismissed and wizard.current == 4
        assert wizard.review_step.apply_error == (
            "Apply failed: The token has no room for another key. (CKR_DEVICE_MEMORY)")
    assert service.store.list_requests() == []


async def test_rsa_4096_apply_reports_progress_with_the_buttons_disabled(
        service: CsrService) -> None:
    """RSA-4096 through the wizard: progress is reported while every button is disabled, and
    Apply ends with the request. (How long the event loop may stall is measured by the one
    timing test, tests/integration/test_event_loop.py; issue 11 removed the retried 50 ms
    assertion that lived here.)"""
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("tab", "right", "right", "enter")  # RSA 4096
        assert app.wizard.token_step.key_spec == "RSA4096"
        await open_step(pilot, 4, "CN=responsive.example.com")
        wizard = app.wizard
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert app.dismissed and app.result is not None and not wizard.busy
    assert app.disabled_during_progress and all(app.disabled_during_progress)
    assert any(text.startswith("Generating RSA 4096 key") for _, text in app.progress)


async def test_progress_is_shown_while_applying(service: CsrService) -> None:
    app = WizardHarness(service)
    seen: list[tuple[str, bool, bool]] = []
    async with app.run_test(size=SIZE) as pilot:
        await to_review(pilot, "CN=progress.example.com")
        wizard = app.wizard
        from textual.widgets import LoadingIndicator, Static

        progress = wizard.query_one("#apply-progress", Static)
        spinner = wizard.query_one(LoadingIndicator)
        assert not spinner.display or not wizard.review_step.busy
        original = progress.update

        def spy(content="") -> None:
            # What it says, whether the spinner shows, whether Apply is disabled meanwhile.
            seen.append((str(content), wizard.review_step.busy,
                         wizard.query_one("#apply").disabled))
            original(content)

        progress.update = spy  # type: ignore[method-assign]
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert app.dismissed and not wizard.busy
    label = service.token.label
    texts = [text for text, _, _ in seen]
    assert f"Generating RSA 2048 key on token {label}…" in texts
    assert f"Signing the CSR on token {label}…" in texts
    assert all(spinner and disabled for _, spinner, disabled in seen)


# -- SANs off, groups missing --------------------------------------------------------------------
async def test_san_step_disabled_when_backend_has_no_sans(service: CsrService) -> None:
    service.settings.san_supported = False
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 2, "CN=nosan.example.com")
        wizard = app.wizard
        from textual.widgets import Static

        assert str(wizard.query_one("#san-disabled", Static).render()) == SAN_UNSUPPORTED
        assert wizard.query_one("#san-list").disabled
        await pilot.press("plus")
        assert len(wizard.san_step.rows) == 1
        await next_step(pilot)
        assert wizard.current == 3


async def test_plus_and_minus_on_the_buttons(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 2, "CN=keys.example.com")
        wizard = app.wizard
        for _ in range(2):
            wizard.query_one("#san-add").focus()
            await pilot.press("plus")  # a new entry takes the focus: its value gets typing
            await settle(pilot)
        assert len(wizard.san_step.rows) == 3
        await pilot.press("minus")
        assert wizard.san_step.rows[-1].value == "-"
        await pilot.press("backspace")
        wizard.query_one("#san-delete").focus()
        await pilot.press("minus")
        await settle(pilot)
        assert len(wizard.san_step.rows) == 2
        assert app.focused is wizard.query_one("#san-delete")  # so '-' can go on deleting
        await pilot.press("minus", "minus")
        await settle(pilot)
        assert len(wizard.san_step.rows) == 1  # the only entry stays
        assert isinstance(wizard.san_step.rows[0], SanRow)


async def test_no_groups_admin_creates_one(service: CsrService) -> None:
    await service.remove_group(GROUP)
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 3, "CN=groups.example.com")
        wizard = app.wizard
        assert wizard.groups_step.has_class("-empty")
        await next_step(pilot)
        assert wizard.current == 3
        assert error_under(app, "group") == "There is no group to choose: create one below."
        await type_into(pilot, "#new-group", "Servers")
        await pilot.press("tab", *"srv-policy", "enter")
        await settle(pilot)
        assert not wizard.groups_step.has_class("-empty")
        assert wizard.groups_step.groups == ["Servers"]  # the new group, chosen
        await next_step(pilot)
        assert wizard.current == 4
    assert [(g.name, g.policy) for g in service.store.list_groups()] == [("Servers", "srv-policy")]


async def test_no_groups_non_admin_is_told_to_ask(service: CsrService) -> None:
    await service.remove_group(GROUP)
    service.settings.admins = ["somebody-else"]
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(pilot, 4, "CN=groups.example.com")  # Next refused on step 4
        assert app.wizard.current == 3 and not app.wizard.query("#create-group")
        assert error_under(app, "group") == ("There is no group to choose: ask an administrator "
                                             "to create one.")
