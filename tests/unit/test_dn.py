"""Distinguished Name parsing, validation, editing and ASN.1 encoding."""

from __future__ import annotations

import pytest
from asn1crypto import csr, keys
from asn1crypto import x509 as ax509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tui_csr.core.dn import (
    DistinguishedName,
    countries,
    country_name,
    parse_dn,
    to_asn1_name,
)
from tui_csr.errors import InputError

PRODUCT_DOC_EXAMPLE = (
    "CN=Example Certificate, O-ABC Corp,OU-ABC Department,L=Independence,ST=Ohio C=US"
)


def _error(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        parse_dn(text)
    return info.value


# -- parsing: valid ----------------------------------------------------------------------------


def test_parse_simple_keeps_string_order():
    dn = parse_dn("CN=www.example.com,OU=IT,O=Example,L=Columbus,ST=Ohio,C=US")
    assert dn.attrs == (
        ("CN", "www.example.com"),
        ("OU", "IT"),
        ("O", "Example"),
        ("L", "Columbus"),
        ("ST", "Ohio"),
        ("C", "US"),
    )


def test_parse_is_lenient_with_whitespace_and_case():
    dn = parse_dn("  cn = Example Certificate ,  o= ABC Corp ,c =us  ")
    assert dn.attrs == (("CN", "Example Certificate"), ("O", "ABC Corp"), ("C", "US"))


def test_parse_accepts_long_names_and_oids():
    dn = parse_dn(
        "commonName=a,organizationalUnitName=b,ORGANIZATIONNAME=c,localityName=d,"
        "stateOrProvinceName=e,countryName=de"
    )
    assert dn.fields == {"CN": "a", "OU": "b", "O": "c", "L": "d", "ST": "e", "C": "DE"}
    assert parse_dn("2.5.4.3=x,2.5.4.6=fr").fields == {"CN": "x", "C": "FR"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r"CN=Smith\, John", "Smith, John"),
        (r"CN=a\+b", "a+b"),
        (r"CN=\"quoted\"", '"quoted"'),
        (r"CN=back\\slash", "back\\slash"),
        (r"CN=\<tag\>", "<tag>"),
        (r"CN=semi\;colon", "semi;colon"),
        (r"CN=a\=b", "a=b"),
        (r"CN=\#1", "#1"),
        (r"CN=x#1", "x#1"),
        (r"CN=\ padded\ ", " padded "),
        (r"CN=Acme\2C Inc", "Acme, Inc"),
        (r"CN=\41\42", "AB"),
        (r"CN=M\C3\BCller", "Müller"),
        (r"CN=Caf\C3\A9", "Café"),
        (r"CN=\e2\82\ac", "€"),
        ("CN=Müller", "Müller"),
        ("CN=東京", "東京"),
        (r"CN=x\20", "x "),
    ],
)
def test_parse_escapes(text, value):
    assert parse_dn(text).get("CN") == value


def test_escaped_spaces_are_kept_unescaped_ones_stripped():
    assert parse_dn(r"CN= \  x \ ").get("CN") == "  x  "
    assert parse_dn("CN=a  b").get("CN") == "a  b"


def test_escaped_comma_does_not_split():
    dn = parse_dn(r"CN=a\,O\=b")
    assert dn.attrs == (("CN", "a,O=b"),)


# -- parsing: invalid --------------------------------------------------------------------------


def test_product_doc_example_reports_the_first_bad_component():
    err = _error(PRODUCT_DOC_EXAMPLE)
    assert "'O-ABC Corp' is not TYPE=value" in err.message
    assert "component 2" in err.message
    assert "character 25" in err.message
    assert err.field == "dn"


def test_unescaped_equals_in_value_is_refused():
    err = _error("CN=Example, L=Independence,ST=Ohio C=US")
    assert "ST" in err.message
    assert "unescaped '='" in err.message
    assert "before 'C'" in err.message
    assert err.field == "dn"


def test_empty_dn():
    for text in ("", "   "):
        err = _error(text)
        assert err.message == "The DN is empty; CN is required."


