"""Distinguished Names: parsing (RFC 4514), validation (RFC 5280 bounds) and ASN.1 encoding.

Pure: no I/O. Only the attributes a CSR subject needs are accepted: CN, O, OU, L, ST, C and DC.
OU and DC may repeat (``OU=PKI,OU=IT``, ``DC=example,DC=com``): each value is its own RDN, kept in
the order given; the others appear at most once. A :class:`DistinguishedName` keeps its
attributes in RFC 4514 string order (most specific first, ``CN=...,O=...,C=...``);
:func:`to_asn1_name` reverses that into the ASN.1 ``RDNSequence`` order (``C`` first).

Where values come as a list per type (the ``--ou`` flags, the OU field one value per line,
:meth:`DistinguishedName.from_pairs`), the list is in ASN.1 order, outermost first, as
``openssl`` prints ``/C=DE/O=Example/OU=IT/OU=PKI/CN=a``: ``OU=IT`` then ``OU=PKI`` is the RFC
4514 string ``CN=a,OU=PKI,OU=IT,O=Example,C=DE``.

Every public constructor validates, so a :class:`DistinguishedName` in hand is always one we are
willing to put into a CSR.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import iso3166

from tui_csr.errors import InputError

if TYPE_CHECKING:  # asn1crypto loads in to_asn1_name: listing requests never needs it
    from asn1crypto import x509

#: Short names in canonical (RFC 4514, most specific first) order; ``from_fields`` uses it.
CANONICAL_ORDER: tuple[str, ...] = ("CN", "OU", "O", "L", "ST", "C", "DC")

#: Types that may appear more than once, each value its own RDN.
REPEATABLE: frozenset[str] = frozenset({"OU", "DC"})

#: RFC 5280 Appendix A upper bounds (ub-common-name, ub-organization-name, ...), in characters;
#: DC (RFC 4519, unbounded) is held to one DNS label.
MAX_LENGTH: dict[str, int] = {"CN": 64, "O": 64, "OU": 64, "L": 128, "ST": 128, "C": 2,
                              "DC": 63}

_RANK = {t: i for i, t in enumerate(CANONICAL_ORDER)}

# Every spelling we accept for a type, upper-cased. The dotted OIDs are legal RFC 4514 too.
_TYPE_ALIASES: dict[str, str] = {
    "CN": "CN", "COMMONNAME": "CN", "2.5.4.3": "CN",
    "O": "O", "ORGANIZATIONNAME": "O", "2.5.4.10": "O",
    "OU": "OU", "ORGANIZATIONALUNITNAME": "OU", "2.5.4.11": "OU",
    "L": "L", "LOCALITYNAME": "L", "2.5.4.7": "L",
    "ST": "ST", "STATEORPROVINCENAME": "ST", "2.5.4.8": "ST",
    "C": "C", "COUNTRYNAME": "C", "2.5.4.6": "C",
    "DC": "DC", "DOMAINCOMPONENT": "DC", "0.9.2342.19200300.100.1.25": "DC",
}

_ASN1_TYPES: dict[str, str] = {
    "CN": "common_name",
    "O": "organization_name",
    "OU": "organizational_unit_name",
    "L": "locality_name",
    "ST": "state_or_province_name",
    "C": "country_name",
    "DC": "domain_component",
}

# RFC 4514 attribute type syntax: a keystring or a numeric OID.
_TYPE_SYNTAX = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")

# Characters that may follow a backslash literally. '=' is included because we refuse it
# unescaped (see _decode_value), so there has to be a way to write one.
_ESCAPABLE = frozenset(',+"\\<>;=# ')
_HEX = frozenset("0123456789abcdefABCDEF")
# Escaped wherever they occur in to_rfc4514 output.
_ALWAYS_ESCAPE = frozenset(',+"\\<>;=')

_UNKNOWN_TYPE = "Unknown attribute type '{}' in the DN; use CN, O, OU, L, ST, C or DC."


@dataclass(frozen=True)
class DistinguishedName:
    """A validated subject DN: ordered ``(type, value)`` pairs in RFC 4514 string order.

    Types are normalised to the upper-case short names (``commonName`` becomes ``CN``) and the
    country code to upper case, so two DNs that mean the same compare equal.
    """

    attrs: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        normalised = tuple(_normalise_pair(t, v) for t, v in self.attrs)
        _validate(normalised)
        # Frozen dataclass: the normalised form replaces what the caller passed.
        object.__setattr__(self, "attrs", normalised)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_fields(
        cls,
        cn: str | None = None,
        o: str | None = None,
        ou: str | None = None,
        l: str | None = None,  # noqa: E741 - the attribute really is called L
        st: str | None = None,
        c: str | None = None,
    ) -> DistinguishedName:
        """Build a DN from form fields in canonical order (CN, OU, O, L, ST, C).

        Surrounding whitespace is stripped (as :func:`parse_dn` does for unescaped spaces);
        blank or ``None`` fields are left out.
        """
        return cls.from_mapping({"CN": cn, "O": o, "OU": ou, "L": l, "ST": st, "C": c})

    @classmethod
    def from_mapping(cls, fields: Mapping[str, str | Sequence[str] | None]) -> DistinguishedName:
        """Like :meth:`from_fields`, from a ``{type: value}`` mapping (any accepted type name);
        OU and DC may map to a list of values, in ASN.1 order (outermost first)."""
        pairs: list[tuple[str, str]] = []
        for raw_type, value in fields.items():
            if value is None or isinstance(value, str):
                pairs.append((raw_type, value or ""))
            else:
                pairs.extend((raw_type, v) for v in value)
        return cls.from_pairs(pairs, _seen_types=[t for t in fields])

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]], *,
                   _seen_types: Sequence[str] | None = None) -> DistinguishedName:
        """A DN from ``(type, value)`` pairs as given (command-line flags, form fields):
        attributes are placed in canonical order (CN, OU, O, L, ST, C, DC); the values of a
        repeated OU or DC keep their given order, which is ASN.1 order (``OU=IT``, ``OU=PKI``
        gives ``CN=..,OU=PKI,OU=IT,..``). Blank values are left out; any other type given
        twice is refused."""
        values: dict[str, list[str]] = {}
        for raw_type in _seen_types or ():
            attr = _canonical_type(raw_type)
            if attr in values and attr not in REPEATABLE:
                raise InputError(_twice(attr), field="dn")
            values.setdefault(attr, [])
        given: set[str] = set()
        for raw_type, value in pairs:
            attr = _canonical_type(raw_type)
            if not isinstance(value, str):
                raise TypeError(f"DN value for {attr} must be a str, not {type(value).__name__}")
            if not value.strip():
                continue
            if attr in given and attr not in REPEATABLE:
                raise InputError(_twice(attr), field="dn")
            given.add(attr)
            values.setdefault(attr, []).append(value.strip())
        return cls(tuple((t, v) for t in CANONICAL_ORDER for v in reversed(values.get(t, []))))

    # -- views -------------------------------------------------------------------------------

    @property
    def fields(self) -> dict[str, str]:
        """``{short type: value}`` in DN order, e.g. ``{"CN": "www.example.com", "C": "US"}``;
        a repeated OU or DC shows its values joined by ``", "`` in ASN.1 order (use
        :meth:`values` or :attr:`multi_fields` for the values themselves)."""
        return {t: ", ".join(v) for t, v in self.multi_fields.items()}

    @property
    def multi_fields(self) -> dict[str, list[str]]:
        """``{short type: [values in ASN.1 order]}`` in DN order of first appearance."""
        out: dict[str, list[str]] = {}
        for t, v in self.attrs:
            out.setdefault(t, []).insert(0, v)
        return out

    def values(self, attr_type: str) -> list[str]:
        """Every value of ``attr_type`` in ASN.1 order (outermost first); [] when absent."""
        return self.multi_fields.get(_canonical_type(attr_type), [])

    def get(self, attr_type: str) -> str | None:
        """The value of a single-valued ``attr_type`` (any accepted spelling; for OU and DC the
        most specific one), or ``None`` when absent."""
        attr = _canonical_type(attr_type)
        return next((v for t, v in self.attrs if t == attr), None)

    @property
    def common_name(self) -> str:
        """The CN (always present in a valid DN)."""
        return self.fields["CN"]

    def to_rfc4514(self) -> str:
        """The RFC 4514 string, e.g. ``CN=Smith\\, John,O=Example,C=US``.

        Non-ASCII characters are written as raw UTF-8; :func:`parse_dn` reads the result back to
        an equal DN.
        """
        return ",".join(f"{t}={_escape_value(v)}" for t, v in self.attrs)

    def __str__(self) -> str:
        return self.to_rfc4514()

    # -- editing -----------------------------------------------------------------------------

    def with_field(self, attr_type: str, value: str | None) -> DistinguishedName:
        """A copy with ``attr_type`` set to ``value`` (stripped); blank or ``None`` removes it.

        An existing attribute keeps its position. A new one goes where canonical order puts it
        relative to the attributes already present, following the DN's direction: a DN written
        ``C=..,O=..,CN=..`` gets a new OU between O and CN.
        """
        return self.with_values(attr_type, [] if value is None else [value])

    def with_values(self, attr_type: str, values: Sequence[str]) -> DistinguishedName:
        """A copy with every value of ``attr_type`` replaced by ``values`` (ASN.1 order,
        outermost first; blanks dropped; several only for OU and DC).

        The values stay where the attribute was (a block at its first position); a new
        attribute goes where canonical order puts it relative to the attributes already
        present, following the DN's direction: a DN written ``C=..,O=..,CN=..`` gets a new OU
        between O and CN.
        """
        attr = _canonical_type(attr_type)
        cleaned = [v.strip() for v in values if v is not None and v.strip()]
        if len(cleaned) > 1 and attr not in REPEATABLE:
            raise InputError(_twice(attr), field="dn")
        present = [t for t, _ in self.attrs]
        ranks = [_RANK[t] for t in present]
        # Attributes in descending canonical rank (at least two kinds): the DN runs C -> CN.
        reverse = (len(set(ranks)) >= 2
                   and all(a >= b for a, b in zip(ranks, ranks[1:], strict=False)))
        block = [(attr, v) for v in (cleaned if reverse else reversed(cleaned))]
        if attr in present:
            index = present.index(attr)
        else:
            mine = _RANK[attr]
            index = len(present)
            for i, rank in enumerate(ranks):
                if (rank < mine) if reverse else (rank > mine):
                    index = i
                    break
        rest = [p for p in self.attrs if p[0] != attr]
        before = sum(1 for t in present[:index] if t != attr)
        return DistinguishedName(tuple(rest[:before] + block + rest[before:]))


# -- parsing ---------------------------------------------------------------------------------


def parse_dn(text: str) -> DistinguishedName:
    """Parse an RFC 4514 DN string such as ``CN=www.example.com, O=Example\\, Inc., C=US``.

    Leniencies (for what admins type): attribute types are case-insensitive and may be long names
    (``commonName``) or OIDs; unescaped whitespace around types, around ``=`` and at either end of
    a value is ignored. Strictness: multi-valued RDNs (``+``), ``;`` separators, ``#hex`` values
    and an unescaped ``=`` inside a value are refused, because each usually means a typo that
    would otherwise produce a wrong subject. The first problem found is reported; nothing is
    half-parsed.
    """
    if text is None or not text.strip():
        raise InputError("The DN is empty; CN is required.", field="dn")
    pairs: list[tuple[str, str]] = []
    for number, (start, component) in enumerate(_split_components(text), start=1):
        pairs.append(_parse_component(number, start, component))
    return DistinguishedName(tuple(pairs))


def _split_components(text: str) -> list[tuple[int, str]]:
    """Split at unescaped commas: ``[(offset of component, component text), ...]``."""
    components: list[tuple[int, str]] = []
    start = i = 0
    while i < len(text):
        if text[i] == "\\":
            # Skip the escaped character; whether the escape is valid is checked later.
            i += 2
            continue
        if text[i] == ",":
            components.append((start, text[start:i]))
            start = i + 1
        i += 1
    components.append((start, text[start:]))
    return components


def _find_unescaped(text: str, char: str) -> int:
    """Index of the first unescaped ``char`` in ``text``, or -1."""
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == char:
            return i
        i += 1
    return -1


def _parse_component(number: int, start: int, component: str) -> tuple[str, str]:
    """Parse one ``TYPE=value`` component; ``start`` is its offset in the whole string."""
    shown = component.strip()
    lead = len(component) - len(component.lstrip())
    where = f"DN component {number} (at character {start + lead + 1})"
    if not shown:
        raise InputError(f"{where} is empty; remove the extra ','.", field="dn")
    eq = _find_unescaped(component, "=")
    type_text = component[:eq].strip() if eq >= 0 else ""
    if eq < 0 or not _TYPE_SYNTAX.fullmatch(type_text):
        raise InputError(
            f"{where}: '{shown}' is not TYPE=value; write each attribute as TYPE=value, "
            "separated by commas.",
            field="dn",
        )
    attr = _canonical_type(type_text)
    value = _decode_value(attr, component[eq + 1 :], start + eq + 1)
    return attr, value


def _decode_value(attr: str, raw: str, offset: int) -> str:
    """Unescape one RFC 4514 value; ``offset`` locates ``raw`` in the whole string."""

    def at(i: int) -> str:
        return f"at character {offset + i + 1}"

    body = raw.lstrip()
    if body.startswith("#"):
        raise InputError(
            f"The value of {attr} starts with '#' ({at(len(raw) - len(body))}), the hex-encoded "
            "form, which is not supported; write the text, or escape a literal '#' as '\\#'.",
            field="dn",
        )
    # (character, escaped?) pairs: only unescaped whitespace at the ends is dropped.
    pieces: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt and nxt in _ESCAPABLE:
                pieces.append((nxt, True))
                i += 2
            elif nxt and nxt in _HEX:
                i = _decode_hex_run(attr, raw, i, pieces, at)
            elif not nxt:
                raise InputError(
                    f"The value of {attr} ends with a lone '\\' ({at(i)}); write a literal "
                    "backslash as '\\\\'.",
                    field="dn",
                )
            else:
                raise InputError(
                    f"The value of {attr} has the invalid escape '\\{nxt}' ({at(i)}); only "
                    "special characters, a space or two hex digits may follow '\\'.",
                    field="dn",
                )
            continue
        if ch in '"+;<>=':
            raise InputError(_unescaped_message(attr, raw, i, at(i)), field="dn")
        pieces.append((ch, False))
        i += 1
    while pieces and not pieces[0][1] and pieces[0][0].isspace():
        pieces.pop(0)
    while pieces and not pieces[-1][1] and pieces[-1][0].isspace():
        pieces.pop()
    return "".join(ch for ch, _ in pieces)


def _decode_hex_run(
    attr: str, raw: str, i: int, pieces: list[tuple[str, bool]], at: Callable[[int], str]
) -> int:
    """Decode consecutive ``\\XX`` escapes starting at ``i`` as UTF-8; return the next index.

    They must be decoded together: ``\\C3\\A9`` is one character (é), not two.
    """
    start = i
    data = bytearray()
    while i + 1 < len(raw) and raw[i] == "\\" and raw[i + 1] in _HEX:
        if i + 2 >= len(raw) or raw[i + 2] not in _HEX:
            raise InputError(
                f"The value of {attr} has the invalid escape '{raw[i:i + 3]}' ({at(i)}); a hex "
                "escape needs two hex digits, e.g. '\\2C'.",
                field="dn",
            )
        data.append(int(raw[i + 1 : i + 3], 16))
        i += 3
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"The value of {attr} has hex escapes that are not valid UTF-8 "
            f"('{raw[start:i]}', {at(start)}).",
            field="dn",
        ) from None
    pieces.extend((ch, True) for ch in text)
    return i


def _unescaped_message(attr: str, raw: str, i: int, where: str) -> str:
    ch = raw[i]
    if ch == "+":
        return (
            f"The value of {attr} contains an unescaped '+' ({where}); multi-valued RDNs are "
            "not supported, so escape a literal plus as '\\+'."
        )
    if ch == "=":
        # 'ST=Ohio C=US': most likely a missing comma before the word in front of the '='.
        words = raw[:i].split()
        hint = f"a ',' may be missing before '{words[-1]}'" if len(words) > 1 else "a ',' may be missing"
        return (
            f"The value of {attr} contains an unescaped '=' ({where}); {hint}, "
            "or escape a literal '=' as '\\='."
        )
    if ch == ";":
        return (
            f"The value of {attr} contains an unescaped ';' ({where}); separate attributes "
            "with ',' and escape a literal ';' as '\\;'."
        )
    return f"The value of {attr} contains an unescaped '{ch}' ({where}); escape it as '\\{ch}'."


# -- output ----------------------------------------------------------------------------------


def _escape_value(value: str) -> str:
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in _ALWAYS_ESCAPE or (i == 0 and ch == "#"):
            out.append("\\" + ch)
        elif ch == " " and i in (0, last):
            out.append("\\ ")
        elif unicodedata.category(ch) == "Cc" or ((i in (0, last)) and ch.isspace()):
            # Control characters are unreadable raw; other whitespace at the ends would be
            # stripped by parse_dn unless escaped, and only hex can escape it.
            out.append("".join(f"\\{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def to_asn1_name(dn: DistinguishedName) -> x509.Name:
    """The DN as an ASN.1 ``Name``: one attribute per RDN, in ``RDNSequence`` order (C first).

    Built by hand rather than with ``Name.build``, which reorders attributes and may pick other
    string types: values are UTF8String, except C which RFC 5280 requires as PrintableString
    and DC, an IA5String (RFC 4519).
    """
    from asn1crypto import x509

    rdns = []
    for attr, value in reversed(dn.attrs):
        if attr == "DC":
            rdns.append(x509.RelativeDistinguishedName(
                [x509.NameTypeAndValue({"type": _ASN1_TYPES[attr], "value": value})]))
            continue
        if attr == "C":
            encoded = x509.DirectoryString(name="printable_string", value=value)
        else:
            encoded = x509.DirectoryString(name="utf8_string", value=value)
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameTypeAndValue({"type": _ASN1_TYPES[attr], "value": encoded})]
            )
        )
    return x509.Name(name="", value=x509.RDNSequence(rdns))


# -- countries -------------------------------------------------------------------------------


def _sort_key(name: str) -> str:
    # 'Åland Islands' belongs among the As, not after 'Zimbabwe'.
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def countries() -> list[tuple[str, str]]:
    """``[(alpha-2 code, country name), ...]`` sorted by name, for a drop-down."""
    return sorted(
        ((code, country.name) for code, country in iso3166.countries_by_alpha2.items()),
        key=lambda item: _sort_key(item[1]),
    )


def country_name(code: str) -> str:
    """The ISO 3166-1 name of an alpha-2 code (case-insensitive); unknown codes raise."""
    return iso3166.countries_by_alpha2[_check_country(code)].name


# -- validation ------------------------------------------------------------------------------


def _canonical_type(attr_type: str) -> str:
    # ASCII only, for the same reason as the country code: 'ſt'.upper() is 'ST'.
    key = attr_type.strip().upper() if isinstance(attr_type, str) and attr_type.isascii() else ""
    if key not in _TYPE_ALIASES:
        raise InputError(_UNKNOWN_TYPE.format(str(attr_type).strip()), field="dn")
    return _TYPE_ALIASES[key]


def _normalise_pair(attr_type: str, value: str) -> tuple[str, str]:
    attr = _canonical_type(attr_type)
    if not isinstance(value, str):
        raise TypeError(f"DN value for {attr} must be a str, not {type(value).__name__}")
    if attr == "C" and value.isascii():
        # ASCII only: 'ß'.upper() is 'SS', which would silently become South Sudan.
        value = value.upper()
    return attr, value


def _twice(attr: str) -> str:
    return (f"The DN has {attr} more than once; only OU and DC may repeat, every other "
            "attribute may appear only once.")


def _check_country(code: str) -> str:
    upper = code.strip().upper() if code.isascii() else code
    if upper not in iso3166.countries_by_alpha2:
        hint = "; the United Kingdom is GB" if upper == "UK" else ""
        raise InputError(f"C '{code}' is not an ISO 3166-1 country code{hint}.", field="C")
    return upper


def _validate(attrs: tuple[tuple[str, str], ...]) -> None:
    seen: set[str] = set()
    for attr, value in attrs:
        if attr in seen and attr not in REPEATABLE:
            raise InputError(_twice(attr), field="dn")
        seen.add(attr)
        if not value:
            raise InputError(f"{attr} is empty.", field=attr)
        for ch in value:
            category = unicodedata.category(ch)
            if category == "Cc":
                raise InputError(
                    f"{attr} contains the control character U+{ord(ch):04X}; remove it.",
                    field=attr,
                )
            if category == "Cs":
                # A lone surrogate cannot be encoded as UTF-8 at all.
                raise InputError(
                    f"{attr} contains the invalid character U+{ord(ch):04X}; remove it.",
                    field=attr,
                )
        if attr == "DC" and not (value.isascii() and value.isprintable()):
            raise InputError(
                f"DC '{value}' is not ASCII; a domain component is an IA5String: write an "
                "internationalised label in its IDNA form (xn--...).",
                field="DC",
            )
        if len(value) > MAX_LENGTH[attr] and attr != "C":
            raise InputError(
                f"{attr} is {len(value)} characters; the maximum is {MAX_LENGTH[attr]}.",
                field=attr,
            )
        if attr == "C" and value != _check_country(value):
            # _check_country strips; a C with spaces around it is not a country code.
            raise InputError(f"C '{value}' is not an ISO 3166-1 country code.", field="C")
    if "CN" not in seen:
        raise InputError("CN is required.", field="CN")
