"""Subject Alternative Name parsing, duplicate detection and ASN.1 encoding."""

from __future__ import annotations

import pytest
from asn1crypto import x509 as ax509
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tui_csr.core.san import (
    SanEntry,
    SanKind,
    parse_kind,
    parse_san,
    to_general_names,
    validate_sans,
)
from tui_csr.errors import InputError


def _error(kind: str, raw: str) -> InputError:
    with pytest.raises(InputError) as info:
        parse_san(kind, raw)
    return info.value


# -- kinds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("email", SanKind.EMAIL),
        ("RFC822", SanKind.EMAIL),
        ("rfc822Name", SanKind.EMAIL),
        ("DNS", SanKind.DNS),
        ("dNSName", SanKind.DNS),
        ("IP", SanKind.IP),
        ("ip_address", SanKind.IP),
        ("URI", SanKind.URI),
        (SanKind.URI, SanKind.URI),
    ],
)
def test_parse_kind(text, kind):
    assert parse_kind(text) is kind


def test_unknown_kind():
    err = _error("upn", "a@b.example")
    assert err.field == "san"
    assert "upn" in err.message


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("email", "Email entry is empty."),
        ("dns", "DNS name entry is empty."),
        ("ip", "IP address entry is empty."),
        ("uri", "URI entry is empty."),
    ],
)
def test_empty_entries(kind, message):
    for raw in ("", "   ", None):
        err = _error(kind, raw)
        assert err.message == message
        assert err.field == kind


# -- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com  ", "alice@example.com"),
        ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),
        ("alice@bücher.example", "alice@xn--bcher-kva.example"),
        ("alice@BÜCHER.example", "alice@xn--bcher-kva.example"),
        ("a!#$%&'*+/=?^_`{|}~-.b@example.com", "a!#$%&'*+/=?^_`{|}~-.b@example.com"),
        ('"john doe"@example.com', '"john doe"@example.com'),
        ('"alice"@example.com', '"alice"@example.com'),  # kept as typed
        ('"a@b"@example.com', '"a@b"@example.com'),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_email_valid(raw, value):
    entry = parse_san("email", raw)
    assert entry == SanEntry(SanKind.EMAIL, value)
    assert entry.value.isascii()


def test_email_non_ascii_local_part_refused():
    err = _error("email", "müller@example.com")
    assert "non-ASCII" in err.message
    assert "before the '@'" in err.message
    assert err.field == "email"


@pytest.mark.parametrize(
    "raw",
    [
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "al ice@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a@b@example.com",
        "alice@-example.com",
        "alice@example.com.",
        "alice@[192.0.2.1]",
        "Alice <alice@example.com>",
        "a" * 65 + "@example.com",
        '"a\x01"@example.com',
    ],
)
def test_email_invalid(raw):
    err = _error("email", raw)
    assert err.message.startswith(f"Email '{raw.strip()}' ")
    assert err.field == "email"


def test_email_message_carries_the_reason():
    err = _error("email", "alice")
    assert err.message == (
        "Email 'alice' is not a valid address: an email address must have an @-sign."
    )


# -- dns ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("www.example.com", "www.example.com"),
        ("WWW.Example.COM", "www.example.com"),
        (" host.example.com ", "host.example.com"),
        ("*.example.com", "*.example.com"),
        ("*.Bücher.example", "*.xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("ｅxample。com", "example.com"),
        ("a-b.example", "a-b.example"),
        ("1a.example", "1a.example"),
        ("host.local", "host.local"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_dns_valid(raw, value):
    assert parse_san("dns", raw) == SanEntry(SanKind.DNS, value)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("localhost", "at least two labels"),
        ("*.com", "at least two labels"),
        ("a..example", "empty label"),
        (".example.com", "empty label"),
        ("example.com.", "trailing dot"),
        ("a" * 64 + ".example", "63"),
        (".".join(["a" * 63] * 4), "253"),
        ("*.*.example.com", "wildcard"),
        ("a.*.example.com", "wildcard"),
        ("foo*.example.com", "wildcard"),
        ("*", "wildcard"),
        ("192.0.2.1", "IP entry"),
        ("2001:db8::1", "IP entry"),
        ("[2001:db8::1]", "IP entry"),
        ("1.2.3", "IP address"),
        ("under_score.example", "not valid"),
        ("sp ace.example", "not valid"),
        ("-lead.example", "hyphen"),
        ("trail-.example", "hyphen"),
        ("xn--zz.example", "not valid"),
        ("http://example.com", "not valid"),
    ],
)
def test_dns_invalid(raw, fragment):
    err = _error("dns", raw)
    assert fragment in err.message
    assert err.field == "dns"


