"""RFC 7512 PKCS#11 URIs, and the ways a user names an existing key pair on the token.

Pure parsing, no PKCS#11 call: ``generate --key`` checks what it was given before the token is
opened. :func:`parse_key_selector` accepts

- a PKCS#11 URI: ``pkcs11:token=demo;object=web;id=%01%02;type=private`` (path attributes
  percent-decoded; ``id`` is raw bytes; ``type`` must be ``private`` or ``public``, which both
  name the pair; a ``pin-value`` is refused: a PIN is never a command-line argument);
- ``id:HEX`` or a bare hexadecimal string (colons allowed): the CKA_ID;
- ``label:TEXT`` or any other text: the CKA_LABEL.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_csr.errors import InputError

#: The path attributes of RFC 7512 section 2.3 (``slot-*`` from RFC 7512's errata / p11-kit).
PATH_ATTRIBUTES = frozenset({
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
    "library-version", "object", "type", "id", "slot-description", "slot-manufacturer",
    "slot-id"})
QUERY_ATTRIBUTES = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
OBJECT_TYPES = frozenset({"public", "private", "cert", "secret-key", "data"})
_HEX = frozenset("0123456789abcdefABCDEF")
# RFC 3986 unreserved + the sub-delims and ':' '@' RFC 7512 allows in a path value ('&' too).
_PCHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
                   "!$&'()*+,=:@")
_QCHAR = _PCHAR | {"/", "?", "|"}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a PKCS#11 URI that select a key (``None``: not given)."""

    path: dict[str, bytes]
    query: dict[str, bytes]

    def text(self, name: str) -> str | None:
        """A path attribute as UTF-8 text (``token``, ``object``, ``serial`` ...)."""
        value = self.path.get(name)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"The PKCS#11 URI's {name} is not UTF-8 text.",
                             field="key") from None

    @property
    def token(self) -> str | None:
        """CKT token label."""
        return self.text("token")

    @property
    def object(self) -> str | None:
        """CKA_LABEL."""
        return self.text("object")

    @property
    def id(self) -> bytes | None:
        """CKA_ID (raw bytes)."""
        return self.path.get("id")

    @property
    def type(self) -> str | None:
        """Object class: public, private, cert, secret-key or data."""
        return self.text("type")


def _decode(value: str, allowed: frozenset[str], name: str) -> bytes:
    """Percent-decode one attribute value; refuse characters RFC 7512 does not allow raw."""
    out = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "%":
            pair = value[i + 1:i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise InputError(f"The PKCS#11 URI's {name} has a '%' not followed by two "
                                 "hexadecimal digits.", field="key")
            out.append(int(pair, 16))
            i += 3
            continue
        if ch not in allowed:
            raise InputError(f"The PKCS#11 URI's {name} holds the character {ch!r}, which must "
                             f"be percent-encoded (%{ord(ch):02X}).", field="key")
        out += ch.encode("ascii")
        i += 1
    return bytes(out)


def _split(part: str, sep: str, allowed: frozenset[str], known: frozenset[str],
           where: str) -> dict[str, bytes]:
    attrs: dict[str, bytes] = {}
    if not part:
        return attrs
    for item in part.split(sep):
        if not item:
            continue  # "pkcs11:token=a;;object=b": an empty attribute carries nothing
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise InputError(f"The PKCS#11 URI's {where} attribute '{item}' is not name=value.",
                             field="key")
        if name in attrs:
            raise InputError(f"The PKCS#11 URI gives '{name}' more than once.", field="key")
        if name not in known:
            # Vendor attributes (x-...) and unknown ones would narrow the match in ways this
            # program cannot honour: refuse rather than match a different key.
            raise InputError(f"The PKCS#11 URI's {where} attribute '{name}' is not one tui-csr "
                             f"understands (known: {', '.join(sorted(known))}).", field="key")
        if name == "pin-value":
            raise InputError("The PKCS#11 URI holds a pin-value; a PIN is never a "
                             "command-line argument (use TUI_CSR_PIN, --pin-file or the "
                             "prompt).", field="key")
        attrs[name] = _decode(value, allowed, name)
    return attrs


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI (``pkcs11:`` path ``?`` query); InputError naming what is wrong."""
    if not text[:7].lower() == "pkcs11:":
        raise InputError("A PKCS#11 URI starts with 'pkcs11:'.", field="key")
    rest = text[7:]
    path, _q, query = rest.partition("?")
    uri = Pkcs11Uri(_split(path, ";", _PCHAR, PATH_ATTRIBUTES, "path"),
                    _split(query, "&", _QCHAR, QUERY_ATTRIBUTES, "query"))
    kind = uri.type
    if kind is not None and kind not in OBJECT_TYPES:
        raise InputError(f"The PKCS#11 URI's type '{kind}' is not one of "
                         f"{', '.join(sorted(OBJECT_TYPES))}.", field="key")
    if kind is not None and kind not in ("private", "public"):
        raise InputError(f"The PKCS#11 URI names a {kind} object; --key needs a key pair "
                         "(type=private or type=public, or no type).", field="key")
    if uri.id is not None and not uri.id:
        raise InputError("The PKCS#11 URI's id is empty.", field="key")
    if uri.id is None and uri.object is None:
        raise InputError("The PKCS#11 URI names no key: give its id= or object= (label).",
                         field="key")
    return uri


@dataclass(frozen=True)
class KeySelector:
    """Which key pair ``generate --key`` means: by CKA_ID and/or CKA_LABEL, maybe on a named
    token (label, serial, manufacturer, model from the URI)."""

    key_id: bytes | None = None
    label: str | None = None
    token: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    given: str = ""

    def describe(self) -> str:
        """How the key was named, for messages ("id 0a0b, label 'web'")."""
        parts = []
        if self.key_id is not None:
            parts.append(f"id {self.key_id.hex()}")
        if self.label is not None:
            parts.append(f"label '{self.label}'")
        return ", ".join(parts)


def parse_key_selector(text: str) -> KeySelector:
    """``--key``'s value (see the module docstring); InputError when it names nothing."""
    value = text.strip()
    if not value:
        raise InputError("--key is empty; give a PKCS#11 URI, a CKA_ID in hex or a label.",
                         field="key")
    if value[:7].lower() == "pkcs11:":
        uri = parse_pkcs11_uri(value)
        return KeySelector(key_id=uri.id, label=uri.object, token=uri.token,
                           serial=uri.text("serial"), manufacturer=uri.text("manufacturer"),
                           model=uri.text("model"), given=value)
    if value[:6].lower() == "label:":
        label = value[6:]
        if not label:
            raise InputError("--key label: is empty.", field="key")
        return KeySelector(label=label, given=value)
    explicit = value[:3].lower() == "id:"
    digits = (value[3:] if explicit else value).replace(":", "").strip()
    if digits and len(digits) % 2 == 0 and set(digits) <= _HEX:
        return KeySelector(key_id=bytes.fromhex(digits), given=value)
    if explicit:
        raise InputError(f"--key {value}: the CKA_ID is not hexadecimal.", field="key")
    return KeySelector(label=value, given=value)
