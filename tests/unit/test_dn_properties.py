"""Property tests: DN construction, printing and parsing agree, and nothing but InputError escapes."""

from __future__ import annotations

import unicodedata

import pytest
from asn1crypto import csr, keys
from asn1crypto import x509 as ax509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tui_csr.core.dn import DistinguishedName, countries, parse_dn, to_asn1_name
from tui_csr.errors import InputError

# RFC 4514 specials, whitespace and multi-byte characters, mixed with almost anything; the
# "bad" characters (controls, lone surrogates, which cannot even be encoded) come in rarely, so
# that both the accepting and the refusing paths get examples.
_TRICKY = list(',+"\\<>;=# \xa0\u3000éü€東\U0001f600')
_chars = st.one_of(
    st.sampled_from(_TRICKY),
    st.characters(codec="utf-8", exclude_categories=["Cc"]),
)
_bad_chars = st.characters(categories=["Cs", "Cc", "Zs"])
_values = st.one_of(
    st.none(),
    st.text(_chars, max_size=70),
    st.text(st.one_of(_chars, _bad_chars), max_size=10),
)
_codes = [code for code, _ in countries()]
_country = st.one_of(
    st.none(),
    st.sampled_from(_codes),
    st.sampled_from(_codes).map(str.lower),
    st.text(_chars, max_size=3),
)

_SPKI = keys.PublicKeyInfo.load(
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
)

_ASN1_SHORT = {
    "common_name": "CN",
    "organization_name": "O",
    "organizational_unit_name": "OU",
    "locality_name": "L",
    "state_or_province_name": "ST",
    "country_name": "C",
}


def _check_encodings(dn: DistinguishedName) -> None:
    """The ASN.1 Name reads back (asn1crypto and cryptography) to the same values, C first."""
    der = to_asn1_name(dn).dump()
    name = ax509.Name.load(der)
    got = [(_ASN1_SHORT[rdn[0]["type"].native], rdn[0]["value"].native) for rdn in name.chosen]
    assert got == list(reversed(dn.attrs))

    info = csr.CertificationRequestInfo(
        {"version": "v1", "subject": name, "subject_pk_info": _SPKI, "attributes": []}
    )
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": b"\x00",
        }
    )
    # cryptography warns (UserWarning) when a value is over 64 UTF-8 *bytes*; RFC 5280 counts
    # characters, so a 64-character CN of 'é' is fine even though cryptography grumbles.
    subject = cx509.load_der_x509_csr(request.dump()).subject
    assert [attr.value for attr in subject] == [v for _, v in reversed(dn.attrs)]


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # see _check_encodings
@settings(max_examples=300, deadline=None)
@given(
    cn=st.one_of(st.text(_chars, min_size=1, max_size=64), _values),
    o=_values,
    ou=_values,
    l=_values,
    st_=_values,
    c=_country,
)
def test_from_fields_round_trips_or_refuses(cn, o, ou, l, st_, c):  # noqa: E741
    try:
        dn = DistinguishedName.from_fields(cn=cn, o=o, ou=ou, l=l, st=st_, c=c)
    except InputError:
        event("refused")
        return
    event("accepted")
    text = dn.to_rfc4514()
    assert parse_dn(text) == dn
    assert not any(unicodedata.category(ch) == "Cc" for ch in text)
    _check_encodings(dn)


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@settings(max_examples=300, deadline=None)
@given(cn=st.text(_chars, min_size=1, max_size=64), extra=_values)
def test_with_field_round_trips_or_refuses(cn, extra):
    try:
        dn = DistinguishedName.from_fields(cn=cn).with_field("OU", extra)
    except InputError:
        return
    assert parse_dn(dn.to_rfc4514()) == dn
    assert dn.get("OU") == ((extra or "").strip() or None)


_dn_chars = st.one_of(
    st.sampled_from(list("CNOULSTcn=,+\\;#\" <>0123456789abcdefABCDEF.")),
    _chars,
    _bad_chars,
)
_components = st.builds(
    lambda t, sep, v: f"{t}{sep}{v}",
    st.sampled_from(["CN", "O", "OU", "L", "ST", "C", "cn", " o ", "E", "2.5.4.3", "", "X Y"]),
    st.sampled_from(["=", " = ", "", "-"]),
    st.text(_dn_chars, max_size=20),
)
_dn_like = st.lists(_components, min_size=0, max_size=7).map(",".join)

# Mostly well-formed strings, so that the accepting path is exercised too.
_value_tokens = st.one_of(
    st.sampled_from(
        ["a", "Z", "1", " ", "-", ".", "#", "é", "\\,", "\\+", '\\"', "\\\\", "\\<", "\\>",
         "\\;", "\\=", "\\#", "\\ ", "\\2C", "\\C3\\A9", "\\e2\\82\\ac", "\\41"]
    ),
    st.characters(codec="utf-8"),
)
_escaped_values = st.lists(_value_tokens, min_size=1, max_size=12).map("".join)
_well_formed = (
    st.lists(st.sampled_from(["O", "OU", "L", "ST", "C"]), unique=True)
    .flatmap(lambda types: st.permutations(["CN", *types]))
    .flatmap(
        lambda types: st.tuples(
            *[
                st.tuples(
                    st.sampled_from([t, t.lower()]),
                    st.sampled_from(_codes) if t == "C" else _escaped_values,
                )
                for t in types
            ]
        )
    )
    .flatmap(
        lambda pairs: st.sampled_from([",", ", ", " , "]).map(
            lambda sep: sep.join(f"{t}={v}" for t, v in pairs)
        )
    )
)


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(_dn_chars, max_size=60), _dn_like, _well_formed))
def test_parse_dn_returns_or_raises_input_error(text):
    try:
        dn = parse_dn(text)
    except InputError as exc:
        event("refused")
        assert exc.message
        assert exc.field in {"dn", "CN", "O", "OU", "L", "ST", "C"}
        return
    event("accepted")
    assert parse_dn(dn.to_rfc4514()) == dn
    _check_encodings(dn)
