"""Distinguished Names: parsing (RFC 4514), validation (RFC 5280 bounds) and ASN.1 encoding.

Pure: no I/O. The attribute types of :data:`ATTRIBUTE_TYPES` are accepted (CN, O, OU, L, ST, C,
DC, UID, serialNumber, emailAddress, title, givenName, SN, pseudonym, street, postalCode,
organizationIdentifier, businessCategory, the EV jurisdiction attributes) and any dotted OID, each
in its RFC 5280 / CA/B Forum string type and within its upper bound. OU and DC may repeat
(``OU=PKI,OU=IT``, ``DC=example,DC=com``): each value is its own RDN, kept in the order given; the
others appear at most once. The string view also takes multi-valued RDNs (``CN=a+UID=b``). A :class:`DistinguishedName` keeps its
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

from tui_csr.core.der import oid_der as _oid_der
from tui_csr.core.der import tlv as _tlv
from tui_csr.errors import InputError

if TYPE_CHECKING:  # asn1crypto loads in to_asn1_name: listing requests never needs it
    from asn1crypto import x509

#: The fields view's attributes, in canonical (RFC 4514, most specific first) order.
CANONICAL_ORDER: tuple[str, ...] = ("CN", "OU", "O", "L", "ST", "C", "DC")

#: Every attribute type accepted: (short name, other spellings, OID, upper bound in characters,
#: ASN.1 string type), in the canonical order :meth:`DistinguishedName.from_pairs` places them
#: (most specific first). Bounds are RFC 5280 Appendix A's (ub-common-name, ub-name,
#: ub-serial-number ...) or X.520's; DC (RFC 4519, unbounded) is held to one DNS label, UID to
#: 256. C, jurisdictionC and serialNumber are PrintableString, DC and emailAddress IA5String
#: (RFC 5280, the CA/B Forum EV guidelines), the rest UTF8String.
ATTRIBUTE_TYPES: tuple[tuple[str, tuple[str, ...], str, int, str], ...] = (
    ("CN", ("COMMONNAME",), "2.5.4.3", 64, "utf8"),
    ("SN", ("SURNAME",), "2.5.4.4", 32768, "utf8"),
    ("givenName", ("GN",), "2.5.4.42", 32768, "utf8"),
    ("pseudonym", (), "2.5.4.65", 128, "utf8"),
    ("title", (), "2.5.4.12", 64, "utf8"),
    ("UID", ("USERID",), "0.9.2342.19200300.100.1.1", 256, "utf8"),
    ("serialNumber", (), "2.5.4.5", 64, "printable"),
    ("emailAddress", (), "1.2.840.113549.1.9.1", 255, "ia5"),
    ("OU", ("ORGANIZATIONALUNITNAME",), "2.5.4.11", 64, "utf8"),
    ("O", ("ORGANIZATIONNAME",), "2.5.4.10", 64, "utf8"),
    ("organizationIdentifier", (), "2.5.4.97", 128, "utf8"),
    ("businessCategory", (), "2.5.4.15", 128, "utf8"),
    ("street", ("STREETADDRESS",), "2.5.4.9", 128, "utf8"),
    ("postalCode", (), "2.5.4.17", 40, "utf8"),
    ("L", ("LOCALITYNAME",), "2.5.4.7", 128, "utf8"),
    ("ST", ("STATEORPROVINCENAME",), "2.5.4.8", 128, "utf8"),
    ("C", ("COUNTRYNAME",), "2.5.4.6", 2, "printable"),
    ("jurisdictionL", ("JURISDICTIONLOCALITYNAME",), "1.3.6.1.4.1.311.60.2.1.1", 128, "utf8"),
    ("jurisdictionST", ("JURISDICTIONSTATEORPROVINCENAME",), "1.3.6.1.4.1.311.60.2.1.2", 128,
     "utf8"),
    ("jurisdictionC", ("JURISDICTIONCOUNTRYNAME",), "1.3.6.1.4.1.311.60.2.1.3", 2,
     "printable"),
    ("DC", ("DOMAINCOMPONENT",), "0.9.2342.19200300.100.1.25", 63, "ia5"),
)

#: Types that may appear more than once, each value its own RDN.
REPEATABLE: frozenset[str] = frozenset({"OU", "DC"})

#: Upper bounds in characters by short name; a type given as a dotted OID is held to
#: :data:`OID_TYPE_MAX`.
MAX_LENGTH: dict[str, int] = {t[0]: t[3] for t in ATTRIBUTE_TYPES}
OID_TYPE_MAX = 256

#: Short name -> OID and ASN.1 string type (``utf8``, ``printable``, ``ia5``).
TYPE_OIDS: dict[str, str] = {t[0]: t[2] for t in ATTRIBUTE_TYPES}
STRING_TYPES: dict[str, str] = {t[0]: t[4] for t in ATTRIBUTE_TYPES}

_RANK = {t[0]: i for i, t in enumerate(ATTRIBUTE_TYPES)}
_OID_RANK = _RANK["O"] + 0.5  # a type given as an OID sits between O and the rest

# Every spelling we accept for a type, upper-cased: the short name, the long names, the OID.
_TYPE_ALIASES: dict[str, str] = {}
for _name, _others, _oid, _bound, _kind in ATTRIBUTE_TYPES:
    for _spelling in (_name, *_others, _oid):
        _TYPE_ALIASES[_spelling.upper()] = _name
del _name, _others, _oid, _bound, _kind, _spelling

_OID_TYPE = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
# PrintableString's alphabet (X.680 41.4).
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")

# RFC 4514 attribute type syntax: a keystring or a numeric OID.
_TYPE_SYNTAX = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")

# Characters that may follow a backslash literally. '=' is included because a value that looks
# like a missing comma (``ST=Ohio C=US``) is refused unescaped (see _decode_value).
_ESCAPABLE = frozenset(',+"\\<>;=# ')
_HEX = frozenset("0123456789abcdefABCDEF")
# Escaped wherever they occur in to_rfc4514 output.
_ALWAYS_ESCAPE = frozenset(',+"\\<>;=')

_UNKNOWN_TYPE = ("Unknown attribute type '{}' in the DN; use CN, O, OU, L, ST, C, DC, UID, "
                 "serialNumber, emailAddress, title, givenName, SN, pseudonym, street, "
                 "postalCode, organizationIdentifier, businessCategory, jurisdictionC, "
                 "jurisdictionST, jurisdictionL or a dotted OID.")


@dataclass(frozen=True)
class DistinguishedName:
    """A validated subject DN: ordered ``(type, value)`` pairs in RFC 4514 string order.

    Types are normalised to their short names (``commonName`` becomes ``CN``, a known OID its
    name) and country codes to upper case, so two DNs that mean the same compare equal.
    ``plus[i]`` is True when ``attrs[i]`` shares the RDN of ``attrs[i - 1]`` (a multi-valued
    RDN, ``CN=a+UID=b``); ``()`` when every attribute is its own RDN.
    """

    attrs: tuple[tuple[str, str], ...]
    plus: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        normalised = tuple(_normalise_pair(t, v) for t, v in self.attrs)
        plus = tuple(bool(p) for p in self.plus[:len(normalised)])
        plus = (False, *plus[1:]) if plus else ()
        plus = plus + (False,) * (len(normalised) - len(plus)) if any(plus) else ()
        _validate(normalised, plus)
        # Frozen dataclass: the normalised form replaces what the caller passed.
        object.__setattr__(self, "attrs", normalised)
        object.__setattr__(self, "plus", plus)

    @property
    def rdns(self) -> list[list[tuple[str, str]]]:
        """The RDNs in string order, each a list of its (type, value) pairs."""
        out: list[list[tuple[str, str]]] = []
        for i, pair in enumerate(self.attrs):
            if out and self.plus and self.plus[i]:
                out[-1].append(pair)
            else:
                out.append([pair])
        return out

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
        order = sorted(values, key=_rank)  # stable: OID types keep their given order
        return cls(tuple((t, v) for t in order for v in reversed(values.get(t, []))))

    def with_defaults(self, defaults: Sequence[tuple[str, str]]) -> DistinguishedName:
        """This DN plus each ``(type, value)`` default whose type it lacks (a profile's DN
        defaults for a subject given as one string), each in its own RDN where the canonical
        order puts it (before the first attribute that comes after it: CN, OU, O, L, ST, C,
        DC); the DN's own attributes keep their order and multi-valued RDNs."""
        attrs, plus = list(self.attrs), list(self.plus or (False,) * len(self.attrs))
        present = {t for t, _ in attrs}
        for raw_type, value in defaults:
            attr = _canonical_type(raw_type)
            if attr in present or not value.strip():
                continue
            # The first RDN (not a continuation of a multi-valued one) that ranks later.
            at = next((i for i, (t, _v) in enumerate(attrs)
                       if _rank(t) > _rank(attr) and not plus[i]), len(attrs))
            attrs.insert(at, (attr, value.strip()))
            plus.insert(at, False)
            present.add(attr)
        if len(attrs) == len(self.attrs):
            return self
        return DistinguishedName(tuple(attrs), tuple(plus) if any(plus) else ())

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
        return ",".join("+".join(f"{t}={_escape_value(v)}" for t, v in rdn)
                        for rdn in self.rdns)

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
        ranks = [_rank(t) for t in present]
        # Attributes in descending canonical rank (at least two kinds): the DN runs C -> CN.
        reverse = (len(set(ranks)) >= 2
                   and all(a >= b for a, b in zip(ranks, ranks[1:], strict=False)))
        block = [(attr, v) for v in (cleaned if reverse else reversed(cleaned))]
        if attr in present:
            index = present.index(attr)
        else:
            mine = _rank(attr)
            index = len(present)
            for i, rank in enumerate(ranks):
                if (rank < mine) if reverse else (rank > mine):
                    index = i
                    break
        # RDN ids keep multi-valued RDNs together; the new values are RDNs of their own.
        ids, n = [], -1
        for i in range(len(self.attrs)):
            n += 0 if (self.plus and self.plus[i]) else 1
            ids.append(n)
        rest = [(p, g) for p, g in zip(self.attrs, ids, strict=True) if p[0] != attr]
        before = sum(1 for t in present[:index] if t != attr)
        new = [(p, -1 - k) for k, p in enumerate(block)]
        merged = rest[:before] + new + rest[before:]
        plus = tuple(i > 0 and g >= 0 and merged[i - 1][1] == g
                     for i, (_p, g) in enumerate(merged))
        return DistinguishedName(tuple(p for p, _g in merged), plus)