def test_unknown_type():
    err = _error("CN=x,E=a@b.example")
    assert err.message.startswith("Unknown attribute type 'E' in the DN; use CN, O, OU, L, ST, "
                                  "C, DC, UID, serialNumber, emailAddress,")
    assert err.message.endswith(" or a dotted OID.")
    assert err.field == "dn"
    # The full DN (issue 15): emailAddress is a type now.
    assert parse_dn("CN=x, emailAddress = a@b.example").get("emailAddress") == "a@b.example"


def test_duplicate_type_is_named():
    err = _error("CN=x,O=a,O=b")  # OU and DC may repeat (tests/unit/test_dn_repeated.py)
    assert "O more than once" in err.message
    assert "more than once" in err.message
    assert "CN" in _error("CN=x,commonName=y").message


def test_plus_without_a_type_after_it_is_refused_with_escape_hint():
    # CN=a+OU=b is a multi-valued RDN (tests/unit/test_dn_full.py); a '+' followed by no
    # TYPE=value is most likely a literal plus.
    err = _error("CN=a+b")
    assert "'+'" in err.message
    assert "\\+" in err.message
    assert err.field == "dn"


def test_hex_value_form_is_refused():
    err = _error("CN=#0c0161")
    assert "'#'" in err.message
    assert err.field == "dn"
    _error("CN=  #0c0161")


def test_empty_value():
    err = _error("CN=x,O=")
    assert err.message == "O is empty."
    assert err.field == "O"
    assert _error("CN=x,O=   ").message == "O is empty."


@pytest.mark.parametrize(
    "text",
    [
        "CN=x,,O=y",
        "CN=x,",
        ",CN=x",
        "CN=x;O=y",
        'CN="quoted"',
        "CN=<x>",
        "CN=a\\",
        "CN=a\\q",
        "CN=a\\4",
        "CN=a\\4g",
        "CN=\\C3",
        "CN=\\FF\\FE",
        "=x",
        "CN",
        "C N=x",
        "CN=a+b",
        "CN=x,O=a C=b",
        "O-ABC Corp",
    ],
)
def test_malformed(text):
    err = _error(text)
    assert err.field == "dn"


def test_invalid_utf8_hex_is_refused():
    assert "UTF-8" in _error("CN=\\C3\\28").message


def test_first_error_wins_never_half_parsed():
    # Both components are bad; the first one is reported.
    assert "component 1" in _error("garbage,also garbage").message


# -- validation --------------------------------------------------------------------------------


def test_cn_required():
    err = _error("O=Example,C=US")
    assert err.message == "CN is required."
    assert err.field == "CN"
    with pytest.raises(InputError, match="CN is required"):
        DistinguishedName.from_fields(o="Example")


@pytest.mark.parametrize(("attr", "limit"), [("CN", 64), ("O", 64), ("OU", 64), ("L", 128), ("ST", 128)])
def test_length_limits_in_characters(attr, limit):
    ok = {"CN": "x", attr: "é" * limit}
    assert DistinguishedName.from_mapping(ok).get(attr) == "é" * limit
    with pytest.raises(InputError) as info:
        DistinguishedName.from_mapping({"CN": "x", attr: "é" * (limit + 1)})
    assert info.value.message == f"{attr} is {limit + 1} characters; the maximum is {limit}."
    assert info.value.field == attr


def test_length_limit_applies_to_parsed_dn():
    parse_dn("CN=" + "a" * 64)
    assert _error("CN=" + "a" * 65).message == "CN is 65 characters; the maximum is 64."


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\x7f", "\x85"])
def test_control_characters_refused(char):
    with pytest.raises(InputError) as info:
        DistinguishedName.from_fields(cn="x", o=f"a{char}b")
    assert info.value.field == "O"
    assert "control character" in info.value.message
    # Hex escapes cannot smuggle one in either.
    assert _error("CN=a\\00b").field == "CN"


def test_country_lower_case_is_upper_cased():
    assert parse_dn("CN=x,C=us").get("C") == "US"
    assert DistinguishedName.from_fields(cn="x", c="de").get("C") == "DE"
    assert DistinguishedName((("CN", "x"), ("C", "fr"))) == parse_dn("CN=x,C=FR")


@pytest.mark.parametrize("code", ["XX", "USA", "U", "1A", "U S", "ß", "\u0131t"])
def test_unknown_country(code):
    with pytest.raises(InputError) as info:
        DistinguishedName.from_fields(cn="x", c=code)
    assert info.value.field == "C"
    assert "is not an ISO 3166-1 country code" in info.value.message


