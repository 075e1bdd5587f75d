"""Subject Alternative Names: parsing, normalisation and ASN.1 ``GeneralNames``.

Pure: no I/O. Four kinds are supported: email (rfc822Name), dns (dNSName), ip (iPAddress) and
uri (uniformResourceIdentifier). The three text kinds are IA5String in the certificate, so every
normalised value is pure ASCII: internationalised domains become A-labels (``xn--...``) and
anything that cannot be made ASCII without guessing (a non-ASCII email local part or URI) is
refused with a sentence saying why.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna

from tui_csr.errors import InputError

if TYPE_CHECKING:  # asn1crypto loads in to_general_names: listing requests never needs it
    from asn1crypto import x509


class SanKind(enum.StrEnum):
    """The kind of a SAN entry (the GeneralName alternative)."""

    EMAIL = "email"
    DNS = "dns"
    IP = "ip"
    URI = "uri"

    @property
    def label(self) -> str:
        """Human name used at the start of messages: ``Email``, ``DNS name`` ..."""
        return _LABELS[self]


_LABELS = {
    SanKind.EMAIL: "Email",
    SanKind.DNS: "DNS name",
    SanKind.IP: "IP address",
    SanKind.URI: "URI",
}

# What users and other tools call the kinds (OpenSSL's "DNS:", "IP:", "email:", "URI:" ...).
_KIND_ALIASES: dict[str, SanKind] = {
    "email": SanKind.EMAIL, "rfc822": SanKind.EMAIL, "rfc822name": SanKind.EMAIL,
    "mail": SanKind.EMAIL,
    "dns": SanKind.DNS, "dnsname": SanKind.DNS,
    "ip": SanKind.IP, "ipaddress": SanKind.IP,
    "uri": SanKind.URI, "url": SanKind.URI, "uniformresourceidentifier": SanKind.URI,
}

# RFC 3986 unreserved, reserved and '%'; anything else in a URI has to be percent-encoded.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


@dataclass(frozen=True)
class SanEntry:
    """One normalised SAN: ``value`` is ASCII and in the form that goes into the CSR."""

    kind: SanKind
    value: str

    def as_pair(self) -> tuple[str, str]:
        """``(kind, value)`` as stored in a request document."""
        return (self.kind.value, self.value)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"


def parse_kind(kind: str | SanKind) -> SanKind:
    """The :class:`SanKind` named by ``kind`` (case-insensitive; ``DNS``, ``IP``, ``rfc822`` ...)."""
    if isinstance(kind, SanKind):
        return kind
    key = str(kind).strip().lower().replace("_", "").replace(" ", "")
    if key not in _KIND_ALIASES:
        raise InputError(
            f"SAN type '{kind}' is not known; use email, dns, ip or uri.", field="san"
        )
    return _KIND_ALIASES[key]


def parse_san(kind: str | SanKind, raw: str) -> SanEntry:
    """Validate and normalise one SAN entry; surrounding whitespace is ignored.

    ``InputError.field`` is the kind (``"email"``, ``"dns"``, ``"ip"`` or ``"uri"``).
    """
    san_kind = parse_kind(kind)
    text = (raw or "").strip()
    if not text:
        raise InputError(f"{san_kind.label} entry is empty.", field=san_kind.value)
    value = _PARSERS[san_kind](text)
    # Belt and braces: whatever the parser accepted must fit an IA5String and be printable.
    if not value.isascii() or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InputError(
            f"{san_kind.label} '{text}' cannot be written as plain ASCII.", field=san_kind.value
        )
    return SanEntry(san_kind, value)


# idna's terse reasons, reworded to continue "DNS name 'x' is not valid: ...".
_IDNA_REASONS = {
    "Empty Label": "it has an empty label",
    "Empty domain": "it is empty",
    "Label too long": "a label is longer than 63 characters",
    "Domain too long": "it is longer than 253 characters",
}


def _sentence_part(reason: str) -> str:
    """A library's message made to follow a colon: no final period, lower-case first word."""
    reason = reason.strip().rstrip(".")
    if len(reason) > 1 and reason[0].isupper() and not reason[1].isupper():
        reason = reason[0].lower() + reason[1:]
    return reason


