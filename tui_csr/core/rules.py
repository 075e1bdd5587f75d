"""The rules a request must follow before any key exists: labels, names, owners, groups, the
subject and SANs. Pure functions over what the user typed and what the store holds (passed in),
shared by every use case (generate, batch, adopt, edit) so that each applies the same checks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from tui_csr.core.dn import DistinguishedName, parse_dn
from tui_csr.core.extensions import RequestedExtensions
from tui_csr.core.keyspec import (
    HashAlg,
    KeySpec,
    KeyType,
    Scheme,
    parse_hash,
    parse_key_spec,
    scheme_for,
)
from tui_csr.core.profiles import BUILTIN_PROFILES, Profile, apply_profiles, resolve_profiles
from tui_csr.core.san import SanEntry, validate_sans
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.core.models import Request

#: Labels: printable, no control characters; the token and the URI both carry them.
LABEL_MAX = 64
NAME_MAX = 64
_OWNER_RE = re.compile(r"^[A-Za-z0-9._@+-][A-Za-z0-9._@+ -]{0,63}$")

#: DN fields as typed: a mapping (one value each) or (attribute, value) pairs in order (repeats
#: such as several OUs kept).
SubjectFields = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass
class GenerateParams:
    """What a user asks for, as typed (strings); :func:`validate_request` checks it all."""

    key_spec: str
    hash: str | None = None
    pss: bool = False
    dn: str | None = None
    fields: SubjectFields = field(default_factory=dict)  # CN, O, OU, L, ST, C
    sans: list[tuple[str, str]] = field(default_factory=list)  # (email|dns|ip|uri, value)
    groups: list[str] = field(default_factory=list)
    owner: str | None = None
    label: str | None = None
    #: The key needs a login (context-specific, the PIN) before every signature.
    always_authenticate: bool = False
    #: A profile (:mod:`tui_csr.core.profiles`) chosen explicitly; the groups' apply as well.
    profile: str | None = None
    #: Requested extensions; None leaves them to the profiles (``"none"``: none at all).
    key_usage: str | Sequence[str] | None = None
    eku: str | Sequence[str] | None = None
    ca: bool = False
    path_len: int | str | None = None

    def field_pairs(self) -> list[tuple[str, str]]:
        """The DN fields as (attribute, value) pairs, blanks left out."""
        items = self.fields.items() if isinstance(self.fields, Mapping) else self.fields
        return [(k, v) for k, v in items if v is not None and v.strip()]


@dataclass(frozen=True)
class ValidatedRequest:
    """A :class:`GenerateParams` that passed every check that needs no token."""

    spec: KeySpec
    hash_alg: HashAlg
    scheme: Scheme
    dn: DistinguishedName
    sans: tuple[SanEntry, ...]
    groups: tuple[str, ...]
    owner: str | None
    label: str
    always_authenticate: bool = False
    extensions: RequestedExtensions = field(default_factory=RequestedExtensions)
    #: The profiles applied: ``{"name", "version", "source"}`` (source ``--profile`` for the
    #: chosen profile, or ``group:NAME``), as the request record keeps them.
    profiles: tuple[dict, ...] = ()


def _printable_name(value: str, what: str, field_name: str, limit: int) -> str:
    if not value:
        raise InputError(f"The {what} is empty.", field=field_name)
    if len(value) > limit:
        raise InputError(f"The {what} is {len(value)} characters; the maximum is {limit}.",
                         field=field_name)
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        raise InputError(f"The {what} contains the unprintable character U+{ord(bad):04X}; "
                         "remove it.", field=field_name)
    return value


def validate_label(label: str) -> str:
    """A key label: 1-64 printable characters, no leading/trailing space."""
    return _printable_name(label.strip(), "key label", "label", LABEL_MAX)


def validate_group_name(name: str) -> str:
    """A group name: 1-64 printable characters."""
    return _printable_name((name or "").strip(), "group name", "group", NAME_MAX)


def validate_text(value: str | None, what: str, field: str) -> str:
    """Free text such as a group's policy or description: stripped; refused when it holds a
    control character or a lone surrogate (which cannot be stored as UTF-8)."""
    text = (value or "").strip()
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise InputError(f"The {what} contains the character U+{ord(ch):04X}, which is not "
                             "allowed; remove it.", field=field)
    return text


def validate_owner(owner: str | None) -> str | None:
    """An owner: empty for none, else a user name or e-mail-like id (letters, digits, ._@+- )."""
    if owner is None or not owner.strip():
        return None
    value = owner.strip()
    if not _OWNER_RE.match(value):
        raise InputError(f"Owner '{value}' is not a valid user name (letters, digits and "
                         "._@+- only, at most 64 characters).", field="owner")
    return value


def default_label(dn: DistinguishedName, today: date | None = None) -> str:
    """Default key label: the CN and the date, e.g. ``www.example.com-2026-11-27``."""
    cn = dn.fields.get("CN", "key")
    cn = "".join(ch if ch.isprintable() else "_" for ch in cn)[: LABEL_MAX - 11]
    # A CN may begin or end with an (escaped) space; a label may not (validate_label).
    cn = cn.strip() or "key"
    return f"{cn}-{(today or date.today()).isoformat()}"


def free_label(base: str, taken: Callable[[str], bool]) -> str:
    """``base``, or ``base-2``, ``base-3`` ... whichever ``taken`` says is free first."""
    label, n = base, 2
    while taken(label):
        label, n = f"{base}-{n}", n + 1
    return label


def check_groups(names: Sequence[str], existing: Sequence[str]) -> tuple[str, ...]:
    """The chosen groups in their stored spelling; at least one, each existing."""
    by_fold = {name.casefold(): name for name in existing}
    if not by_fold:
        raise InputError("No certificate group exists yet; an administrator must create one "
                         "first (tui-csr groups add NAME).", field="group")
    if not names:
        raise InputError("Choose at least one certificate group.", field="group")
    out: list[str] = []
    for name in names:
        key = name.strip().casefold()
        if key not in by_fold:
            raise InputError(f"Group '{name}' does not exist; existing groups: "
                             f"{', '.join(sorted(by_fold.values()))}.", field="group")
        if by_fold[key] not in out:
            out.append(by_fold[key])
    return tuple(out)


def subject_of(params: GenerateParams) -> DistinguishedName:
    """The subject: one DN string or the fields (not both)."""
    pairs = params.field_pairs()
    if params.dn and params.dn.strip():
        if pairs:
            raise InputError("Give the subject either as one DN string or as fields, not "
                             "both.", field="dn")
        return parse_dn(params.dn)
    return DistinguishedName.from_pairs(pairs)


#: Shown by the CLI and the TUI alike: names the field, not a flag.
KEY_SPEC_REQUIRED = "A key spec is required (e.g. RSA3072 or P-256)."


def validate_request(params: GenerateParams, *, existing_groups: Sequence[str],
                     label_taken: Callable[[str], bool], san_supported: bool,
                     today: date, group_policies: Mapping[str, str] | None = None,
                     profiles: Mapping[str, Profile] | None = None,
                     attestation_problem: Callable[[], str | None] | None = None
                     ) -> ValidatedRequest:
    """Check everything that needs no token; raises InputError naming the field.

    ``label_taken(label)`` says whether the store already has a request with that label.
    ``group_policies`` maps each group to its policy and ``profiles`` the known profiles by
    name: the explicit ``params.profile`` and the chosen groups' profiles are applied (see
    :func:`tui_csr.core.profiles.apply_profiles`). ``attestation_problem()`` says why the token
    cannot attest keys (None when it can); asked only when a profile requires an attestation,
    which is refused then.
    """
    applied = resolve_profiles(params.profile, params.groups, group_policies or {},
                               BUILTIN_PROFILES if profiles is None else profiles)
    if not (params.key_spec or "").strip() and not any(
            a.profile.default_key_spec for a in applied):
        raise InputError(KEY_SPEC_REQUIRED, field="key_spec")
    params, outcome = apply_profiles(params, applied)
    spec = parse_key_spec(params.key_spec)
    if spec.key_type is KeyType.EDDSA and params.hash and params.hash.strip():
        raise InputError(f"{spec.name} signs without a separate hash (PureEdDSA, RFC 8410); "
                         "leave the hash out.", field="hash")
    hash_alg = parse_hash(params.hash)
    scheme = scheme_for(spec, params.pss)
    dn = subject_of(params)
    if params.sans and not san_supported:
        raise InputError("The configured backend does not support Subject Alternative "
                         "Names (san_supported = false).", field="san")
    sans = validate_sans(params.sans)
    owner = validate_owner(params.owner)
    groups = check_groups(params.groups, existing_groups)
    if params.label and params.label.strip():
        label = validate_label(params.label)
        if label_taken(label):
            raise InputError(f"A request labelled '{label}' already exists.", field="label")
    else:
        label = free_label(default_label(dn, today), label_taken)
    problem = attestation_problem() if outcome.attestation_required and (
        attestation_problem is not None) else None
    if problem:
        raise InputError(f"attestation: {outcome.required_by} needs a key attestation, and "
                         f"{problem[0].lower()}{problem[1:]}", field="attestation")
    return ValidatedRequest(spec, hash_alg, scheme, dn, sans, groups, owner, label,
                            params.always_authenticate, outcome.extensions,
                            tuple(a.to_doc() for a in outcome.applied))


def check_regroup(request: Request, groups: Sequence[str], *,
                  group_policies: Mapping[str, str], profiles: Mapping[str, Profile],
                  attestation_problem: Callable[[], str | None] | None = None) -> None:
    """Refuse moving a stored ``request`` into ``groups`` (their stored spelling, checked by
    :func:`check_groups`) when a group it joins has a profile the request does not fit.

    The CSR is signed already, so nothing can be filled in: every constraint of the new groups'
    profiles, and of the profile the request was made with explicitly (which must stay
    compatible with them), is checked against what the request holds: the key spec and hash (a
    profile's padding is a default, not a rule), the requested extensions (keyUsage and extendedKeyUsage as requested, a CA request
    where a profile needs one, the path length), the required DN attributes, the SAN rules, and
    an attestation where a profile requires one (attached to the request, or possible on the
    configured token: ``attestation_problem()`` says why not). InputError naming the rule, the
    group and the profile, as at generation. Only a change that adds a group is checked: leaving
    groups (or changing the owner alone) cannot break a profile.
    """
    old = {g.casefold() for g in request.groups}
    if all(g.casefold() in old for g in groups):
        return
    check_fit(request, groups, group_policies=group_policies, profiles=profiles,
              attestation_problem=attestation_problem)


def check_fit(request: Request, groups: Sequence[str], *,
              group_policies: Mapping[str, str], profiles: Mapping[str, Profile],
              attestation_problem: Callable[[], str | None] | None = None) -> None:
    """Refuse (InputError naming rule, group and profile) when the stored ``request`` does not
    fit the profiles of ``groups`` under ``group_policies`` as they are now: the check of
    :func:`check_regroup`, for every group (e.g. after a group's policy changed)."""
    recorded = next((a.get("name") for a in request.profiles or []
                     if a.get("source") == "--profile" and isinstance(a.get("name"), str)),
                    None)
    explicit = recorded if recorded in profiles else None  # a removed profile binds nothing
    applied = resolve_profiles(explicit, groups, group_policies, profiles)
    if not applied:
        return
    asked = RequestedExtensions.from_doc(request.extensions)
    spec = parse_key_spec(request.key_spec)
    params = GenerateParams(
        key_spec=spec.name, hash=None if spec.key_type is KeyType.EDDSA else request.hash,
        pss=request.scheme == Scheme.PSS.value, dn=request.subject,
        sans=[(str(k), str(v)) for k, v in request.sans], groups=list(groups),
        # The CSR's own extensions, as if typed: the profiles then check them, never fill them.
        key_usage=list(asked.key_usage), eku=list(asked.eku), ca=asked.ca is True,
        path_len=asked.path_len)
    _filled, outcome = apply_profiles(params, applied)
    for a in applied:
        p = a.profile
        if p.ca is True and asked.ca is not True:
            raise InputError(f"ca: {a.who} needs a CA request (basicConstraints CA:TRUE), "
                             "which this request's CSR does not ask for.", field="ca")
        if p.path_len_max is not None and asked.ca is True and asked.path_len is None:
            raise InputError(f"path_len: {a.who} allows a path length of at most "
                             f"{p.path_len_max}, and this request's CSR sets no limit.",
                             field="path_len")
    problem = (attestation_problem() if outcome.attestation_required and not request.attestation
               and attestation_problem is not None else None)
    if problem:
        raise InputError(f"attestation: {outcome.required_by} needs a key attestation, none "
                         f"is attached to this request, and {problem[0].lower()}{problem[1:]}",
                         field="attestation")
