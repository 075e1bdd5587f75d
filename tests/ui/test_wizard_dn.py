"""Issue 15, the full DN in the wizard, on the session's real SoftHSM token: every attribute type
the DN string accepts can be entered in the fields view ("Other attributes" rows), both views
round-trip each other (values escaped per RFC 4514), a CSR made through the fields view carries
each attribute with its OID and ASN.1 string type, a multi-valued RDN stays in the string view,
and a bad value is one sentence under its row."""

from __future__ import annotations

import subprocess

import pytest
from asn1crypto import core
from asn1crypto import csr as acsr
from cryptography.x509.oid import NameOID
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Select

from tests.ui import wizard_harness as harness
from tests.ui.wizard_harness import (
    WizardHarness,
    error_under,
    load_csr,
    next_step,
    settle,
    type_into,
    value_of,
)
from tui_csr.core.dn import parse_dn
from tui_csr.core.models import Request
from tui_csr.service import CsrService
from tui_csr.ui.wizard.common import FieldError
from tui_csr.ui.wizard.dn_step import EXTRA_TYPES, MULTI_VALUED_NOTE, OID_CHOICE, AttrRow

service = harness.service
data_dir = harness.data_dir
fixed_today = harness.fixed_today

SIZE = (100, 30)
PRIVATE_OID = "1.3.6.1.4.1.99999.7"

# (type, value as typed in the fields view, the value as RFC 4514 writes it, OID, DER tag):
# OIDs from RFC 5280 / RFC 4519 / PKCS #9 / X.520 and the CA/B Forum EV guidelines; tags
# 0x0C UTF8String, 0x13 PrintableString, 0x16 IA5String. The values carry the characters that
# need escaping (',', '+', ';', '<', '>', a leading '#', '\\', '"') and an '=' (allowed).
ATTRIBUTES: list[tuple[str, str, str, str, int]] = [
    ("SN", "Müller, Jr.", "Müller\\, Jr.", "2.5.4.4", 0x0C),
    ("givenName", "Anna+Lena", "Anna\\+Lena", "2.5.4.42", 0x0C),
    ("pseudonym", "#hashtag", "\\#hashtag", "2.5.4.65", 0x0C),
    ("title", "Head of PKI; Ops", "Head of PKI\\; Ops", "2.5.4.12", 0x0C),
    ("UID", "jdoe=1", "jdoe\\=1", "0.9.2342.19200300.100.1.1", 0x0C),
    ("serialNumber", "HRB 12345 (B)", "HRB 12345 (B)", "2.5.4.5", 0x13),
    ("emailAddress", "pki+ops@example.org", "pki\\+ops@example.org", "1.2.840.113549.1.9.1",
     0x16),
    ("organizationIdentifier", "VATDE-123456789", "VATDE-123456789", "2.5.4.97", 0x0C),
    ("businessCategory", "Private Organization", "Private Organization", "2.5.4.15", 0x0C),
    ("street", "Unter den Linden 1 <Mitte>", "Unter den Linden 1 \\<Mitte\\>", "2.5.4.9", 0x0C),
    ("postalCode", "10117", "10117", "2.5.4.17", 0x0C),
    ("jurisdictionL", 'Berlin "Mitte"', 'Berlin \\"Mitte\\"', "1.3.6.1.4.1.311.60.2.1.1", 0x0C),
    ("jurisdictionST", "Land\\Berlin", "Land\\\\Berlin", "1.3.6.1.4.1.311.60.2.1.2", 0x0C),
    ("jurisdictionC", "DE", "DE", "1.3.6.1.4.1.311.60.2.1.3", 0x13),
    (PRIVATE_OID, "x=y", "x\\=y", PRIVATE_OID, 0x0C),
]


def test_every_extra_type_is_offered() -> None:
    """The rows offer exactly the types beyond the classic fields (guards the table above)."""
    assert sorted(EXTRA_TYPES) == sorted(a for a, *_ in ATTRIBUTES if a != PRIVATE_OID)


async def choose_type(pilot: Pilot, row: AttrRow, attr: str) -> None:
    """Pick ``attr`` (or a dotted OID) in the row's type list by keyboard."""
    select = row.query_one(".attr-type", Select)
    select.focus()
    await pilot.pause()
    choice = attr if attr in EXTRA_TYPES else OID_CHOICE
    options = [*EXTRA_TYPES, OID_CHOICE]
    # The list opens on the current choice (the prompt when none): move from there.
    current = options.index(select.value) + 1 if isinstance(select.value, str) else 0
    steps = options.index(choice) + 1 - current
    await pilot.press("enter", *(["down"] * steps if steps >= 0 else ["up"] * -steps), "enter")
    await pilot.pause()
    assert select.value == choice


