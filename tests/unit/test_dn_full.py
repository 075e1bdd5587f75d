"""The full DN (issue 15 item 4): the EV/eIDAS and directory attribute types with their OIDs,
string types and bounds, a dotted OID as type, multi-valued RDNs, and '=' inside a value, each
checked on the DER, through the string view, the pairs (fields view, CLI flags) and a CSR."""

from __future__ import annotations

import pytest
from asn1crypto import core
from cryptography import x509 as cx509
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_csr.core.dn import (
    ATTRIBUTE_TYPES,
    MAX_LENGTH,
    DistinguishedName,
    canonical_type,
    name_der,
    parse_dn,
)
from tui_csr.errors import InputError

#: short name -> (OID, DER tag of its string type)
_EXPECTED = {
    "UID": ("0.9.2342.19200300.100.1.1", 0x0C), "serialNumber": ("2.5.4.5", 0x13),
    "emailAddress": ("1.2.840.113549.1.9.1", 0x16), "title": ("2.5.4.12", 0x0C),
    "givenName": ("2.5.4.42", 0x0C), "SN": ("2.5.4.4", 0x0C), "pseudonym": ("2.5.4.65", 0x0C),
    "street": ("2.5.4.9", 0x0C), "postalCode": ("2.5.4.17", 0x0C),
    "organizationIdentifier": ("2.5.4.97", 0x0C), "businessCategory": ("2.5.4.15", 0x0C),
    "jurisdictionC": ("1.3.6.1.4.1.311.60.2.1.3", 0x13),
    "jurisdictionST": ("1.3.6.1.4.1.311.60.2.1.2", 0x0C),
    "jurisdictionL": ("1.3.6.1.4.1.311.60.2.1.1", 0x0C),
    "DC": ("0.9.2342.19200300.100.1.25", 0x16), "C": ("2.5.4.6", 0x13), "CN": ("2.5.4.3", 0x0C),
}
_SAMPLE = {"serialNumber": "HRB 12345", "emailAddress": "pki@example.com",
           "jurisdictionC": "DE", "C": "DE", "DC": "example"}


def encoded(dn: DistinguishedName) -> list[list[tuple[str, int, bytes]]]:
    """(OID, string tag, value bytes) per attribute per RDN, read from the DER itself."""
    out = []
    for rdn in core.SequenceOf.load(name_der(dn)):
        atvs = []
        for atv in core.SetOf.load(rdn.dump()):
            seq = core.Sequence.load(atv.dump())
            oid = core.ObjectIdentifier.load(seq.contents[:seq.contents[1] + 2]).dotted
            value = core.load(seq.contents[seq.contents[1] + 2:])
            atvs.append((oid, value.tag, value.contents))
        out.append(atvs)
    return out


@pytest.mark.parametrize("attr", sorted(_EXPECTED))
def test_each_type_has_its_oid_and_string_type(attr: str) -> None:
    value = _SAMPLE.get(attr, "Some value")
    pairs = [("CN", "x")] if attr == "CN" else [("CN", "x"), (attr, value)]
    dn = DistinguishedName.from_pairs(pairs)
    oid, tag = _EXPECTED[attr]
    got = {o: t for rdn in encoded(dn) for o, t, _v in rdn}
    assert got[oid] == tag
    # Round trips: string view, pairs, and cryptography reads the value under the OID from a
    # CSR built as the service builds it.
    assert parse_dn(dn.to_rfc4514()) == dn
    assert DistinguishedName.from_pairs(pairs) == dn
    subject = signed_csr(dn).subject
    want = "x" if attr == "CN" else value
    assert [a.value for a in subject.get_attributes_for_oid(cx509.ObjectIdentifier(oid))] == [
        want]


def signed_csr(dn: DistinguishedName) -> cx509.CertificateSigningRequest:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tui_csr.core.csr import assemble, build_tbs, signature_algorithm
    from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme

    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs = build_tbs(dn, spki)
    sig = key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    der = assemble(tbs, signature_algorithm(KEY_SPECS["P-256"], HashAlg.SHA256, Scheme.ECDSA),
                   sig)
    req = cx509.load_der_x509_csr(der)
    assert req.is_signature_valid
    return req


