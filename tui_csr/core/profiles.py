"""Request profiles: named, versioned sets of defaults and constraints (a group's policy).

A :class:`Profile` says which key specs and hashes a request may use and which it gets by
default, which extensions it requests (keyUsage, extendedKeyUsage, basicConstraints,
subjectKeyIdentifier), which SAN types it may or must carry and how many, which DN attributes
it must have and which values it gets by default, and whether the key needs an attestation.

:func:`apply_profiles` applies the profiles of a request (the explicit ``--profile`` first, then
each group's): it refuses two profiles that contradict each other, fills what the user left
empty from the defaults and refuses what breaks a constraint, naming the group, the profile and
the rule (``key_spec: group 'Code signing' (profile code-signing) needs RSA 3072 or larger, or
P-256/P-384``). Built-in profiles ship in :data:`BUILTIN_PROFILES`; administrators keep their
own in the store. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tui_csr.core.extensions import (
    KEY_USAGES,
    USAGES_FOR_KEY,
    RequestedExtensions,
    check_path_len,
    parse_eku,
    parse_key_usage,
)
from tui_csr.core.keyspec import KEY_SPECS, KeySpec, KeyType, parse_hash, parse_key_spec
from tui_csr.errors import InputError


class RequestInput(Protocol):
    """What :func:`apply_profiles` reads of a request as typed (``rules.GenerateParams``, a
    dataclass; kept as a protocol so that this module does not import the rules)."""

    key_spec: str
    hash: str | None
    pss: bool
    dn: str | None
    sans: list[tuple[str, str]]
    key_usage: Any
    eku: Any
    ca: bool
    path_len: Any

    def field_pairs(self) -> list[tuple[str, str]]:
        """The DN fields as (attribute, value) pairs."""
        ...


_P = TypeVar("_P", bound=RequestInput)
SAN_TYPES: tuple[str, ...] = ("email", "dns", "ip", "uri")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Profile:
    """A named, versioned set of request defaults and constraints.

    Empty ``key_specs`` / ``hashes`` and ``None`` for the ``*_allowed`` and ``san_types``
    fields mean "anything". ``ca``: True for a CA request (basicConstraints CA:TRUE), False for
    an end entity (CA:FALSE is requested and ``--ca`` refused), None for no opinion.
    """

    name: str
    version: int = 1
    description: str = ""
    key_specs: tuple[str, ...] = ()
    default_key_spec: str | None = None
    hashes: tuple[str, ...] = ()
    default_hash: str | None = None
    default_pss: bool | None = None
    key_usage: tuple[str, ...] = ()
    key_usage_required: tuple[str, ...] = ()
    key_usage_allowed: tuple[str, ...] | None = None
    eku: tuple[str, ...] = ()
    eku_required: tuple[str, ...] = ()
    eku_allowed: tuple[str, ...] | None = None
    ca: bool | None = None
    path_len: int | None = None
    path_len_max: int | None = None
    ski: bool = False
    san_types: tuple[str, ...] | None = None
    san_required: tuple[str, ...] = ()
    san_min: int = 0
    san_max: int | None = None
    dn_required: tuple[str, ...] = ()
    dn_defaults: tuple[tuple[str, str], ...] = ()
    attestation_required: bool = False
    builtin: bool = False
    created_by: str = ""
    updated: datetime | None = None

    # -- documents ---------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        """JSON-able form (the store's ``profiles`` table, ``profiles show --json``)."""
        doc: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            doc[name] = value
        doc["updated"] = (self.updated.astimezone(UTC).isoformat().replace("+00:00", "Z")
                          if self.updated else None)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Profile:
        """Parse :meth:`to_doc`'s form (unknown keys ignored; every value checked: ValueError
        naming the rule a damaged document breaks)."""
        data: dict[str, Any] = {}
        for name, value in doc.items():
            if name not in _FIELDS or value is None and name not in _NULLABLE:
                continue
            if value is None:
                data[name] = None
                continue
            if name == "dn_defaults":
                value = tuple((str(a), str(v)) for a, v in value)
            elif name in _TUPLES:
                value = tuple(str(v) for v in value)
            elif name == "updated":
                value = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if (
                    value) else None
            data[name] = value
        try:
            return validate_profile(cls(**data))
        except InputError as exc:  # a stored document: damaged, not a typing mistake
            raise ValueError(exc.message) from None

    # -- reading -----------------------------------------------------------------------------
    def specs_text(self) -> str:
        """The allowed key specs as a phrase: ``RSA 3072 or larger, or P-256/P-384``."""
        return describe_specs(self.key_specs)

    def summary(self) -> list[tuple[str, str]]:
        """(rule, value) pairs for ``profiles show`` and the TUI."""
        def names(values: Iterable[str] | None, none: str = "any") -> str:
            return none if values is None else (", ".join(values) or "none")

        bc = {True: "CA", False: "end entity (CA:FALSE)", None: "not requested"}[self.ca]
        if self.ca and self.path_len is not None:
            bc += f", path length {self.path_len}"
        if self.path_len_max is not None:
            bc += f" (path length at most {self.path_len_max})"
        sans = names(self.san_types)
        if self.san_required:
            sans += f"; required: {', '.join(self.san_required)}"
        if self.san_min or self.san_max is not None:
            sans += f"; count {self.san_min}..{'' if self.san_max is None else self.san_max}"
        return [
            ("version", str(self.version)),
            ("description", self.description or "-"),
            ("key specs", self.specs_text() if self.key_specs else "any"),
            ("default key spec", self.default_key_spec or "-"),
            ("hashes", names(self.hashes or None)),
            ("default hash", self.default_hash or "-"),
            ("default padding", {True: "PSS", False: "PKCS#1 v1.5", None: "-"}[
                self.default_pss]),
            ("key usage", f"{names(self.key_usage)} (required: {names(self.key_usage_required)};"
                          f" allowed: {names(self.key_usage_allowed)})"),
            ("extended key usage", f"{names(self.eku)} (required: {names(self.eku_required)}; "
                                   f"allowed: {names(self.eku_allowed)})"),
            ("basic constraints", bc),
            ("subject key identifier", "yes" if self.ski else "no"),
            ("SAN types", sans),
            ("DN required", names(self.dn_required)),
            ("DN defaults", ", ".join(f"{a}={v}" for a, v in self.dn_defaults) or "none"),
            ("attestation required", "yes" if self.attestation_required else "no"),
        ]


_FIELDS = tuple(f for f in Profile.__dataclass_fields__ if f != "builtin")
_NULLABLE = {"default_key_spec", "default_hash", "default_pss", "key_usage_allowed",
             "eku_allowed", "ca", "path_len", "path_len_max", "san_types", "san_max", "updated"}
_TUPLES = {"key_specs", "hashes", "key_usage", "key_usage_required", "key_usage_allowed", "eku",
           "eku_required", "eku_allowed", "san_types", "san_required", "dn_required"}


def describe_specs(names: Sequence[str]) -> str:
    """Key spec names as a phrase: the RSA sizes as ``RSA 3072 or larger`` when they are all
    the known sizes from the smallest one up, the curves joined with ``/``."""
    specs = [KEY_SPECS[n] for n in names if n in KEY_SPECS]
    rsa = sorted(s.bits for s in specs if s.key_type is KeyType.RSA)
    known_rsa = sorted(s.bits for s in KEY_SPECS.values() if s.key_type is KeyType.RSA)
    parts: list[str] = []
    if rsa:
        if rsa == [b for b in known_rsa if b >= rsa[0]] and len(rsa) > 1:
            parts.append(f"RSA {rsa[0]} or larger")
        else:
            parts.append("RSA " + "/".join(str(b) for b in rsa))
    curves = [s.name for s in specs if s.key_type is not KeyType.RSA]
    if curves:
        parts.append("/".join(curves))
    return ", or ".join(parts) or "no key spec"


# -- validation of a profile ---------------------------------------------------------------------

def validate_profile_name(name: str) -> str:
    """A profile name: 1-64 lower-case letters, digits and ``.-_``, starting with a letter or
    digit (it is typed as ``--profile NAME`` and a group's policy)."""
    value = (name or "").strip()
    if not _NAME_RE.match(value):
        raise InputError(f"Profile name '{value}' is not valid: use 1-64 lower-case letters, "
                         "digits, '.', '-' and '_', starting with a letter or digit.",
                         field="profile")
    return value


def validate_profile(p: Profile) -> Profile:
    """``p`` with every name in its canonical spelling; InputError naming the rule when a value
    is unknown or the profile contradicts itself."""
    def fail(rule: str, text: str) -> InputError:
        return InputError(f"Profile '{p.name}': {rule}: {text}", field=rule)

    name = validate_profile_name(p.name)
    description = (p.description or "").strip()
    bad = next((ch for ch in description
                if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise fail("description", f"it contains the character U+{ord(bad):04X}, which is not "
                                  "allowed; remove it.")
    if not isinstance(p.version, int) or p.version < 1:
        raise fail("version", "the version must be a whole number from 1.")
    specs = tuple(dict.fromkeys(parse_key_spec(s).name for s in p.key_specs))
    default_spec = parse_key_spec(p.default_key_spec).name if p.default_key_spec else None
    if default_spec and specs and default_spec not in specs:
        raise fail("key_spec", f"the default {default_spec} is not among the allowed key specs "
                               f"({describe_specs(specs)}).")
    hashes = tuple(dict.fromkeys(parse_hash(h).value for h in p.hashes))
    default_hash = parse_hash(p.default_hash).value if p.default_hash else None
    if default_hash and hashes and default_hash not in hashes:
        raise fail("hash", f"the default {default_hash} is not among the allowed hashes "
                           f"({', '.join(hashes)}).")
    ku, ku_req = parse_key_usage(p.key_usage), parse_key_usage(p.key_usage_required)
    ku_allowed = None if p.key_usage_allowed is None else parse_key_usage(p.key_usage_allowed)
    eku, eku_req = parse_eku(p.eku), parse_eku(p.eku_required)
    eku_allowed = None if p.eku_allowed is None else parse_eku(p.eku_allowed)
    for rule, values, allowed in (("key_usage", ku + ku_req, ku_allowed),
                                  ("eku", eku + eku_req, eku_allowed)):
        if allowed is not None:
            outside = [v for v in values if v not in allowed]
            if outside:
                raise fail(rule, f"{', '.join(dict.fromkeys(outside))} is a default or required "
                                 f"but not allowed ({', '.join(allowed) or 'none'}).")
    path_len = check_path_len(p.path_len)
    path_len_max = check_path_len(p.path_len_max)
    if p.ca is not True and (path_len is not None or path_len_max is not None):
        raise fail("path_len", "a path length applies to a CA profile only (ca = true).")
    if path_len is not None and path_len_max is not None and path_len > path_len_max:
        raise fail("path_len", f"the default path length {path_len} is above the maximum "
                               f"{path_len_max}.")
    if "keyCertSign" in ku + ku_req and p.ca is not True:
        raise fail("key_usage", "keyCertSign needs a CA profile (ca = true).")
    san_types = None if p.san_types is None else _san_kinds(p, p.san_types, fail)
    san_required = _san_kinds(p, p.san_required, fail)
    if san_types is not None and any(k not in san_types for k in san_required):
        raise fail("san", "a required SAN type is not among the allowed ones.")
    if p.san_min < 0 or (p.san_max is not None and p.san_max < max(p.san_min,
                                                                     len(san_required))):
        raise fail("san", "the SAN count bounds contradict each other.")
    dn_required = _dn_types(p.dn_required, fail)
    dn_defaults = _dn_defaults(p.dn_defaults, fail)
    return replace(p, name=name, description=description, key_specs=specs, default_key_spec=default_spec, hashes=hashes,
                   default_hash=default_hash, key_usage=ku, key_usage_required=ku_req,
                   key_usage_allowed=ku_allowed, eku=eku, eku_required=eku_req,
                   eku_allowed=eku_allowed, path_len=path_len, path_len_max=path_len_max,
                   san_types=san_types, san_required=san_required, dn_required=dn_required,
                   dn_defaults=dn_defaults)


def _san_kinds(p: Profile, kinds: Iterable[str], fail: Any) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(k.strip().lower() for k in kinds if k.strip()))
    bad = [k for k in out if k not in SAN_TYPES]
    if bad:
        raise fail("san", f"SAN type '{bad[0]}' is not known; use {', '.join(SAN_TYPES)}.")
    return out


def _dn_type(attr: str) -> str:
    """The canonical spelling of a DN attribute type (InputError when unknown)."""
    from tui_csr.core.dn import DistinguishedName

    error: InputError | None = None
    for sample in ("x", "US"):  # any value for most types; a country code for C
        pairs = [(attr, sample)]
        try:
            dn = DistinguishedName.from_pairs(pairs)
        except InputError as exc:
            if "CN is required" not in exc.message:
                error = error or exc
                continue
            try:
                dn = DistinguishedName.from_pairs([("CN", "x"), *pairs])
            except InputError as again:
                error = error or again
                continue
        others = [a for a, _ in dn.attrs if a != "CN"]
        return others[0] if others else "CN"
    raise error or InputError(f"Unknown DN attribute type '{attr}'.", field="dn")


def _dn_types(types: Iterable[str], fail: Any) -> tuple[str, ...]:
    out: list[str] = []
    for attr in types:
        try:
            canonical = _dn_type(attr)
        except InputError as exc:
            raise fail("dn", exc.message) from None
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def _dn_defaults(pairs: Iterable[tuple[str, str]], fail: Any) -> tuple[tuple[str, str], ...]:
    from tui_csr.core.dn import DistinguishedName

    try:
        out = tuple((_dn_type(a), v.strip()) for a, v in pairs if v.strip())
        if any(a == "CN" for a, _ in out):
            raise fail("dn", "a profile cannot give a default CN (each request names its own).")
        DistinguishedName.from_pairs([("CN", "x"), *out])  # the values and repeats are valid
    except InputError as exc:
        raise fail("dn", exc.message.split(": dn: ")[-1]) from None
    return out


# -- built-ins -----------------------------------------------------------------------------------

_TLS_SPECS = ("RSA2048", "RSA3072", "RSA4096", "P-256", "P-384", "P-521")

BUILTIN_PROFILES: dict[str, Profile] = {p.name: validate_profile(p) for p in (
    Profile("tls-server", description="TLS server certificates (CA/Browser Forum style)",
            key_specs=_TLS_SPECS, default_key_spec="P-256",
            key_usage=("digitalSignature",), key_usage_required=("digitalSignature",),
            key_usage_allowed=("digitalSignature", "keyEncipherment", "keyAgreement"),
            eku=("serverAuth",), eku_required=("serverAuth",),
            eku_allowed=("serverAuth", "clientAuth"), ca=False,
            san_types=("dns", "ip"), san_min=1, builtin=True),
    Profile("tls-client", description="TLS client authentication",
            key_specs=_TLS_SPECS, default_key_spec="P-256",
            key_usage=("digitalSignature",), key_usage_required=("digitalSignature",),
            key_usage_allowed=("digitalSignature", "keyEncipherment", "keyAgreement"),
            eku=("clientAuth",), eku_required=("clientAuth",), eku_allowed=("clientAuth",),
            ca=False, builtin=True),
    Profile("code-signing", description="Code signing (key attestation required)",
            key_specs=("RSA3072", "RSA4096", "P-256", "P-384"), default_key_spec="RSA3072",
            key_usage=("digitalSignature",), key_usage_required=("digitalSignature",),
            key_usage_allowed=("digitalSignature",),
            eku=("codeSigning",), eku_required=("codeSigning",), eku_allowed=("codeSigning",),
            ca=False, san_types=("email", "uri"), dn_required=("O", "C"),
            attestation_required=True, builtin=True),
    Profile("smime", description="S/MIME e-mail signing",
            key_specs=_TLS_SPECS, default_key_spec="RSA3072",
            key_usage=("digitalSignature", "nonRepudiation"),
            key_usage_required=("digitalSignature",),
            key_usage_allowed=("digitalSignature", "nonRepudiation", "keyEncipherment",
                               "keyAgreement"),
            eku=("emailProtection",), eku_required=("emailProtection",),
            eku_allowed=("emailProtection", "clientAuth"), ca=False,
            san_types=("email",), san_required=("email",), builtin=True),
    Profile("sub-ca", description="Subordinate CA (basicConstraints CA:TRUE)",
            key_specs=("RSA3072", "RSA4096", "P-256", "P-384", "P-521"),
            default_key_spec="RSA4096", default_hash="SHA384",
            key_usage=("digitalSignature", "keyCertSign", "cRLSign"),
            key_usage_required=("keyCertSign", "cRLSign"),
            key_usage_allowed=("digitalSignature", "keyCertSign", "cRLSign"),
            eku_allowed=None, ca=True, path_len=0, ski=True, san_max=0, dn_required=("O",),
            builtin=True),
    Profile("generic", description="No constraints", builtin=True),
)}


# -- applying profiles -------------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    """One profile that applies to a request, and why: ``who`` names it in messages
    (``group 'Code signing' (profile code-signing)`` or ``the chosen profile code-signing``:
    worded for the CLI and the TUI alike, so no flag is named)."""

    profile: Profile
    who: str
    source: str  # "--profile" or "group:NAME"

    def to_doc(self) -> dict[str, Any]:
        """The request record's note of it."""
        return {"name": self.profile.name, "version": self.profile.version,
                "source": self.source}


def resolve_profiles(explicit: str | None, groups: Sequence[str],
                     group_policies: Mapping[str, str], known: Mapping[str, Profile]
                     ) -> list[Applied]:
    """The profiles that apply: ``explicit`` (``--profile``; must exist) first, then each
    chosen group's policy when it names a known profile. A policy naming no profile is a
    label without constraints (stores written before profiles existed)."""
    by_fold = {name.casefold(): (name, policy) for name, policy in group_policies.items()}
    out: list[Applied] = []
    if explicit is not None and explicit.strip():
        name = explicit.strip()
        profile = known.get(name) or known.get(name.lower())
        if profile is None:
            raise InputError(f"Profile '{name}' does not exist; profiles: "
                             f"{', '.join(sorted(known))}.", field="profile")
        out.append(Applied(profile, f"the chosen profile {profile.name}", "--profile"))
    for group in groups:
        hit = by_fold.get(group.strip().casefold())
        if hit is None:
            continue  # check_groups names the unknown group
        gname, policy = hit
        profile = known.get((policy or "").strip())
        if profile is None:
            continue
        if any(a.source == f"group:{gname}" for a in out):
            continue
        out.append(Applied(profile, f"group '{gname}' (profile {profile.name})",
                           f"group:{gname}"))
    return out


def _refuse(rule: str, who: str, text: str) -> InputError:
    return InputError(f"{rule}: {who} {text}", field=rule)


def check_compatible(applied: Sequence[Applied]) -> None:
    """Refuse two profiles that contradict each other, naming both."""
    for i, a in enumerate(applied):
        for b in applied[i + 1:]:
            problem = _contradiction(a, b)
            if problem:
                rule, text = problem
                raise InputError(f"{rule}: {a.who} and {b.who} contradict each other: {text}.",
                                 field=rule)


def _contradiction(first: Applied, second: Applied) -> tuple[str, str] | None:
    a, b = first.profile, second.profile
    if a.key_specs and b.key_specs and not set(a.key_specs) & set(b.key_specs):
        return ("key_spec", f"one allows {describe_specs(a.key_specs)}, the other "
                            f"{describe_specs(b.key_specs)}")
    if a.hashes and b.hashes and not set(a.hashes) & set(b.hashes):
        return ("hash", f"one allows {', '.join(a.hashes)}, the other {', '.join(b.hashes)}")
    if a.ca is not None and b.ca is not None and a.ca != b.ca:
        return ("ca", "one is for a CA, the other for an end entity")
    for rule, x_req, x_allowed, y_req, y_allowed in (
            ("key_usage", a.key_usage_required, a.key_usage_allowed, b.key_usage_required,
             b.key_usage_allowed),
            ("eku", a.eku_required, a.eku_allowed, b.eku_required, b.eku_allowed)):
        for req, allowed, needs, refuses in ((x_req, y_allowed, a, b), (y_req, x_allowed, b, a)):
            bad = [v for v in req if allowed is not None and v not in allowed]
            if bad:
                return (rule, f"{needs.name} requires {', '.join(bad)}, which {refuses.name} "
                              "does not allow")
    for req, allowed in ((a.san_required, b.san_types), (b.san_required, a.san_types)):
        bad = [k for k in req if allowed is not None and k not in allowed]
        if bad:
            return ("san", f"one requires a {bad[0]} SAN, which the other does not allow")
    lo = max(a.san_min, b.san_min, len(set(a.san_required) | set(b.san_required)))
    hi = min(x for x in (a.san_max, b.san_max, 10**9) if x is not None)
    if lo > hi:
        return ("san", f"one needs at least {lo} SANs, the other allows at most {hi}")
    return None


@dataclass(frozen=True)
class Outcome:
    """What applying the profiles decided beside the filled-in parameters."""

    extensions: RequestedExtensions = field(default_factory=RequestedExtensions)
    applied: tuple[Applied, ...] = ()
    attestation_required: bool = False

    @property
    def required_by(self) -> str | None:
        """Who requires the attestation (for the refusal's message), if anyone does."""
        return next((a.who for a in self.applied if a.profile.attestation_required), None)


def apply_profiles(params: _P, applied: Sequence[Applied]) -> tuple[_P, Outcome]:
    """``params`` with the profiles' defaults filled in where the user left a value empty,
    and the :class:`Outcome` (the extensions the CSR will request). InputError naming the rule,
    the group and the profile when a value breaks a constraint, or naming both when two of the
    profiles contradict each other. Without profiles, ``params`` as given.

    DN defaults fill the fields view; a subject given as one DN string is taken as it is (and
    still checked for the required attributes).
    """
    from tui_csr.core.dn import DistinguishedName, parse_dn

    check_compatible(applied)
    profiles = [a.profile for a in applied]
    # -- key spec, hash, padding
    key_spec = params.key_spec
    if not (key_spec or "").strip():
        key_spec = next((p.default_key_spec for p in profiles if p.default_key_spec
                         and all(not q.key_specs or p.default_key_spec in q.key_specs
                                 for q in profiles)), "") or ""
    spec: KeySpec | None = parse_key_spec(key_spec) if key_spec.strip() else None
    if spec is not None:
        for a in applied:
            if a.profile.key_specs and spec.name not in a.profile.key_specs:
                raise _refuse("key_spec", a.who, f"needs {a.profile.specs_text()}")
    hash_text = params.hash
    eddsa = spec is not None and spec.key_type is KeyType.EDDSA
    if not (hash_text or "").strip() and not eddsa:
        hash_text = next((p.default_hash for p in profiles if p.default_hash), None)
    if not eddsa:
        hash_alg = parse_hash(hash_text)
        for a in applied:
            if a.profile.hashes and hash_alg.value not in a.profile.hashes:
                raise _refuse("hash", a.who, f"needs {', '.join(a.profile.hashes)}")
    pss = params.pss
    if not pss and spec is not None and spec.key_type is KeyType.RSA:
        pss = next((bool(p.default_pss) for p in profiles if p.default_pss is not None), False)
    # -- subject: defaults for attributes the user left out, then the required ones
    fields = params.field_pairs()
    if not (params.dn and params.dn.strip()):
        given = {a.upper() for a, _ in fields}
        for p in profiles:
            add = [(a, v) for a, v in p.dn_defaults if a.upper() not in given]
            fields += add
            given |= {a.upper() for a, _ in add}
    use_dn = bool(params.dn and params.dn.strip())
    subject: dict[str, Any] = {} if use_dn else {"fields": fields}
    if use_dn and not params.field_pairs():
        # A subject given as one string (the wizard, `--dn`): the defaults fill the attributes
        # it lacks too. A string that does not parse is left for validation to refuse.
        try:
            given_dn = parse_dn(params.dn or "")
        except InputError:
            given_dn = None
        if given_dn is not None:
            with_defaults = given_dn
            for p in profiles:
                with_defaults = with_defaults.with_defaults(p.dn_defaults)
            if with_defaults is not given_dn:
                subject = {"dn": with_defaults.to_rfc4514()}
    filled = replace(params, key_spec=key_spec, hash=hash_text, pss=pss,  # type: ignore[type-var]
                     **subject)
    if applied and not (use_dn and params.field_pairs()):  # both: rules.subject_of refuses it
        dn = parse_dn(filled.dn or "") if use_dn else DistinguishedName.from_pairs(fields)
        present = {a for a, _ in dn.attrs}
        for a in applied:
            missing = [t for t in a.profile.dn_required if t not in present]
            if missing:
                raise _refuse("dn", a.who, f"needs the DN attribute {', '.join(missing)}")
        _check_sans(params.sans, applied)
    extensions = _extensions(filled, applied, spec)
    return filled, Outcome(extensions, tuple(applied),
                           any(p.attestation_required for p in profiles))


def _check_sans(sans: Sequence[tuple[str, str]], applied: Sequence[Applied]) -> None:
    kinds = [str(k).strip().lower() for k, _ in sans]
    for a in applied:
        p = a.profile
        bad = [k for k in kinds if p.san_types is not None and k not in p.san_types]
        if bad:
            allowed = ", ".join(p.san_types or ()) or "none"
            raise _refuse("san", a.who, f"does not allow {bad[0]} SANs (allowed: {allowed})")
        for k in p.san_required:
            if k not in kinds:
                raise _refuse("san", a.who, f"needs at least one {k} SAN")
        if len(kinds) < p.san_min:
            raise _refuse("san", a.who, f"needs at least {p.san_min} SAN"
                                        f"{'s' if p.san_min > 1 else ''}")
        if p.san_max is not None and len(kinds) > p.san_max:
            raise _refuse("san", a.who, "allows no SANs" if p.san_max == 0
                          else f"allows at most {p.san_max} SANs")


def _extensions(params: RequestInput, applied: Sequence[Applied],
                spec: KeySpec | None) -> RequestedExtensions:
    profiles = [a.profile for a in applied]
    family = spec.key_type.value if spec is not None else None
    fits = USAGES_FOR_KEY.get(family or "", frozenset(KEY_USAGES))
    # keyUsage: the user's list, else the profiles' defaults and required ones that the key
    # can carry (tls-server allows keyEncipherment for RSA keys, not for EC ones).
    if params.key_usage is not None:
        ku = parse_key_usage(params.key_usage)
    else:
        wanted = {u for p in profiles for u in (*p.key_usage, *p.key_usage_required)}
        allowed_all = [p.key_usage_allowed for p in profiles if p.key_usage_allowed is not None]
        ku = tuple(u for u in KEY_USAGES if u in wanted and u in fits
                   and all(u in allowed for allowed in allowed_all))
    if params.eku is not None:
        eku = parse_eku(params.eku)
    else:
        wanted_eku: list[str] = []
        for p in profiles:
            for e in (*p.eku, *p.eku_required):
                if e not in wanted_eku:
                    wanted_eku.append(e)
        eku = tuple(e for e in wanted_eku if all(
            p.eku_allowed is None or e in p.eku_allowed for p in profiles))
    for a in applied:
        p = a.profile
        for rule, values, required, allowed in (
                ("key_usage", ku, p.key_usage_required, p.key_usage_allowed),
                ("eku", eku, p.eku_required, p.eku_allowed)):
            missing = [v for v in required if v not in values]
            if missing:
                raise _refuse(rule, a.who, f"requires {', '.join(missing)}")
            bad = [v for v in values if allowed is not None and v not in allowed]
            if bad:
                raise _refuse(rule, a.who, f"does not allow {', '.join(bad)} (allowed: "
                                           f"{', '.join(allowed or ()) or 'none'})")
    # basicConstraints
    ca: bool | None = True if params.ca else None
    for a in applied:
        if a.profile.ca is False and params.ca:
            raise _refuse("ca", a.who, "is for end-entity certificates, not a CA")
    if ca is None:
        wants = {p.ca for p in profiles if p.ca is not None}
        ca = wants.pop() if len(wants) == 1 else None
    path_len = check_path_len(params.path_len)
    if path_len is None and ca:
        path_len = next((p.path_len for p in profiles if p.path_len is not None), None)
    if path_len is not None:
        for a in applied:
            if a.profile.path_len_max is not None and path_len > a.profile.path_len_max:
                raise _refuse("path_len", a.who,
                              f"allows a path length of at most {a.profile.path_len_max}")
    ski = any(p.ski for p in profiles)
    ext = RequestedExtensions(ku, eku, ca, path_len if ca else None, ski)
    if path_len is not None and not ca:
        raise InputError("A path length applies to a CA request only (basicConstraints "
                         "CA:TRUE).", field="path_len")
    if spec is not None:
        ext.check_key(spec.key_type.value, spec.name)
    return ext


def all_profiles(stored: Iterable[Profile]) -> dict[str, Profile]:
    """Built-ins and the store's own, by name (a built-in name is never stored)."""
    out = dict(BUILTIN_PROFILES)
    for p in stored:
        out.setdefault(p.name, p)
    return out