async def add_attribute(pilot: Pilot, app: WizardHarness, attr: str, value: str, *,
                        typed: bool = True) -> AttrRow:
    """Fill the last row when it is empty, else add one (ctrl+o): type, OID, value. The type
    is always chosen by keyboard; ``typed=False`` puts the OID and the value into their
    (focused) inputs at once instead of key by key (the same Input.Changed the keys make;
    the long loops use it to stay quick)."""
    step = app.wizard.dn_step
    last = step.rows[-1]
    if not last.blank or last.choice is not None:
        await pilot.press("ctrl+o")
        await settle(pilot)
    row = step.rows[-1]
    await choose_type(pilot, row, attr)
    for text in ([attr] if attr not in EXTRA_TYPES else []) + [value]:
        await pilot.press("tab")
        if typed:
            await pilot.press(*text)
        else:
            focused = app.screen.focused
            assert isinstance(focused, Input), focused
            focused.value = text
            await pilot.pause()
    await settle(pilot)
    return row


async def put_into(pilot: Pilot, selector: str, text: str) -> None:
    """Give the input ``selector`` the text ``text`` at once (as a paste would)."""
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = text
    await pilot.pause()


def shown_rows(app: WizardHarness) -> list[tuple[str, str]]:
    """(type, value) of every non-blank row."""
    return [(r.raw_type, r.value) for r in app.wizard.dn_step.rows if not r.blank]


