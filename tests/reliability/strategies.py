"""Hypothesis strategies for hostile input: DN strings and fields, SANs of each type, group
names, owners, labels, key specs and hashes, and the checks every result must pass.

Each strategy mixes values that should be accepted with near misses and plain garbage, so both
the accepting and the refusing paths get many examples.
"""

from __future__ import annotations

import unicodedata

from cryptography import x509 as cx509
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import strategies as st

from tui_csr.core.dn import ATTRIBUTE_TYPES, STRING_TYPES, countries
from tui_csr.core.san import SanKind
from tui_csr.errors import InputError
from tui_csr.service import GenerateParams, ValidatedRequest

GROUPS = ("Web", "Mail Ops", "Ünïcödé")

# RFC 4514 specials, whitespace of several kinds, multi-byte and astral characters; controls and
# lone surrogates (which argv can carry: Python maps invalid UTF-8 to them) come in rarely.
_TRICKY = list(',+"\\<>;=# \t\xa0\u2028\u3000éü€東\U0001f600@./:-_*%[]')
_chars = st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8"))
_bad = st.one_of(st.characters(categories=["Cc", "Cs", "Zl", "Zp", "Cf"]),
                 st.sampled_from(["\x00", "\n", "\x7f", "\udcff", "\u202e"]))
raw_text = st.one_of(st.text(_chars, max_size=80),
                     st.text(st.one_of(_chars, _bad), min_size=1, max_size=12))

_codes = [code for code, _ in countries()]
_word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1,
                max_size=12)
_idn_word = st.text(st.sampled_from("abcxyzäöüßéñ東京-0"), min_size=1, max_size=10)
domains = st.builds(lambda labels, tld: ".".join([*labels, tld]),
                    st.lists(st.one_of(_word, _idn_word), min_size=1, max_size=3),
                    st.sampled_from(["com", "example", "org", "xn--p1ai", "museum", "a1"]))