# -- parsing ---------------------------------------------------------------------------------


def parse_dn(text: str) -> DistinguishedName:
    """Parse an RFC 4514 DN string such as ``CN=www.example.com, O=Example\\, Inc., C=US``.

    Leniencies (for what admins type): attribute types are case-insensitive and may be long names
    (``commonName``) or OIDs; unescaped whitespace around types, around ``=`` and at either end of
    a value is ignored; ``+`` joins attributes into one multi-valued RDN (``CN=a+UID=b``) and an
    unescaped ``=`` inside a value is taken literally (RFC 4514 allows it). Strictness: ``;``
    separators, ``#hex`` values and a value containing `` TYPE=`` for a known type (``ST=Ohio
    C=US``: a missing comma) are refused, because each usually means a typo that would
    otherwise produce a wrong subject. The first problem found is reported; nothing is
    half-parsed.
    """
    if text is None or not text.strip():
        raise InputError("The DN is empty; CN is required.", field="dn")
    pairs: list[tuple[str, str]] = []
    plus: list[bool] = []
    for number, (start, component) in enumerate(_split_components(text), start=1):
        for k, (offset, part) in enumerate(_split_components(component, "+")):
            pairs.append(_parse_component(number, start + offset, part, after_plus=k > 0))
            plus.append(k > 0)
    return DistinguishedName(tuple(pairs), tuple(plus))