def test_dns_total_length_boundary():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert len(name) == 253
    assert parse_san("dns", name).value == name
    assert "253" in _error("dns", "c." + name).message


# -- ip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::1", "::1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
    ],
)
def test_ip_valid(raw, value):
    assert parse_san("ip", raw) == SanEntry(SanKind.IP, value)


@pytest.mark.parametrize(
    "raw", ["256.1.1.1", "10.0.0.0/8", "010.0.0.1", "example.com", "fe80::1%eth0", "1.2.3"]
)
def test_ip_invalid(raw):
    err = _error("ip", raw)
    assert err.message.startswith(f"IP address '{raw}'")
    assert err.field == "ip"


# -- uri ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("https://www.example.com/", "https://www.example.com/"),
        ("HTTPS://Example.com/Path", "https://Example.com/Path"),
        ("ldap://ldap.example.com/cn=CA,o=Example?cACertificate", None),
        ("http://[2001:db8::1]:8080/x", None),
        ("https://user@host.example:443/p%20q?x=1#frag", None),
        ("spiffe://trust.example/workload", None),
    ],
)
def test_uri_valid(raw, value):
    assert parse_san("uri", raw).value == (value or raw)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("https://bücher.example/", "non-ASCII"),
        ("https://example.com/a b", "space"),
        ("https://example.com/\x01", "control"),
        ("www.example.com", "scheme"),
        ("//host.example/", "scheme"),
        ("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "host"),
        ("mailto:alice@example.com", "host"),
        ("file:///etc/passwd", "host"),
        ("https://example.com:99999/", "port"),
        ("https://example.com:http/", "port"),
        ("http://[::1/", "not valid"),
        ("https://example.com/{x}", "'{'"),
        ('https://example.com/"', "'\"'"),
    ],
)
def test_uri_invalid(raw, fragment):
    err = _error("uri", raw)
    assert fragment in err.message
    assert err.field == "uri"


# -- lists -------------------------------------------------------------------------------------


def test_validate_sans_keeps_order_and_accepts_entries_or_pairs():
    entries = validate_sans(
        [("dns", "www.example.com"), SanEntry(SanKind.IP, "192.0.2.1"), ("email", "a@b.example")]
    )
    assert [e.as_pair() for e in entries] == [
        ("dns", "www.example.com"),
        ("ip", "192.0.2.1"),
        ("email", "a@b.example"),
    ]
    assert validate_sans([]) == ()


def test_validate_sans_revalidates_entries():
    with pytest.raises(InputError):
        validate_sans([SanEntry(SanKind.DNS, "not a name")])


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("email", "a@b.example"), ("email", "a@B.EXAMPLE")], "Email 'a@b.example' is listed twice."),
        ([("dns", "WWW.example.com"), ("dns", "www.example.com")], "DNS name 'www.example.com' is listed twice."),
        ([("dns", "bücher.example"), ("dns", "xn--bcher-kva.example")], "DNS name 'xn--bcher-kva.example' is listed twice."),
        ([("ip", "2001:db8::1"), ("ip", "2001:DB8:0::1")], "IP address '2001:db8::1' is listed twice."),
        ([("uri", "https://a.example/"), ("uri", "HTTPS://a.example/")], "URI 'https://a.example/' is listed twice."),
    ],
)
def test_duplicates_refused(pairs, message):
    with pytest.raises(InputError) as info:
        validate_sans(pairs)
    assert info.value.message == message
    assert info.value.field == pairs[0][0]