def mostly(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` nine times in ten, else ``hostile``: most examples then get past the
    earlier checks, so the later fields are exercised too."""
    return st.integers(0, 9).flatmap(lambda i: hostile if i == 0 else valid)


# Letters of several scripts, digits and every RFC 4514 special: valid in a DN value.
_dn_char = st.one_of(st.sampled_from(list("abcXYZ019 .-'") + list(',+"\\<>;=#') +
                                     list("éüßñ東京€Ω")),
                     st.characters(categories=["L", "N", "P", "S"], codec="utf-8"))
_dn_value = st.text(_dn_char, min_size=1, max_size=40).filter(lambda v: v.strip())
field_values = st.one_of(
    st.none(),
    mostly(_dn_value, st.one_of(
        raw_text,
        st.text(st.sampled_from("aé東"), min_size=60, max_size=140),  # around the length limits
        st.just(""), st.just("   "))),
)
countries_st = st.one_of(st.none(), mostly(
    st.one_of(st.sampled_from(_codes), st.sampled_from(_codes).map(str.lower)),
    st.one_of(st.sampled_from(["UK", "XX", " DE", "us ", "ß", "D E", "DEU"]),
              st.text(_chars, max_size=3))))


#: The attribute types of the full DN (issue 15) beyond CN O OU L ST C.
NEW_TYPES: tuple[str, ...] = tuple(t[0] for t in ATTRIBUTE_TYPES
                                   if t[0] not in ("CN", "O", "OU", "L", "ST", "C"))
#: Country-code types: kept in upper case, as C is.
COUNTRY_TYPES = frozenset({"C", "jurisdictionC"})

# PrintableString (serialNumber) and IA5String (DC, emailAddress) values: mostly their alphabet,
# around their bounds, else anything (refused: a sentence naming the attribute).
_printable_value = st.text(st.sampled_from(
    "ABCXYZabcxyz0189 '()+,-./:=?"), min_size=1, max_size=70).filter(lambda v: v.strip())
_ia5_value = st.one_of(
    _word, domains, st.builds(lambda local, domain: f"{local}@{domain}",
              st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,10}", fullmatch=True), domains),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1,
            max_size=70).filter(lambda v: v.strip()))


def _values_for(attr: str) -> st.SearchStrategy:
    if attr in COUNTRY_TYPES:
        return countries_st
    kind = STRING_TYPES[attr]
    if kind == "printable":
        return st.one_of(st.none(), mostly(_printable_value, field_values))
    if kind == "ia5":
        return st.one_of(st.none(), mostly(_ia5_value, field_values))
    return field_values


@st.composite
def dn_fields(draw) -> dict[str, str]:
    """The wizard's / CLI's separate fields (``--cn --o --ou --l --st --c``), and now and then
    some of the full DN's (``--serial-number --jurisdiction-c --dc --email-address ...``)."""
    out: dict[str, str] = {}
    cn = draw(mostly(_dn_value, field_values))
    if cn is not None:
        out["CN"] = cn
    for name in ("O", "OU", "L", "ST"):
        value = draw(field_values)
        if value is not None:
            out[name] = value
    c = draw(countries_st)
    if c is not None:
        out["C"] = c
    for name in draw(st.lists(st.sampled_from(NEW_TYPES), max_size=4, unique=True)):
        value = draw(_values_for(name))
        if value is not None:
            out[name] = value
    return out


_good_types = {"CN": ["CN", "cn", "commonName", "2.5.4.3"], "O": ["O", "organizationName"],
               "OU": ["OU", "ou"], "L": ["L", "localityName"], "ST": ["ST", "st"],
               "C": ["C", "countryName"]}
# The full DN's types (issue 15) by their short name, another spelling, lower case and OID.
_good_types.update({name: [name, name.lower(), *others, oid]
                    for name, others, oid, _bound, _kind in ATTRIBUTE_TYPES
                    if name not in _good_types})
_bad_types = st.sampled_from(["E", "email", "DCX", "USER", "serial", "1", "X-Y",
                              "", " ", "C N", "jurisdiction", "2.5.4", "1.2.x"])


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _plain(value: str) -> bool:
    """No whitespace but the space and no control or format character: a value whose meaning
    in a DN string is fixed by RFC 4514's escaping alone."""
    return all(ch == " " or unicodedata.category(ch)[0] not in "CZ" for ch in value)


@st.composite
def dn_strings_with_intent(draw) -> tuple[str, list[tuple[str, str]] | None]:
    """A ``--dn`` string: well-formed (escaped, any order, aliases), sloppily typed, or garbage;
    with the (type, value) pairs a well-formed one means, known from how it was built (None for
    the sloppy and the garbage ones, and for values whose meaning RFC 4514 leaves open)."""
    kind = draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2]))
    if kind == 2:
        return draw(raw_text), None
    fields = draw(dn_fields())
    parts = []
    intent: list[tuple[str, str]] | None = [] if kind == 0 else None
    for attr, value in fields.items():
        name = draw(st.sampled_from(_good_types[attr]))
        if kind == 1 and draw(st.booleans()):
            # What a hurried admin types: an unknown type, a stray special, a bad escape.
            mutation = draw(st.integers(0, 2))
            if mutation == 0:
                name = draw(_bad_types)
            elif mutation == 1:
                value = value + draw(st.sampled_from([",", "+x", "=", ";", "\\", '"']))
                parts.append(f"{name}={value}")
                continue
            else:
                value = draw(st.sampled_from(["\\2C", "\\C3\\A9", "\\ZZ", "#04", "\\ "])) + value
                parts.append(f"{name}={value}")
                continue
        sep = draw(st.sampled_from(["=", " = "]))
        parts.append(f"{name}{sep}{_escape(value)}")
        if intent is not None:
            if not _plain(value) or not value.strip() or (
                    attr in COUNTRY_TYPES and value != value.strip()):
                intent = None
            else:
                intent.append((attr, value.upper() if attr in COUNTRY_TYPES else value))
    if draw(st.booleans()):
        parts.reverse()  # C=..,O=..,CN=.. is legal too
    joiner = draw(st.sampled_from([",", ", ", ",", " , "] + ([",,", ";"] if kind == 1 else [])))
    return joiner.join(parts), intent


#: A ``--dn`` string alone (see :func:`dn_strings_with_intent`).
dn_strings = dn_strings_with_intent().map(lambda pair: pair[0])


def fields_intent(fields: dict[str, str]) -> list[tuple[str, str]]:
    """What separate fields mean: each value without its surrounding whitespace (a blank one is
    no field), a country code (C, jurisdictionC) in upper case."""
    out = []
    for attr, value in fields.items():
        value = value.strip()
        if value:
            out.append((attr, value.upper() if attr in COUNTRY_TYPES else value))
    return out


_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(lambda a: a.exploded if int(a) % 2 else str(a))
_local = st.from_regex(r"[a-z0-9][a-z0-9+_-]{0,10}(\.[a-z0-9]{1,5})?", fullmatch=True)

_emails = mostly(
    st.builds(lambda local, domain: f"{local}@{domain}",
              st.one_of(_local, st.just('"john doe"'), st.just("A.B+tag")), domains),
    st.one_of(
        st.builds(lambda local, domain: f"{local}@{domain}",
                  st.sampled_from(["ünï", ".x", "x..y", "a" * 65, "", "a b"]),
                  st.one_of(domains, st.sampled_from(["[192.0.2.1]", "localhost", ""]))),
        raw_text))
_dns = mostly(
    st.one_of(domains, domains.map(lambda d: "*." + d), domains.map(str.upper)),
    st.one_of(domains.map(lambda d: d + "."),
              st.sampled_from(["*", "a.*.com", "-a.com", "192.0.2.1", "a" * 64 + ".com",
                               "localhost", "a_b.com", "1.2.3.4.5"]),
              raw_text))
_ips = mostly(st.one_of(_ipv4, _ipv6),
              st.one_of(st.sampled_from(["fe80::1%eth0", "1.2.3", "01.2.3.4", "[::1]", "1.2.3.256",
                                         "::ffff:1.2.3.4x"]), raw_text))
_uris = mostly(
    st.builds(lambda scheme, host, path: f"{scheme}://{host}/{path}",
              st.sampled_from(["https", "HTTP", "ldap", "x-y+z"]),
              st.one_of(domains, st.sampled_from(["[::1]", "h.example:80"])),
              st.text(st.sampled_from("abc/?=&%20;~"), max_size=12)),
    st.one_of(st.builds(lambda host, path: f"https://{host}/{path}",
                        st.sampled_from(["", "host:99999", "ho st", "é.example"]),
                        st.sampled_from(["", "a b", "é", "<x>"])),
              st.sampled_from(["no-scheme.example/x", "urn:isbn:123", "1x://a/"]),
              raw_text))
SAN_VALUES = {"email": _emails, "dns": _dns, "ip": _ips, "uri": _uris}
san_entry = mostly(
    st.one_of(*[st.tuples(st.just(kind), values) for kind, values in SAN_VALUES.items()]),
    st.tuples(st.sampled_from(["DNS", "IP", "rfc822", "URL", "x400", ""]), raw_text),
)
sans = st.lists(san_entry, max_size=5)

group_names = mostly(
    st.one_of(st.sampled_from(GROUPS), st.sampled_from(GROUPS).map(lambda g: f"  {g.upper()} "),
              st.sampled_from(GROUPS).map(str.casefold)),
    st.one_of(st.text(_dn_char, min_size=1, max_size=64).filter(lambda v: v.strip()), raw_text))
owners = st.one_of(st.none(), st.just(""), mostly(
    st.from_regex(r"[a-z][a-z0-9._@+-]{0,20}", fullmatch=True),
    st.one_of(st.sampled_from(["alice bob", "a" * 65, "-x", "root;rm", "ünï"]), raw_text)))
labels = st.one_of(st.none(), mostly(
    st.text(st.sampled_from("abc-_. /é東"), min_size=1, max_size=64).filter(lambda v: v.strip()),
    st.one_of(st.just(""), st.text("ab", min_size=65, max_size=70), raw_text)))
key_specs = mostly(st.sampled_from(["P-256", "p256", "prime256v1", "SECP256R1", "RSA2048",
                                    "p-384", "secp521r1", "rsa-3072"]),
                   st.one_of(st.sampled_from(["RSA1024", "RSA", "P-192", "ed25519", "",
                                              "RSA-2048x"]), raw_text))
hashes = st.one_of(st.none(), mostly(st.sampled_from(["SHA256", "sha-384", "SHA2-512"]),
                                     st.one_of(st.sampled_from(["SHA1", "md5", "sha3-256"]),
                                               raw_text)))


@st.composite
def generate_cases(draw, *, spec_ok: bool = False
                   ) -> tuple[GenerateParams, list[tuple[str, str]] | None]:
    """Everything a user types into Generate, and the subject it means (the oracle: known from
    how the input was built, never from tui-csr's parser; None where the input does not fix it).
    With ``spec_ok`` the key spec is always P-256 (for runs on the real token, where only the
    subject, SANs and the rest are fuzzed)."""
    use_dn = draw(st.booleans())
    dn, intent = draw(dn_strings_with_intent()) if use_dn else (None, None)
    # Both a DN string and fields, now and then: refused ("either ... or ...").
    fields = draw(dn_fields()) if not use_dn or not draw(st.integers(0, 9)) else {}
    if not use_dn:
        intent = fields_intent(fields)
    elif fields:
        intent = None
    params = GenerateParams(
        key_spec="P-256" if spec_ok else draw(key_specs),
        hash=None if spec_ok else draw(hashes),
        pss=False if spec_ok else draw(st.integers(0, 7)) == 0,
        dn=dn,
        fields=fields,
        sans=draw(sans),
        groups=draw(st.lists(group_names, min_size=1, max_size=3)) if draw(
            st.integers(0, 9)) else [],
        owner=draw(owners),
        label=draw(labels),
    )
    return params, intent


def generate_params(*, spec_ok: bool = False) -> st.SearchStrategy[GenerateParams]:
    """The inputs of :func:`generate_cases` alone."""
    return generate_cases(spec_ok=spec_ok).map(lambda case: case[0])


# -- what every outcome must satisfy ------------------------------------------------------------

#: InputError.field -> words of which one must appear in the message (it names the field).
FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "key_spec": ("key spec", "--key-spec"), "hash": ("hash",), "pss": ("pss",),
    "dn": ("dn", "cn", "o", "ou", "l", "st", "c", *(n.lower() for n in NEW_TYPES)),
    "CN": ("cn",), "O": ("o",), "OU": ("ou",), "L": ("l",), "ST": ("st",), "C": ("c",),
    "DC": ("dc",),
    "san": ("subject alternative", "san"), "email": ("email",), "dns": ("dns",),
    "ip": ("ip address",), "uri": ("uri",), "group": ("group",), "owner": ("owner",),
    "label": ("label",), "policy": ("policy",), "description": ("description",),
}


def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal would act on or that break the line: controls, line and
    paragraph separators, bidi overrides, lone surrogates."""
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")
            or "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069"]


def check_refusal(exc: InputError) -> None:
    """A refusal is one sentence that names the field it is about."""
    assert exc.field in FIELD_WORDS, (exc.field, exc.message)
    text = exc.message
    shown = str(exc)  # what the CLI prints after "error: " and the dialogs show
    assert text and shown and len(shown.splitlines()) == 1, shown
    assert not unsafe_characters(shown), shown
    shown.encode("utf-8")  # no lone surrogate: it can be printed and logged
    words = text.casefold().replace("'", " ").replace(",", " ").replace(".", " ").split()
    joined = " ".join(words)
    assert any((w in words) if " " not in w else (w in joined) for w in FIELD_WORDS[exc.field]), (
        exc.field, text)


_OIDS = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O",
         NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.LOCALITY_NAME: "L",
         NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.COUNTRY_NAME: "C"}


def csr_subject_and_sans(pem_or_der: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The subject (RFC 4514 order: CN first) and SANs of a CSR, read by ``cryptography``."""
    csr = (cx509.load_pem_x509_csr(pem_or_der) if pem_or_der.startswith(b"-----")
           else cx509.load_der_x509_csr(pem_or_der))
    assert csr.is_signature_valid
    from tui_csr.core.dn import TYPE_OIDS

    names = {oid: name for name, oid in TYPE_OIDS.items()}
    subject = [(_OIDS.get(a.oid) or names.get(a.oid.dotted_string, a.oid.dotted_string), a.value)
               for a in reversed(list(csr.subject))]
    try:
        ext = csr.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except cx509.ExtensionNotFound:
        return subject, []
    kinds = {cx509.RFC822Name: SanKind.EMAIL, cx509.DNSName: SanKind.DNS,
             cx509.IPAddress: SanKind.IP, cx509.UniformResourceIdentifier: SanKind.URI}
    out = []
    for name in ext:
        value = name.value
        out.append((kinds[type(name)].value, value.compressed if hasattr(value, "compressed")
                    else value))
    return subject, out


def expected(v: ValidatedRequest) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The subject and SANs the core normalised ``v`` to (what the CSR must carry)."""
    return list(v.dn.attrs), [e.as_pair() for e in v.sans]


def check_subject(subject: list[tuple[str, str]], intent: list[tuple[str, str]] | None) -> None:
    """The CSR's subject (read by ``cryptography``) holds exactly the RDNs the input meant: none
    dropped, none added, none changed (order aside: a DN string may be typed in either order)."""
    if intent is not None:
        assert sorted(subject) == sorted(intent), (subject, intent)


#: The string type each attribute must have in the DER, by OID (RFC 5280, the CA/B Forum EV
#: guidelines): written out here, not taken from tui_csr, so the check is independent of it.
#: PrintableString 0x13, IA5String 0x16; everything else UTF8String 0x0C.
_TAG_BY_OID = {"2.5.4.6": 0x13, "1.3.6.1.4.1.311.60.2.1.3": 0x13, "2.5.4.5": 0x13,
               "0.9.2342.19200300.100.1.25": 0x16, "1.2.840.113549.1.9.1": 0x16}
#: Upper bounds in characters by OID (RFC 5280 Appendix A, X.520; DC one DNS label).
_BOUND_BY_OID = {"2.5.4.3": 64, "2.5.4.10": 64, "2.5.4.11": 64, "2.5.4.7": 128, "2.5.4.8": 128,
                 "2.5.4.6": 2, "1.3.6.1.4.1.311.60.2.1.3": 2, "2.5.4.5": 64,
                 "1.2.840.113549.1.9.1": 255, "2.5.4.12": 64, "2.5.4.65": 128, "2.5.4.9": 128,
                 "2.5.4.17": 40, "2.5.4.97": 128, "2.5.4.15": 128,
                 "1.3.6.1.4.1.311.60.2.1.1": 128, "1.3.6.1.4.1.311.60.2.1.2": 128,
                 "0.9.2342.19200300.100.1.25": 63, "0.9.2342.19200300.100.1.1": 256}


def check_encodings(pem_or_der: bytes) -> None:
    """Every subject attribute of the CSR in the string type its OID must have, within its
    upper bound, its bytes decoding to text (read with asn1crypto from the DER itself)."""
    from asn1crypto import csr as acsr

    der = (cx509.load_pem_x509_csr(pem_or_der) if pem_or_der.startswith(b"-----")
           else cx509.load_der_x509_csr(pem_or_der)).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.DER)
    name = acsr.CertificationRequest.load(der)["certification_request_info"]["subject"]
    for rdn in name.chosen:
        for atv in rdn:
            oid = atv["type"].dotted
            value = atv["value"]
            chosen = value.chosen if hasattr(value, "chosen") else value
            want = _TAG_BY_OID.get(oid, 0x0C)
            assert chosen.tag == want, (oid, chosen.tag, want)
            text = chosen.contents.decode("utf-8" if want == 0x0C else "ascii")
            if oid in _BOUND_BY_OID:
                assert 0 < len(text) <= _BOUND_BY_OID[oid], (oid, len(text))


@st.composite
def full_dn_fields(draw) -> dict[str, str]:
    """Separate fields with a CN and one to five attributes of the full DN (issue 15), their
    values mostly of the type's own alphabet: most of them reach the token."""
    out = {"CN": draw(_dn_value)}
    for name in draw(st.lists(st.sampled_from(NEW_TYPES), min_size=1, max_size=5,
                              unique=True)):
        value = draw(_values_for(name))
        if value is not None:
            out[name] = value
    return out