def _split_components(text: str, sep: str = ",") -> list[tuple[int, str]]:
    """Split at unescaped ``sep`` (commas; ``+`` within an RDN): ``[(offset, text), ...]``."""
    components: list[tuple[int, str]] = []
    start = i = 0
    while i < len(text):
        if text[i] == "\\":
            # Skip the escaped character; whether the escape is valid is checked later.
            i += 2
            continue
        if text[i] == sep:
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


def _parse_component(number: int, start: int, component: str, *,
                     after_plus: bool = False) -> tuple[str, str]:
    """Parse one ``TYPE=value`` component; ``start`` is its offset in the whole string."""
    shown = component.strip()
    lead = len(component) - len(component.lstrip())
    where = f"DN component {number} (at character {start + lead + 1})"
    if not shown:
        extra = "'+'" if after_plus else "','"
        raise InputError(f"{where} is empty; remove the extra {extra}.", field="dn")
    eq = _find_unescaped(component, "=")
    type_text = component[:eq].strip() if eq >= 0 else ""
    if eq < 0 or not _TYPE_SYNTAX.fullmatch(type_text):
        if after_plus:
            raise InputError(
                f"{where}: '{shown}' after an unescaped '+' is not TYPE=value; '+' joins "
                "attributes into one RDN (CN=a+UID=b), so escape a literal plus as '\\+'.",
                field="dn")
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
        if ch == "=" and not _missing_comma(raw[:i]):
            pieces.append((ch, False))  # RFC 4514 allows '=' in a value
            i += 1
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