async def test_each_attribute_round_trips_string_fields_string(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_step(pilot)
        for attr, value, escaped, _oid, _tag in ATTRIBUTES:
            string = f"CN=rt.example,{attr}={escaped}"
            # String -> fields: the row shows the type and the unescaped value.
            await put_into(pilot, "#dn", string)
            await settle(pilot)
            assert error_under(app, "dn") == "", attr
            assert shown_rows(app) == [(attr, value)], attr
            # Fields -> string: from empty fields, the type chosen by keyboard, the same string.
            await put_into(pilot, "#dn", "")
            await settle(pilot)
            assert shown_rows(app) == [] and value_of(app, "#f-cn") == ""
            await put_into(pilot, "#f-cn", "rt.example")
            await add_attribute(pilot, app, attr, value, typed=False)
            assert [r.query_one(FieldError).message for r in app.wizard.dn_step.rows] == [""]
            assert value_of(app, "#dn") == string, attr
            # And the string view reads it back to the same attribute and value.
            assert parse_dn(value_of(app, "#dn")).values(attr) == [value], attr


async def test_order_of_repeats_and_attributes_round_trips(service: CsrService) -> None:
    """OU and DC keep their order; the rows keep the string's order; editing a field changes
    only that attribute in the string."""
    dn = ("CN=ord.example,UID=jdoe,OU=PKI,OU=IT,title=CA Operator,O=Example,"
          "organizationIdentifier=NTRDE-HRB1,DC=example,DC=com")
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_step(pilot)
        await put_into(pilot, "#dn", dn)
        await settle(pilot)
        step = app.wizard.dn_step
        assert shown_rows(app) == [("UID", "jdoe"), ("title", "CA Operator"),
                                   ("organizationIdentifier", "NTRDE-HRB1")]
        assert step.field_values()["OU"] == ["IT", "PKI"]
        assert step.field_values()["DC"] == ["com", "example"]
        row = step.rows[1]
        row.query_one(".attr-value").focus()
        await pilot.press("end", *" (2nd)")
        await settle(pilot)
        assert value_of(app, "#dn") == dn.replace("CA Operator", "CA Operator (2nd)")
        # Deleting the focused row (ctrl+t) takes only that attribute out.
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert value_of(app, "#dn") == dn.replace(",title=CA Operator", "")
        assert shown_rows(app) == [("UID", "jdoe"), ("organizationIdentifier", "NTRDE-HRB1")]


def _subject_atvs(pem: str) -> list[list[tuple[str, int, bytes]]]:
    """The subject's RDNs in DER order: each a list of (OID, string tag, value bytes)."""
    info = acsr.CertificationRequest.load(
        load_csr(pem).public_bytes(_der()))["certification_request_info"]
    out = []
    for rdn in info["subject"].chosen:
        values = [(atv["type"].dotted, core.load(atv["value"].dump())) for atv in rdn]
        out.append([(oid, v.tag, v.contents) for oid, v in values])
    return out


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


async def _apply(pilot: Pilot, app: WizardHarness) -> Request:
    await pilot.press("ctrl+g")
    for _ in range(200):
        await settle(pilot)
        if app.dismissed:
            break
    assert isinstance(app.result, Request), app.wizard.review_step.apply_error
    return app.result


def _openssl_verify(pem: str) -> str:
    run = subprocess.run(["openssl", "req", "-verify", "-noout", "-text"], input=pem, text=True,
                         capture_output=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "verify OK" in (run.stdout + run.stderr)
    return run.stdout


async def test_csr_from_the_fields_view_carries_every_attribute(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.wizard.query_one("#type-ec", RadioButton).value = True  # P-256: quick on SoftHSM
        await settle(pilot)
        await next_step(pilot)
        await type_into(pilot, "#f-cn", "all-attrs.example.org")
        for attr, value, *_ in ATTRIBUTES:
            await add_attribute(pilot, app, attr, value, typed=False)
        assert all(not r.query_one(FieldError).message for r in app.wizard.dn_step.rows)
        await next_step(pilot)
        assert app.wizard.current == 2
        await next_step(pilot)
        await pilot.press("space")  # group "Web"
        await next_step(pilot)
        request = await _apply(pilot, app)
    rdns = _subject_atvs(request.csr_pem)
    assert all(len(rdn) == 1 for rdn in rdns)
    got = {oid: (tag, raw) for ((oid, tag, raw),) in rdns}
    for attr, value, _escaped, oid, tag in ATTRIBUTES:
        assert got.get(oid) == (tag, value.encode()), attr
    assert got["2.5.4.3"] == (0x0C, b"all-attrs.example.org")
    _openssl_verify(request.csr_pem)


async def test_ev_subject_with_jurisdiction_and_organization_identifier(
        service: CsrService) -> None:
    dn = ("CN=www.ev.example.de,O=Example GmbH,businessCategory=Private Organization,"
          "serialNumber=HRB 12345,organizationIdentifier=NTRDE-HRB12345,"
          "jurisdictionL=Berlin,jurisdictionC=DE,L=Berlin,C=DE")
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.wizard.query_one("#type-ec", RadioButton).value = True
        await settle(pilot)
        await next_step(pilot)
        await put_into(pilot, "#dn", dn)
        await settle(pilot)
        # The fields view shows the EV attributes as rows; C and jurisdictionC stay apart.
        assert shown_rows(app) == [("businessCategory", "Private Organization"),
                                   ("serialNumber", "HRB 12345"),
                                   ("organizationIdentifier", "NTRDE-HRB12345"),
                                   ("jurisdictionL", "Berlin"), ("jurisdictionC", "DE")]
        await next_step(pilot)
        await next_step(pilot)  # no SANs
        await pilot.press("space")
        await next_step(pilot)
        assert app.wizard.current == 4
        assert app.wizard.review_step.value_of("Subject DN") == dn
        request = await _apply(pilot, app)
    csr = load_csr(request.csr_pem)
    subject = {a.oid: a.value for a in csr.subject}
    assert subject[NameOID.JURISDICTION_COUNTRY_NAME] == "DE"
    assert subject[NameOID.JURISDICTION_LOCALITY_NAME] == "Berlin"
    assert subject[NameOID.ORGANIZATION_IDENTIFIER] == "NTRDE-HRB12345"
    assert subject[NameOID.BUSINESS_CATEGORY] == "Private Organization"
    assert subject[NameOID.SERIAL_NUMBER] == "HRB 12345"
    assert csr.subject.rfc4514_string() is not None
    text = _openssl_verify(request.csr_pem)
    assert "jurisdictionC = DE" in text and "businessCategory = Private Organization" in text
    assert "organizationIdentifier = NTRDE-HRB12345" in text


async def test_multi_valued_rdn_stays_in_the_string_view(service: CsrService) -> None:
    dn = "CN=mv.example+UID=jdoe,O=Example,C=DE"
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.wizard.query_one("#type-ec", RadioButton).value = True
        await settle(pilot)
        await next_step(pilot)
        step = app.wizard.dn_step
        await type_into(pilot, "#f-o", "Typed first")
        await put_into(pilot, "#dn", dn)
        await settle(pilot)
        note = step.query_one("#dn-note")
        assert note.display and str(note.render()) == MULTI_VALUED_NOTE
        assert MULTI_VALUED_NOTE.count(". ") == 0 and MULTI_VALUED_NOTE.endswith(".")
        # The fields are off and empty; the string keeps the DN as typed.
        assert step.query_one("#dn-fields").disabled
        assert value_of(app, "#f-o") == "" and shown_rows(app) == []
        await pilot.press("ctrl+o")  # no row is added while the fields are off
        await settle(pilot)
        assert len(step.rows) == 1
        assert value_of(app, "#dn") == dn and error_under(app, "dn") == ""
        await next_step(pilot)
        assert app.wizard.current == 2
        await next_step(pilot)
        await pilot.press("space")
        await next_step(pilot)
        assert app.wizard.review_step.value_of("Subject DN") == dn
        request = await _apply(pilot, app)
    rdns = _subject_atvs(request.csr_pem)
    assert sorted(rdns[-1]) == sorted([("2.5.4.3", 0x0C, b"mv.example"),
                                       ("0.9.2342.19200300.100.1.1", 0x0C, b"jdoe")])
    assert len(rdns) == 3


async def test_fields_come_back_when_the_plus_goes(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_step(pilot)
        step = app.wizard.dn_step
        await type_into(pilot, "#dn", "CN=a+UID=b")
        await settle(pilot)
        assert step.query_one("#dn-fields").disabled
        await type_into(pilot, "#dn", "CN=a,UID=b")
        await settle(pilot)
        assert not step.query_one("#dn-fields").disabled
        assert not step.query_one("#dn-note").display
        assert value_of(app, "#f-cn") == "a" and shown_rows(app) == [("UID", "b")]


@pytest.mark.parametrize(("attr", "value", "needle"), [
    ("serialNumber", "HRB-é1", "serialNumber contains 'é', which a PrintableString cannot hold"),
    ("emailAddress", "pki@exämple.org", "emailAddress 'pki@exämple.org' is not ASCII"),
    ("jurisdictionC", "XX", "jurisdictionC 'XX' is not an ISO 3166-1 country code."),
    ("postalCode", "1" * 41, "postalCode is 41 characters; the maximum is 40."),
    ("title", "t" * 65, "title is 65 characters; the maximum is 64."),
    ("1.2.x", "v", "'1.2.x' is not a dotted OID"),
    ("2.5.4.3", "v", "2.5.4.3 is CN; enter it in the Common Name field above."),
])
async def test_bad_value_is_one_sentence_under_its_row(service: CsrService, attr: str,
                                                       value: str, needle: str) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_step(pilot)
        await put_into(pilot, "#dn", "CN=bad.example,O=Example")
        await settle(pilot)
        row = await add_attribute(pilot, app, attr, value, typed=False)
        message = error_under(app, row.error_key)
        assert needle in message
        assert message.endswith(".") and "Traceback" not in message and "\n" not in message
        # The string keeps its last good value (typed key by key: the value up to the key
        # that broke it); Next is refused with the message kept.
        shown = value_of(app, "#dn")
        assert parse_dn(shown).values("O") == ["Example"] and value not in shown
        await next_step(pilot)
        assert app.wizard.current == 1
        assert needle in error_under(app, row.error_key)
        assert error_under(app, "dn") == ""


async def test_the_same_type_twice_and_a_value_without_type(service: CsrService) -> None:
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_step(pilot)
        await type_into(pilot, "#f-cn", "twice.example")
        await add_attribute(pilot, app, "title", "One")
        second = await add_attribute(pilot, app, "title", "Two")
        assert error_under(app, second.error_key) == (
            "title is in another row already; it may appear only once in a DN.")
        assert value_of(app, "#dn") == "CN=twice.example,title=One"
        await pilot.press("ctrl+o")
        await settle(pilot)
        third = app.wizard.dn_step.rows[-1]
        third.query_one(".attr-value").focus()
        await pilot.press(*"orphan")
        await settle(pilot)
        assert error_under(app, third.error_key) == "Choose the attribute type of this value."
        await next_step(pilot)
        assert app.wizard.current == 1
        assert error_under(app, second.error_key) and error_under(app, third.error_key)


async def test_a_groups_profile_fills_the_dn_defaults_the_user_left_out(
        service: CsrService) -> None:
    """A group whose profile has DN defaults: the user types only the CN (the wizard sends the
    subject as one string); Review shows the subject with O and C filled in, and the CSR has
    them, in the canonical order."""
    from tui_csr.core.profiles import Profile

    await service.add_profile(Profile("shop-defaults", dn_defaults=(("O", "Example GmbH"),
                                                                    ("C", "DE"))))
    await service.add_group("Shop", policy="shop-defaults")
    app = WizardHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.wizard.query_one("#type-ec", RadioButton).value = True
        await settle(pilot)
        await next_step(pilot)
        await type_into(pilot, "#f-cn", "shop.example.de")
        await next_step(pilot)
        await next_step(pilot)  # no SANs
        groups = app.wizard.groups_step
        groups.query_one("#groups").focus()
        await settle(pilot)
        names = [g.name for g in await service.list_groups()]
        for _ in range(names.index("Shop")):
            await pilot.press("down")
        await pilot.press("space")
        await settle(pilot)
        assert app.wizard.groups_step.groups == ["Shop"]
        await next_step(pilot)
        for _ in range(20):
            await settle(pilot)
            if "O=" in app.wizard.review_step.value_of("Subject DN"):
                break
        assert app.wizard.review_step.value_of("Subject DN") == (
            "CN=shop.example.de,O=Example GmbH,C=DE")
        request = await _apply(pilot, app)
    csr = load_csr(request.csr_pem)
    assert csr.subject.rfc4514_string() == "CN=shop.example.de,O=Example GmbH,C=DE"