def test_unknown_country_message_exact():
    err = _error("CN=x,C=XX")
    assert err.message == "C 'XX' is not an ISO 3166-1 country code."


def test_uk_gets_a_hint():
    assert "GB" in _error("CN=x,C=UK").message


def test_constructor_validates_and_normalises():
    dn = DistinguishedName((("commonName", "x"), ("c", "us")))
    assert dn.attrs == (("CN", "x"), ("C", "US"))
    with pytest.raises(InputError):
        DistinguishedName((("CN", "x"), ("E", "y")))
    with pytest.raises(InputError):
        DistinguishedName((("CN", "x"), ("CN", "y")))
    with pytest.raises(InputError):
        DistinguishedName(())


# -- from_fields / with_field ------------------------------------------------------------------


def test_from_fields_canonical_order_and_blank_omitted():
    dn = DistinguishedName.from_fields(
        cn=" www.example.com ", o="Example", ou="IT", l="", st=None, c="us"
    )
    assert dn.attrs == (("CN", "www.example.com"), ("OU", "IT"), ("O", "Example"), ("C", "US"))
    assert dn.to_rfc4514() == "CN=www.example.com,OU=IT,O=Example,C=US"


def test_from_mapping_accepts_any_spelling():
    dn = DistinguishedName.from_mapping({"commonName": "x", "st": "Ohio", "OU": "  "})
    assert dn.attrs == (("CN", "x"), ("ST", "Ohio"))
    with pytest.raises(InputError, match="Unknown attribute type"):
        DistinguishedName.from_mapping({"CN": "x", "E": "a@b"})
    with pytest.raises(InputError, match="Unknown attribute type"):
        DistinguishedName.from_mapping({"CN": "x", "\u017ft": "y"})  # 'ſt'.upper() == 'ST'


def test_with_field_replaces_in_place():
    dn = parse_dn("C=US,O=Example,CN=x")
    assert dn.with_field("o", "Other").to_rfc4514() == "C=US,O=Other,CN=x"


def test_with_field_inserts_at_canonical_position():
    dn = parse_dn("CN=x,O=Example,C=US")
    assert dn.with_field("OU", "IT").to_rfc4514() == "CN=x,OU=IT,O=Example,C=US"
    assert dn.with_field("ST", "Ohio").to_rfc4514() == "CN=x,O=Example,ST=Ohio,C=US"
    assert dn.with_field("L", "Columbus").with_field("ST", "Ohio").to_rfc4514() == (
        "CN=x,O=Example,L=Columbus,ST=Ohio,C=US"
    )
    assert parse_dn("CN=x").with_field("C", "de").to_rfc4514() == "CN=x,C=DE"
    assert parse_dn("CN=x,C=DE").with_field("O", "Acme").to_rfc4514() == "CN=x,O=Acme,C=DE"


def test_with_field_follows_a_reversed_dn():
    dn = parse_dn("C=US,O=Example,CN=x")
    assert dn.with_field("OU", "IT").to_rfc4514() == "C=US,O=Example,OU=IT,CN=x"
    assert dn.with_field("ST", "Ohio").to_rfc4514() == "C=US,ST=Ohio,O=Example,CN=x"


def test_with_field_blank_removes():
    dn = parse_dn("CN=x,O=Example,C=US")
    assert dn.with_field("O", "  ").to_rfc4514() == "CN=x,C=US"
    assert dn.with_field("O", None).to_rfc4514() == "CN=x,C=US"
    assert dn.with_field("OU", "").to_rfc4514() == "CN=x,O=Example,C=US"
    with pytest.raises(InputError, match="CN is required"):
        dn.with_field("CN", "")


def test_with_field_validates():
    dn = parse_dn("CN=x")
    with pytest.raises(InputError) as info:
        dn.with_field("C", "XX")
    assert info.value.field == "C"
    with pytest.raises(InputError):
        dn.with_field("E", "a@b.example")


def test_fields_and_get():
    dn = parse_dn("CN=x,O=y")
    assert dn.fields == {"CN": "x", "O": "y"}
    assert dn.get("commonName") == "x"
    assert dn.get("C") is None
    assert dn.common_name == "x"
    assert str(dn) == "CN=x,O=y"