def _missing_comma(before: str) -> bool:
    """True when the text before an ``=`` in a value ends in `` TYPE`` for a type we know
    (``Ohio C`` in ``ST=Ohio C=US``): a comma was most likely left out."""
    words = before.split()
    if len(words) < 2:
        return False
    word = words[-1].upper()
    return word in _TYPE_ALIASES or bool(_OID_TYPE.fullmatch(word))


def _unescaped_message(attr: str, raw: str, i: int, where: str) -> str:
    ch = raw[i]
    if ch == "+":
        return (
            f"The value of {attr} contains an unescaped '+' ({where}); '+' joins attributes "
            "into one RDN (CN=a+UID=b), so escape a literal plus as '\\+'."
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




_STRING_TAGS = {"utf8": 0x0C, "printable": 0x13, "ia5": 0x16}


def name_der(dn: DistinguishedName) -> bytes:
    """DER of the subject ``Name``: the RDNs in ``RDNSequence`` order (C first), each a SET of
    its attributes in DER order; each value in its type's string type (see
    :data:`ATTRIBUTE_TYPES`; a type given as a dotted OID is UTF8String).

    Written by hand: asn1crypto re-encodes values on dump and ``Name.build`` reorders
    attributes and picks other string types."""
    def attribute(attr: str, value: str) -> bytes:
        kind = STRING_TYPES.get(attr, "utf8")
        data = value.encode("utf-8" if kind == "utf8" else "ascii")
        return _tlv(0x30, _oid_der(TYPE_OIDS.get(attr, attr)) + _tlv(_STRING_TAGS[kind], data))

    rdns = b"".join(_tlv(0x31, b"".join(sorted(attribute(a, v) for a, v in rdn)))
                    for rdn in reversed(dn.rdns))
    return _tlv(0x30, rdns)


def to_asn1_name(dn: DistinguishedName) -> x509.Name:
    """The DN as an asn1crypto ``Name`` over :func:`name_der`'s bytes (``dump()`` gives them
    back unchanged)."""
    from asn1crypto import x509

    return x509.Name.load(name_der(dn))


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
    if key in _TYPE_ALIASES:
        return _TYPE_ALIASES[key]
    if _OID_TYPE.fullmatch(key) and len(key) <= 128:
        return key  # an attribute type we have no name for: kept as its OID, UTF8String
    raise InputError(_UNKNOWN_TYPE.format(str(attr_type).strip()), field="dn")


def _rank(attr: str) -> float:
    return _RANK.get(attr, _OID_RANK)


def canonical_type(attr_type: str) -> str:
    """The short name of an attribute type in any accepted spelling (``organizationName`` ->
    ``O``, ``2.5.4.97`` -> ``organizationIdentifier``); an unknown dotted OID stays itself.
    InputError for anything else."""
    return _canonical_type(attr_type)


def _normalise_pair(attr_type: str, value: str) -> tuple[str, str]:
    attr = _canonical_type(attr_type)
    if not isinstance(value, str):
        raise TypeError(f"DN value for {attr} must be a str, not {type(value).__name__}")
    if attr in ("C", "jurisdictionC") and value.isascii():
        # ASCII only: 'ß'.upper() is 'SS', which would silently become South Sudan.
        value = value.upper()
    return attr, value


def _twice(attr: str) -> str:
    return (f"The DN has {attr} more than once; only OU and DC may repeat, every other "
            "attribute may appear only once.")


def _check_country(code: str, attr: str = "C") -> str:
    upper = code.strip().upper() if code.isascii() else code
    if upper not in iso3166.countries_by_alpha2:
        hint = "; the United Kingdom is GB" if upper == "UK" else ""
        raise InputError(f"{attr} '{code}' is not an ISO 3166-1 country code{hint}.",
                         field="C" if attr == "C" else "dn")
    return upper


def _validate(attrs: tuple[tuple[str, str], ...], plus: tuple[bool, ...] = ()) -> None:
    seen: set[str] = set()
    rdn: set[str] = set()
    for i, (attr, value) in enumerate(attrs):
        if not (plus and plus[i]):
            rdn = set()
        if attr in rdn:
            raise InputError(f"One RDN has {attr} twice; put the values in RDNs of their own "
                             "(separated by ',').", field="dn")
        rdn.add(attr)
        if attr in seen and attr not in REPEATABLE:
            raise InputError(_twice(attr), field="dn")
        seen.add(attr)
        if not value:
            raise InputError(f"{attr} is empty.", field=attr if attr in CANONICAL_ORDER else "dn")
        for ch in value:
            category = unicodedata.category(ch)
            if category == "Cc":
                raise InputError(
                    f"{attr} contains the control character U+{ord(ch):04X}; remove it.",
                    field=attr if attr in CANONICAL_ORDER else "dn",
                )
            if category == "Cs":
                # A lone surrogate cannot be encoded as UTF-8 at all.
                raise InputError(
                    f"{attr} contains the invalid character U+{ord(ch):04X}; remove it.",
                    field=attr if attr in CANONICAL_ORDER else "dn",
                )
        if attr == "DC" and not (value.isascii() and value.isprintable()):
            raise InputError(
                f"DC '{value}' is not ASCII; a domain component is an IA5String: write an "
                "internationalised label in its IDNA form (xn--...).",
                field="DC",
            )
        kind = STRING_TYPES.get(attr, "utf8")
        if attr == "emailAddress" and not (value.isascii() and value.isprintable()):
            raise InputError(f"emailAddress '{value}' is not ASCII; it is an IA5String (use "
                             "the domain's IDNA form, xn--...).", field="dn")
        if kind == "printable" and attr not in ("C", "jurisdictionC"):
            bad = next((ch for ch in value if ch not in _PRINTABLE), None)
            if bad is not None:
                raise InputError(f"{attr} contains '{bad}', which a PrintableString cannot "
                                 "hold (letters, digits, space and '()+,-./:=? only).",
                                 field="dn")
        limit = MAX_LENGTH.get(attr, OID_TYPE_MAX)
        if len(value) > limit and attr not in ("C", "jurisdictionC"):
            raise InputError(
                f"{attr} is {len(value)} characters; the maximum is {limit}.",
                field=attr if attr in CANONICAL_ORDER else "dn",
            )
        if attr in ("C", "jurisdictionC") and value != _check_country(value, attr):
            # _check_country strips; a C with spaces around it is not a country code.
            raise InputError(f"{attr} '{value}' is not an ISO 3166-1 country code.",
                             field="C" if attr == "C" else "dn")
    if "CN" not in seen:
        raise InputError("CN is required.", field="CN")
