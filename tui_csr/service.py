"""Use cases shared by the CLI and the TUI: generate, list, show, delete, groups.

The service holds the store and (once opened) the async token facade. It never imports Textual;
the UI awaits these methods inside workers. Store calls are file I/O, so the async methods run
them off the event loop with ``asyncio.to_thread``; token calls go through the token thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from tui_csr.config import Settings, current_user
from tui_csr.core.dn import DistinguishedName, parse_dn
from tui_csr.core.keyspec import (
    HashAlg,
    KeySpec,
    Scheme,
    parse_hash,
    parse_key_spec,
    scheme_for,
)
from tui_csr.core.models import AuditEntry, Group, Request, Status, utcnow
from tui_csr.core.san import SanEntry, validate_sans
from tui_csr.errors import InputError, PermissionDeniedError, TokenError
from tui_csr.hsm.token import TokenInfo, TokenKey, pkcs11_uri
from tui_csr.hsm.worker import AsyncToken
from tui_csr.lifecycle import LifecycleMixin
from tui_csr.store.repo import Store

if TYPE_CHECKING:  # attestation loads only when used: every command would pay ~15 ms for it
    from tui_csr.attestation import AttestationResult

#: Labels: printable, no control characters; the token and the URI both carry them.
_LABEL_MAX = 64
_NAME_MAX = 64
_OWNER_RE = re.compile(r"^[A-Za-z0-9._@+-][A-Za-z0-9._@+ -]{0,63}$")

Progress = Callable[[str], None]


@dataclass
class GenerateParams:
    """What a user asks for, as typed (strings); :meth:`CsrService.validate` checks it all."""

    key_spec: str
    hash: str | None = None
    pss: bool = False
    dn: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # CN, O, OU, L, ST, C
    sans: list[tuple[str, str]] = field(default_factory=list)  # (email|dns|ip|uri, value)
    groups: list[str] = field(default_factory=list)
    owner: str | None = None
    label: str | None = None


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


def validate_label(label: str) -> str:
    """A key label: 1-64 printable characters, no leading/trailing space."""
    value = label.strip()
    if not value:
        raise InputError("The key label is empty.", field="label")
    if len(value) > _LABEL_MAX:
        raise InputError(f"The key label is {len(value)} characters; the maximum is "
                         f"{_LABEL_MAX}.", field="label")
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        raise InputError(f"The key label contains the unprintable character U+{ord(bad):04X}; "
                         "remove it.", field="label")
    return value


def validate_group_name(name: str) -> str:
    """A group name: 1-64 printable characters."""
    value = (name or "").strip()
    if not value:
        raise InputError("The group name is empty.", field="group")
    if len(value) > _NAME_MAX:
        raise InputError(f"The group name is {len(value)} characters; the maximum is "
                         f"{_NAME_MAX}.", field="group")
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        raise InputError(f"The group name contains the unprintable character U+{ord(bad):04X}; "
                         "remove it.", field="group")
    return value


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
    cn = "".join(ch if ch.isprintable() else "_" for ch in cn)[: _LABEL_MAX - 11]
    # A CN may begin or end with an (escaped) space; a label may not (validate_label).
    cn = cn.strip() or "key"
    return f"{cn}-{(today or date.today()).isoformat()}"


class CsrService(LifecycleMixin):
    """The program's use cases over one store and (optionally) one token."""

    def __init__(self, settings: Settings, store: Store, token: AsyncToken | None = None,
                 user: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.token = token
        self.user = user or current_user()
        self.token_info: TokenInfo | None = None
        #: Today's date for default labels; tests and snapshots replace it to stay stable.
        self.today: Callable[[], date] = date.today
        self._store_tag: str | None = None

    @classmethod
    def create(cls, settings: Settings, user: str | None = None) -> CsrService:
        """A service over the settings' store; the token is opened later by :meth:`open_token`."""
        return cls(settings, Store.open(settings.data_dir), user=user)

    # -- token -------------------------------------------------------------------------------
    async def open_token(self) -> TokenInfo:
        """Load the module and select the configured token (no login yet)."""
        from tui_csr.hsm.token import Pkcs11Token

        if self.token is None:
            self.settings.apply_module_env()
            self.token = AsyncToken(Pkcs11Token(self.settings.module, self.settings.token,
                                                self.settings.token_serial))
        self.token_info = await self.token.open()
        return self.token_info

    async def login(self, pin: str | None) -> TokenInfo:
        """Log in to the token with ``pin`` (not kept)."""
        self.token_info = await self._token().login(pin)
        return self.token_info

    def _token(self) -> AsyncToken:
        if self.token is None:
            raise TokenError("No token is open.", field="token")
        return self.token

    async def spec_support(self) -> dict[str, str | None]:
        """Every key spec name -> None when the token can make it, else the reason it cannot."""
        from tui_csr.core.keyspec import KEY_SPECS

        token = self._token()
        return {name: await token.supports(spec) for name, spec in KEY_SPECS.items()}

    async def label_problem(self, label: str) -> str | None:
        """None when ``label`` is a valid key label free in the store and on the token; else the
        one-sentence reason (for the wizard's label field)."""
        try:
            value = validate_label(label)
        except InputError as exc:
            return exc.message
        if await asyncio.to_thread(self.store.find_request_by_label, value) is not None:
            return f"A request labelled '{value}' already exists."
        if self.token is not None and await self.token.label_in_use(value):
            return f"Key label '{value}' is already used on token '{self.token.label}'."
        return None

    async def suggest_label(self, dn: DistinguishedName) -> str:
        """The default label for ``dn`` (CN and date), made unique in the store."""
        return await asyncio.to_thread(self._free_label, default_label(dn, self.today()))

    @property
    def is_admin(self) -> bool:
        """Whether the current OS user administers certificate groups."""
        return self.settings.is_admin(self.user)

    # -- generate ----------------------------------------------------------------------------
    def validate(self, params: GenerateParams) -> ValidatedRequest:
        """Check everything that needs no token; raises InputError naming the field.

        Runs before any key exists, so a refusal leaves the token as it was.
        """
        spec = parse_key_spec(params.key_spec)
        hash_alg = parse_hash(params.hash)
        scheme = scheme_for(spec, params.pss)
        if params.dn and params.dn.strip():
            if any(v.strip() for v in params.fields.values()):
                raise InputError("Give the subject either as one DN string or as fields, not "
                                 "both.", field="dn")
            dn = parse_dn(params.dn)
        else:
            dn = DistinguishedName.from_mapping(params.fields)
        if params.sans and not self.settings.san_supported:
            raise InputError("The configured backend does not support Subject Alternative "
                             "Names (san_supported = false).", field="san")
        sans = validate_sans(params.sans)
        owner = validate_owner(params.owner)
        groups = self._check_groups(params.groups)
        if params.label and params.label.strip():
            label = validate_label(params.label)
            if self.store.find_request_by_label(label) is not None:
                raise InputError(f"A request labelled '{label}' already exists.", field="label")
        else:
            label = self._free_label(default_label(dn, self.today()))
        return ValidatedRequest(spec, hash_alg, scheme, dn, sans, groups, owner, label)

    def _check_groups(self, names: Sequence[str]) -> tuple[str, ...]:
        existing = {g.name.casefold(): g.name for g in self.store.list_groups()}
        if not existing:
            raise InputError("No certificate group exists yet; an administrator must create one "
                             "first (tui-csr groups add NAME).", field="group")
        if not names:
            raise InputError("Choose at least one certificate group.", field="group")
        out: list[str] = []
        for name in names:
            key = name.strip().casefold()
            if key not in existing:
                raise InputError(f"Group '{name}' does not exist; existing groups: "
                                 f"{', '.join(sorted(existing.values()))}.", field="group")
            if existing[key] not in out:
                out.append(existing[key])
        return tuple(out)

    def _free_label(self, base: str) -> str:
        label, n = base, 2
        while self.store.find_request_by_label(label) is not None:
            label, n = f"{base}-{n}", n + 1
        return label

    async def generate(self, params: GenerateParams,
                       progress: Progress | None = None) -> Request:
        """Validate, generate the key pair on the token, have it sign the CSR, verify the
        signature in software and store the request. On any failure after key generation the
        key pair is destroyed again: no key without a record."""
        say = progress or (lambda _msg: None)
        v = await asyncio.to_thread(self.validate, params)
        token = self._token()
        reason = await token.supports(v.spec)
        if reason:
            raise InputError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
        if await token.label_in_use(v.label):
            if params.label and params.label.strip():
                raise InputError(f"Key label '{v.label}' is already used on token "
                                 f"'{token.label}'.", field="label")
            # A default label may collide with a key made elsewhere (another data folder,
            # another tool): take the next free suffix instead of refusing.
            v = await self._free_token_label(v)
        say(f"Generating {v.spec.display} key on token {token.label}")
        pair = await token.generate_keypair(v.spec, v.label, await self.store_tag())
        try:
            return await self._record(v, pair.key_id, pair.spki_der, "generate", say)
        except BaseException:
            # Shield the clean-up: a cancelled worker must still not leave a key behind.
            await asyncio.shield(self._destroy_quietly(pair.key_id))
            raise

    async def _sign_and_record(self, params: GenerateParams, key_id: bytes, label: str,
                               spki_der: bytes, action: str) -> Request:
        """Validate ``params`` for an existing key pair (its spec comes from the public key),
        have the token sign the CSR and record it."""
        from dataclasses import replace

        from tui_csr.core.csr import spec_of_spki

        params = replace(params, key_spec=spec_of_spki(spki_der).name, label=label)
        v = await asyncio.to_thread(self.validate, params)
        return await self._record(v, key_id, spki_der, action, lambda _m: None)

    async def _record(self, v: ValidatedRequest, key_id: bytes, spki_der: bytes, action: str,
                      say: Progress) -> Request:
        """Sign the CSR for ``key_id`` on the token, verify it in software, store the record."""
        # Imported here, not at the top: list, show and the TUI's start need no asn1crypto.
        from tui_csr.core.csr import assemble, build_tbs, signature_algorithm, to_pem, verify

        token = self._token()
        say(f"Signing the CSR on token {token.label}")
        tbs = build_tbs(v.dn, spki_der, v.sans)
        signature = await token.sign(key_id, tbs.dump(), v.spec, v.hash_alg, v.scheme)
        der = assemble(tbs, signature_algorithm(v.spec, v.hash_alg, v.scheme), signature)
        verify(der)
        info = self.token_info
        request = Request(
            id=uuid.uuid4().hex, label=v.label, subject=v.dn.to_rfc4514(),
            subject_fields=v.dn.fields, sans=[(e.kind.value, e.value) for e in v.sans],
            key_spec=v.spec.name, hash=v.hash_alg.value, scheme=v.scheme.value,
            token_label=token.label, key_id=key_id.hex(),
            pkcs11_uri=pkcs11_uri(token.label, v.label, key_id),
            csr_pem=to_pem(der), groups=list(v.groups), owner=v.owner, created=utcnow(),
            created_by=self.user, status=Status.PENDING,
            token_serial=info.serial if info else None)
        say("Saving the request")
        audit = AuditEntry(action, self.user, request.id,
                           f"{v.label} {v.spec.name} {request.subject}")
        await asyncio.to_thread(self.store.add_request, request, audit)
        return request

    async def store_tag(self) -> str:
        """The store's id, written into each key's token marker (see :meth:`Store.identity`)."""
        if self._store_tag is None:
            self._store_tag = await asyncio.to_thread(self.store.identity)
        return self._store_tag

    async def _free_token_label(self, v: ValidatedRequest) -> ValidatedRequest:
        from dataclasses import replace

        token = self._token()
        for n in range(2, 1000):
            label = f"{v.label}-{n}"
            if (await asyncio.to_thread(self.store.find_request_by_label, label) is None
                    and not await token.label_in_use(label)):
                return replace(v, label=label)
        raise InputError(f"No free key label near '{v.label}' on token '{token.label}'; give "
                         "one with --label.", field="label")

    async def _destroy_quietly(self, key_id: bytes) -> None:
        # The original failure is what the user must see, not a clean-up error.
        with contextlib.suppress(Exception):
            await self._token().destroy(key_id)

    # -- requests ----------------------------------------------------------------------------
    async def list_requests(self, status: Status | None = Status.PENDING) -> list[Request]:
        """Requests in the store (pending by default), newest first."""
        return await asyncio.to_thread(self.store.list_requests, status)

    async def get_request(self, request_id: str) -> Request:
        """One request by id (or unique id prefix)."""
        return await asyncio.to_thread(self.store.get_request, request_id)

    async def delete_request(self, request_id: str) -> Request:
        """Destroy the request's key pair on the token, then remove the record.

        A token failure keeps the record (and says so); a key already gone is not an error.
        """
        request = await self.get_request(request_id)
        token = self._token()
        if request.token_label and token.label and request.token_label != token.label:
            raise InputError(f"Request '{request.label}' lives on token '{request.token_label}', "
                             f"not on '{token.label}'; open that token to delete it.",
                             field="token")
        try:
            await token.destroy(bytes.fromhex(request.key_id))
        except TokenError as exc:
            raise TokenError(f"{exc.message} The request record was kept.", field="token",
                             code=exc.code) from exc
        audit = AuditEntry("delete", self.user, request.id,
                           f"{request.label} key {request.key_id} destroyed")
        await asyncio.to_thread(self.store.remove_request, request.id, audit)
        return request

    async def token_keys(self) -> list[TokenKey]:
        """Key pairs on the token (for orphan scans and tests)."""
        return await self._token().list_keys()

    # -- key attestation (providers in tui_csr.attestation) ----------------------------------
    def attestation_available(self) -> str | None:
        """None when "Download key attestation" can be offered; else the reason it cannot
        (cheap: no token or network call)."""
        from tui_csr.attestation import attestation_support

        return attestation_support(self.settings, self.token_info)

    @property
    def attestation_needs_token(self) -> bool:
        """True when the configured provider reads the token (log in first), False when it
        only uses the network (Fortanix DSM)."""
        return self.settings.attestation == "luna"

    async def attestation(self, request_id: str) -> AttestationResult:
        """The key attestation of a request, checked against its CSR's key. Nothing is written:
        save it with :func:`tui_csr.attestation.save_attestation`."""
        from tui_csr.attestation import AttestationUnsupportedError, make_provider

        request = await self.get_request(request_id)
        reason = self.attestation_available()
        if reason:
            raise AttestationUnsupportedError(reason)
        provider = make_provider(self.settings)
        token = self._token() if provider.needs_token else self.token
        result = await provider.attest(request, token)
        audit = AuditEntry("attestation", self.user, request.id,
                           f"{request.label} {result.provider} SHA-256 {result.key_fingerprint}")
        await asyncio.to_thread(self.store.add_audit, audit)
        return result

    # -- groups ------------------------------------------------------------------------------
    def _require_admin(self, what: str) -> None:
        if not self.is_admin:
            admins = ", ".join(self.settings.admin_users())
            raise PermissionDeniedError(
                f"Only an administrator can {what}; '{self.user}' is not one (administrators: "
                f"{admins}).", field="group")

    async def list_groups(self) -> list[Group]:
        """All certificate groups, by name."""
        return await asyncio.to_thread(self.store.list_groups)

    async def group_usage(self) -> dict[str, tuple[int, int]]:
        """Per group: (pending requests, issued certificates)."""
        return await asyncio.to_thread(self.store.group_usage)

    async def add_group(self, name: str, policy: str = "", description: str = "") -> Group:
        """Create a group (administrators only)."""
        self._require_admin("create certificate groups")
        group = Group(name=validate_group_name(name),
                      policy=validate_text(policy, "policy", "policy"),
                      description=validate_text(description, "description", "description"),
                      created_by=self.user)
        audit = AuditEntry("group-add", self.user, group.name, f"policy={group.policy}")
        await asyncio.to_thread(self.store.add_group, group, audit)
        return group

    async def rename_group(self, old: str, new: str) -> None:
        """Rename a group everywhere (administrators only)."""
        self._require_admin("rename certificate groups")
        new = validate_group_name(new)
        audit = AuditEntry("group-rename", self.user, old, f"-> {new}")
        await asyncio.to_thread(self.store.rename_group, old, new, audit)

    async def remove_group(self, name: str) -> None:
        """Remove an empty group (administrators only)."""
        self._require_admin("remove certificate groups")
        audit = AuditEntry("group-remove", self.user, name)
        await asyncio.to_thread(self.store.remove_group, name, audit)

    async def set_groups(self, request_id: str, groups: Sequence[str],
                         owner: str | None = None, *, change_owner: bool = False) -> Request:
        """Change a request's groups (at least one) and optionally its owner."""
        request = await self.get_request(request_id)
        new_groups = await asyncio.to_thread(self._check_groups, groups)
        request.groups = list(new_groups)
        if change_owner:
            request.owner = validate_owner(owner)
        audit = AuditEntry("edit-groups", self.user, request.id,
                           f"groups={','.join(request.groups)} owner={request.owner or ''}")
        await asyncio.to_thread(self.store.update_request, request, audit)
        return request