# -- output ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("Smith, John", r"Smith\, John"),
        ('a+b"c\\d<e>f;g=h', r'a\+b\"c\\d\<e\>f\;g\=h'),
        ("#1", r"\#1"),
        ("a#1", "a#1"),
        (" x ", r"\ x\ "),
        ("  x  ", r"\  x \ "),
        ("Müller", "Müller"),
        ("\u3000x", r"\E3\80\80x"),
    ],
)
def test_to_rfc4514_escaping(value, escaped):
    dn = DistinguishedName((("CN", value),))
    assert dn.to_rfc4514() == f"CN={escaped}"
    assert parse_dn(dn.to_rfc4514()) == dn


def test_round_trip_of_parsed_dn():
    text = r"CN=Smith\, John,OU=R\+D,O=Ex\=ample,L=\#1,ST=\ Ohio\ ,C=US"
    dn = parse_dn(text)
    assert dn.to_rfc4514() == text
    assert parse_dn(dn.to_rfc4514()) == dn


# -- ASN.1 -------------------------------------------------------------------------------------


def test_asn1_name_order_and_string_types():
    dn = DistinguishedName.from_fields(
        cn="Müller", ou="IT", o="Example, Inc.", l="Köln", st="NRW", c="de"
    )
    name = ax509.Name.load(to_asn1_name(dn).dump())
    rdns = list(name.chosen)
    assert all(len(rdn) == 1 for rdn in rdns)
    got = [(rdn[0]["type"].native, rdn[0]["value"].name, rdn[0]["value"].native) for rdn in rdns]
    assert got == [
        ("country_name", "printable_string", "DE"),
        ("state_or_province_name", "utf8_string", "NRW"),
        ("locality_name", "utf8_string", "Köln"),
        ("organization_name", "utf8_string", "Example, Inc."),
        ("organizational_unit_name", "utf8_string", "IT"),
        ("common_name", "utf8_string", "Müller"),
    ]
    # Tags on the wire: PrintableString (19) for C, UTF8String (12) for the rest.
    assert [rdn[0]["value"].chosen.tag for rdn in rdns] == [19, 12, 12, 12, 12, 12]


def test_asn1_name_keeps_a_reversed_dn_reversed():
    dn = parse_dn("C=US,CN=x")
    name = to_asn1_name(dn)
    assert [rdn[0]["type"].native for rdn in name.chosen] == ["common_name", "country_name"]


def _cryptography_subject(dn: DistinguishedName) -> cx509.Name:
    """Wrap the Name in an (unsigned) CSR so that cryptography's own DER parser reads it."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = keys.PublicKeyInfo.load(
        key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    info = csr.CertificationRequestInfo(
        {"version": "v1", "subject": to_asn1_name(dn), "subject_pk_info": spki, "attributes": []}
    )
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": b"\x00",
        }
    )
    return cx509.load_der_x509_csr(request.dump()).subject


def test_cryptography_reads_the_same_subject():
    dn = parse_dn(r"CN=Smith\, John,OU=R\+D,O=Müller GmbH,L=Köln,ST=NRW,C=DE")
    subject = _cryptography_subject(dn)
    types = [attr._type for attr in subject]
    assert types[0] == cx509.name._ASN1Type.PrintableString
    assert all(t == cx509.name._ASN1Type.UTF8String for t in types[1:])
    # cryptography's RFC 4514 output is CN-first too, and we read it back to the same DN.
    assert parse_dn(subject.rfc4514_string()) == dn
    # And cryptography reads our string to the same attributes.
    assert cx509.Name.from_rfc4514_string(dn.to_rfc4514()) == subject


# -- countries ---------------------------------------------------------------------------------


def test_countries_sorted_by_name():
    items = countries()
    assert len(items) >= 249
    assert ("US", "United States of America") in items
    names = [name for _, name in items]
    assert names.index("Åland Islands") < names.index("Albania")
    assert names.index("Afghanistan") == 0


def test_country_name():
    assert country_name("de") == "Germany"
    with pytest.raises(InputError):
        country_name("XX")
    with pytest.raises(InputError):
        country_name("ß")  # 'ß'.upper() == 'SS' (South Sudan): must not be upper-cased