def _parse_email(text: str) -> str:
    # Imported here: email_validator compiles its grammar on import (~20 ms), which commands
    # that never see an email SAN (list, show, --version) should not pay.
    from email_validator import EmailNotValidError, validate_email

    local, at, _domain = text.rpartition("@")
    if at and not local.isascii():
        raise InputError(
            f"Email '{text}' has non-ASCII characters before the '@'; a certificate can only "
            "carry an ASCII local part.",
            field="email",
        )
    try:
        result = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=True,
            # Without strict, email_validator lets a local part exceed RFC 5321's 64 octets.
            strict=True,
        )
    except EmailNotValidError as exc:
        raise InputError(
            f"Email '{text}' is not a valid address: {_sentence_part(str(exc))}.", field="email"
        ) from None
    # Keep the local part exactly as typed (email_validator may drop quotes it considers
    # unnecessary); the domain in its ASCII form, which email_validator lower-cases.
    return f"{local}@{result.ascii_domain}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _parse_dns(text: str) -> str:
    def bad(reason: str) -> InputError:
        return InputError(f"DNS name '{text}' is not valid: {reason}.", field="dns")

    if _is_ip(text):
        raise InputError(
            f"DNS name '{text}' is an IP address; add it as an IP entry instead.", field="dns"
        )
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if "*" in rest:
        raise bad("only a single leading '*.' wildcard is allowed")
    try:
        ascii_name = idna.encode(rest, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        # IDNAError is a UnicodeError; idna may also raise plain ValueError on odd input.
        message = str(exc) or type(exc).__name__
        raise bad(_IDNA_REASONS.get(message, _sentence_part(message))) from None
    if ascii_name.endswith("."):
        raise bad("remove the trailing dot")
    labels = ascii_name.split(".")
    if any(not label for label in labels):
        raise bad("it has an empty label")
    for label in labels:
        if len(label) > 63:
            raise bad(f"the label '{label}' is {len(label)} characters; the maximum is 63")
        if not _LDH_LABEL.fullmatch(label):
            raise bad(f"the label '{label}' may only contain letters, digits and inner hyphens")
    if len(labels) < 2:
        raise bad("it needs at least two labels, e.g. host.example.com")
    if labels[-1].isdigit():
        raise bad("it looks like an IP address; a top-level domain is never all digits")
    full = ("*." if wildcard else "") + ascii_name
    if len(full) > 253:
        raise bad(f"it is {len(full)} characters; the maximum is 253")
    return full


def _parse_ip(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InputError(
            f"IP address '{text}' is not a valid IPv4 or IPv6 address.", field="ip"
        ) from None
    if getattr(address, "scope_id", None):
        # 'fe80::1%eth0': the zone only means something on this machine.
        raise InputError(
            f"IP address '{text}' has a zone ('%...'); a certificate can only carry the address.",
            field="ip",
        )
    return address.compressed


def _parse_uri(text: str) -> str:
    def bad(reason: str) -> InputError:
        return InputError(f"URI '{text}' is not valid: {reason}.", field="uri")

    if not text.isascii():
        raise InputError(
            f"URI '{text}' contains non-ASCII characters; percent-encode them (a certificate "
            "URI is ASCII only).",
            field="uri",
        )
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) == "Cc":
            raise bad(f"it contains a space or control character (U+{ord(ch):04X})")
    if not _URI_CHARS.fullmatch(text):
        wrong = next(ch for ch in text if not _URI_CHARS.fullmatch(ch))
        raise bad(f"the character '{wrong}' must be percent-encoded")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise bad(_sentence_part(str(exc)) or "it cannot be parsed") from None
    if not parts.scheme:
        raise bad("it needs a scheme, e.g. https://")
    if not host:
        raise bad("it needs a host, e.g. https://host.example.com/")
    # The scheme is case-insensitive (RFC 3986 3.1); lower case is its canonical form.
    return parts.scheme.lower() + text[len(parts.scheme) :]


_PARSERS = {
    SanKind.EMAIL: _parse_email,
    SanKind.DNS: _parse_dns,
    SanKind.IP: _parse_ip,
    SanKind.URI: _parse_uri,
}


def _dedup_key(entry: SanEntry) -> tuple[SanKind, str]:
    if entry.kind is SanKind.EMAIL:
        # The local part is case-sensitive (RFC 5321 2.4); the domain is not.
        local, _, domain = entry.value.rpartition("@")
        return entry.kind, f"{local}@{domain.lower()}"
    return entry.kind, entry.value


def validate_sans(
    entries: Iterable[tuple[str, str]] | Iterable[SanEntry],
) -> tuple[SanEntry, ...]:
    """Parse every entry (pairs or :class:`SanEntry`) and refuse duplicates; keeps the order."""
    seen: set[tuple[SanKind, str]] = set()
    result: list[SanEntry] = []
    for item in entries:
        if isinstance(item, SanEntry):
            entry = parse_san(item.kind, item.value)
        else:
            kind, raw = item
            entry = parse_san(kind, raw)
        key = _dedup_key(entry)
        if key in seen:
            raise InputError(
                f"{entry.kind.label} '{entry.value}' is listed twice.", field=entry.kind.value
            )
        seen.add(key)
        result.append(entry)
    return tuple(result)


def to_general_names(
    entries: Iterable[tuple[str, str]] | Iterable[SanEntry],
) -> x509.GeneralNames:
    """The entries (validated again) as an ASN.1 ``GeneralNames`` for the SAN extension.

    Text values are set as raw IA5String bytes: asn1crypto's own setters would re-run IDNA 2003
    on domains and lower-case URI hosts, so the CSR could differ from what the user confirmed.
    """
    from asn1crypto import x509

    names = []
    for entry in validate_sans(entries):
        if entry.kind is SanKind.IP:
            names.append(x509.GeneralName(name="ip_address", value=entry.value))
            continue
        alternative, spec = {
            SanKind.EMAIL: ("rfc822_name", x509.EmailAddress),
            SanKind.DNS: ("dns_name", x509.DNSName),
            SanKind.URI: ("uniform_resource_identifier", x509.URI),
        }[entry.kind]
        names.append(
            x509.GeneralName(name=alternative, value=spec(contents=entry.value.encode("ascii")))
        )
    return x509.GeneralNames(names)