def test_every_spelling_names_the_type() -> None:
    assert canonical_type("2.5.4.97") == "organizationIdentifier"
    assert canonical_type("jurisdictionCountryName") == "jurisdictionC"
    assert canonical_type("surname") == "SN" and canonical_type("gn") == "givenName"
    assert canonical_type("1.2.3.4") == "1.2.3.4"
    for spelling in ("E", "email", "1", "3.1", "X Y"):
        with pytest.raises(InputError, match="Unknown attribute type"):
            canonical_type(spelling)


def test_ev_subject_string_round_trips_with_oids() -> None:
    text = ("CN=shop.example,serialNumber=HRB 12345,O=Example GmbH,"
            "organizationIdentifier=VATDE-123456789,businessCategory=Private Organization,"
            "L=Berlin,C=DE,jurisdictionL=Berlin,jurisdictionST=Berlin,jurisdictionC=DE")
    dn = parse_dn(text)
    assert dn.to_rfc4514() == text
    oids = [rdn[0][0] for rdn in encoded(dn)]
    assert oids[:3] == ["1.3.6.1.4.1.311.60.2.1.3", "1.3.6.1.4.1.311.60.2.1.2",
                        "1.3.6.1.4.1.311.60.2.1.1"]
    assert "2.5.4.97" in oids and "2.5.4.15" in oids and "2.5.4.5" in oids
    assert DistinguishedName.from_pairs([(t, v) for t, v in reversed(dn.attrs)]) == dn


def test_multi_valued_rdn_in_the_string_view() -> None:
    dn = parse_dn("CN=a+UID=b,O=Example,C=DE")
    assert dn.rdns == [[("CN", "a"), ("UID", "b")], [("O", "Example")], [("C", "DE")]]
    assert dn.to_rfc4514() == "CN=a+UID=b,O=Example,C=DE"
    assert parse_dn(dn.to_rfc4514()) == dn
    rdns = encoded(dn)
    assert [len(r) for r in rdns] == [1, 1, 2]
    assert {o for o, _t, _v in rdns[-1]} == {"2.5.4.3", "0.9.2342.19200300.100.1.1"}
    assert dn != parse_dn("CN=a,UID=b,O=Example,C=DE")
    with pytest.raises(InputError, match="One RDN has CN twice"):
        parse_dn("CN=a+CN=b")
    with pytest.raises(InputError, match=r"after an unescaped '\+' is not TYPE=value.*\\\+"):
        parse_dn("CN=a+b")
    assert parse_dn(r"CN=a\+b").get("CN") == "a+b"
    # Editing another attribute keeps the multi-valued RDN together.
    assert dn.with_field("O", "Other").to_rfc4514() == "CN=a+UID=b,O=Other,C=DE"
    assert dn.with_field("UID", None).to_rfc4514() == "CN=a,O=Example,C=DE"


def test_equals_inside_a_value_except_the_missing_comma_pattern() -> None:
    assert parse_dn("CN=a=b,O=x=y z").attrs == (("CN", "a=b"), ("O", "x=y z"))
    assert parse_dn("CN=key=value pair").get("CN") == "key=value pair"
    with pytest.raises(InputError, match="before 'C'"):
        parse_dn("CN=Example,L=Independence,ST=Ohio C=US")
    with pytest.raises(InputError, match="before 'serialNumber'"):
        parse_dn("CN=x,O=Acme serialNumber=1")
    with pytest.raises(InputError, match="'O-ABC Corp' is not TYPE=value"):
        parse_dn("CN=Example Certificate, O-ABC Corp,OU-ABC Department,L=Independence,"
                 "ST=Ohio C=US")