def test_email_local_part_case_is_significant():
    entries = validate_sans([("email", "Alice@b.example"), ("email", "alice@b.example")])
    assert len(entries) == 2


def test_same_value_different_kinds_is_fine():
    assert len(validate_sans([("dns", "a.example"), ("uri", "https://a.example")])) == 2


# -- ASN.1 -------------------------------------------------------------------------------------


def test_general_names_encoding():
    names = to_general_names(
        [
            ("email", "alice@bücher.example"),
            ("dns", "*.example.com"),
            ("ip", "192.0.2.1"),
            ("ip", "2001:db8::1"),
            ("uri", "HTTPS://Host.Example/x"),
            ("uri", "http://[2001:db8::1]/"),
        ]
    )
    parsed = ax509.GeneralNames.load(names.dump())
    assert [n.name for n in parsed] == [
        "rfc822_name",
        "dns_name",
        "ip_address",
        "ip_address",
        "uniform_resource_identifier",
        "uniform_resource_identifier",
    ]
    # Raw IA5String bytes exactly as normalised: no second IDNA pass, host case untouched.
    assert [n.chosen.contents for n in parsed] == [
        b"alice@xn--bcher-kva.example",
        b"*.example.com",
        bytes([192, 0, 2, 1]),
        bytes.fromhex("20010db8000000000000000000000001"),
        b"https://Host.Example/x",
        b"http://[2001:db8::1]/",
    ]
    # Context tags [1] rfc822Name, [2] dNSName, [7] iPAddress, [6] URI.
    assert [n.chosen.tag for n in parsed] == [1, 2, 7, 7, 6, 6]


def test_general_names_validates():
    with pytest.raises(InputError):
        to_general_names([("dns", "a.example"), ("dns", "A.example")])
    assert len(to_general_names([])) == 0


# -- properties --------------------------------------------------------------------------------

_chars = st.one_of(
    st.sampled_from(list("@.-*_:/[]%\"\\ \t!#$&'()+,;=?~éü東xn-0123456789abcdefABC")),
    st.characters(),
)
_raw = st.text(_chars, max_size=40)
# Mostly well-formed pieces, so that the accepting path gets examples too.
_label = st.text(st.sampled_from("abcxyz019-éüB"), min_size=1, max_size=10)
_domain = st.lists(_label, min_size=2, max_size=4).map(".".join)
_local = st.one_of(
    st.text(st.sampled_from("abcXYZ09.+_-!#'=?"), min_size=1, max_size=12),
    st.text(st.sampled_from("ab @,.\\"), min_size=1, max_size=8).map(lambda t: f'"{t}"'),
    _raw,
)
_shaped = {
    "email": st.builds(lambda a, b: f"{a}@{b}", _local, st.one_of(_domain, _raw)),
    "dns": st.one_of(
        _domain,
        _domain.map(lambda d: f"*.{d}"),
        st.lists(st.text(_chars, max_size=12), min_size=1, max_size=5).map(".".join),
    ),
    "ip": st.one_of(st.ip_addresses().map(str), _raw),
    "uri": st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["https", "LDAP", "x-y+z", "1x"]),
        st.one_of(_domain, _raw),
        st.one_of(st.text(st.sampled_from("abc/?=&%20;~"), max_size=12), _raw),
    ),
}


@pytest.mark.parametrize("kind", ["email", "dns", "ip", "uri"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_parse_san_returns_ascii_or_raises_input_error(kind, data):
    raw = data.draw(st.one_of(_raw, _shaped[kind]))
    try:
        entry = parse_san(kind, raw)
    except InputError as exc:
        event("refused")
        assert exc.message
        assert exc.field == kind
        return
    event("accepted")
    assert entry.kind == kind
    assert entry.value.isascii()
    assert entry.value.isprintable()
    # Normalisation is idempotent, and the entry encodes.
    assert parse_san(kind, entry.value) == entry
    assert len(to_general_names([entry])) == 1