@pytest.mark.parametrize(("pairs", "needle"), [
    ([("serialNumber", "a_b")], "PrintableString"),
    ([("serialNumber", "1" * 65)], "the maximum is 64"),
    ([("emailAddress", "jörg@example.com")], "IA5String"),
    ([("jurisdictionC", "XX")], "not an ISO 3166-1 country code"),
    ([("postalCode", "1" * 41)], "the maximum is 40"),
    ([("title", "t" * 65)], "the maximum is 64"),
    ([("1.2.3.4", "v" * 257)], "the maximum is 256"),
    ([("title", "a"), ("title", "b")], "more than once"),
])
def test_bounds_and_string_types_are_enforced(pairs, needle) -> None:
    with pytest.raises(InputError, match=needle):
        DistinguishedName.from_pairs([("CN", "x"), *pairs])


def test_a_dotted_oid_type_is_utf8_under_its_oid() -> None:
    dn = parse_dn("CN=x,1.3.6.1.4.1.99999.7=Müller")
    assert dn.attrs[1] == ("1.3.6.1.4.1.99999.7", "Müller")
    rdn = encoded(dn)[0]
    assert rdn[0][0] == "1.3.6.1.4.1.99999.7" and rdn[0][2] == "Müller".encode()
    assert parse_dn(dn.to_rfc4514()) == dn
    assert parse_dn("CN=x,2.5.4.97=VATDE-1").attrs[1][0] == "organizationIdentifier"


# -- fuzzing the new types as the old ones -------------------------------------------------------

_NEW = [t[0] for t in ATTRIBUTE_TYPES if t[0] not in ("CN", "O", "OU", "L", "ST", "C", "DC")]
_printable = st.text(st.sampled_from(
    "ABCXYZabcxyz0189 '()+,-./:=?"), min_size=1, max_size=70)
_any_text = st.text(st.one_of(st.sampled_from(list(',+"\\<>;=# \xa0éü€東')),
                              st.characters(codec="utf-8")), min_size=0, max_size=80)


@settings(max_examples=300, deadline=None)
@given(attr=st.sampled_from(_NEW), value=st.one_of(_printable, _any_text),
       multi=st.booleans())
def test_new_types_round_trip_or_are_refused(attr: str, value: str, multi: bool) -> None:
    try:
        if multi:
            dn = DistinguishedName((("CN", "x"), (attr, value)), (False, True))
        else:
            dn = DistinguishedName.from_pairs([("CN", "x"), (attr, value)])
    except InputError as exc:
        assert exc.message and exc.field in {"dn", "CN"}
        return
    if not multi and not value.strip():
        assert attr not in dict(dn.attrs)  # a blank field is left out
        return
    stored = dict(dn.attrs)[attr]
    expected = value.strip() if not multi else value
    if attr == "jurisdictionC":  # a country code: kept in upper case, as C is
        expected = expected.upper()
    assert stored == expected
    assert len(stored) <= MAX_LENGTH[attr] or attr == "jurisdictionC"
    assert parse_dn(dn.to_rfc4514()) == dn
    oid, tag = _EXPECTED[attr]
    triples = [t for rdn in encoded(dn) for t in rdn if t[0] == oid]
    assert len(triples) == 1
    assert triples[0][2] == stored.encode("ascii" if tag != 0x0C else "utf-8")


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.tuples(st.sampled_from(["CN", "UID", "serialNumber", "title", "SN",
                                                "jurisdictionC", "emailAddress", "1.2.3.4",
                                                "cn", "X"]),
                               st.sampled_from(["=", "==", " = "]),
                               st.text(st.sampled_from(list("ab =+,\\C1")), max_size=12),
                               st.sampled_from([",", "+", ", "])),
                     min_size=1, max_size=5).map(
    lambda parts: "".join(f"{t}{eq}{v}{sep}" for t, eq, v, sep in parts)[:-1]))
def test_parse_with_plus_and_equals_returns_or_raises_input_error(text: str) -> None:
    try:
        dn = parse_dn(text)
    except InputError as exc:
        assert exc.message and exc.field in {"dn", "CN", "C"}
        return
    assert parse_dn(dn.to_rfc4514()) == dn
    assert signed_csr(dn).subject.rfc4514_string()
