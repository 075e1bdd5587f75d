"""After issuance: renew a request (new key or the same key), retire the one it replaced, make a
CSR for a key pair another tool put on the token, and match an imported certificate to its
pending request.

Built on the generation part (:class:`~tui_csr.services.generation.Generation`): a renewal is a
``generate`` (new key pair, under its write-ahead intent) or a ``sign_and_record`` (existing key
pair) whose parameters come from the source request, with the ``renews`` link written in the
same store write as the new record (the source's ``renewed_by`` with it). The source stays as it
is until the successor's certificate is imported; :meth:`Renewal.retire` then destroys its key
pair (unless the successor uses the same one) and keeps the record as ``retired``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Group, Request, Status, utcnow
from tui_csr.core.rules import GenerateParams
from tui_csr.errors import InputError, TokenError, TuiCsrError
from tui_csr.store.leases import LeaseHeldError

if TYPE_CHECKING:
    from tui_csr.core.p11uri import KeySelector
    from tui_csr.services.certificates import ImportResult
    from tui_csr.services.context import ServiceContext
    from tui_csr.services.generation import Generation, Progress
    from tui_csr.services.requests import Requests

#: A key-reuse policy: None when ``source`` may have a new CSR with its key pair, else the reason
#: it may not (one sentence). Group policies and request profiles (issue 15) register theirs in
#: :data:`KEY_REUSE_CHECKS`; ``renew --same-key`` asks each of them before anything is signed.
KeyReuseCheck = Callable[[Request, Sequence[Group]], str | None]
KEY_REUSE_CHECKS: list[KeyReuseCheck] = []


@dataclass
class RenewOverrides:
    """What a renewal changes of its source (None / empty: keep the source's)."""

    key_spec: str | None = None
    hash: str | None = None
    pss: bool | None = None
    dn: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)  # replaces the whole subject
    sans: list[tuple[str, str]] | None = None  # replaces every SAN
    groups: list[str] = field(default_factory=list)
    owner: str | None = None
    label: str | None = None
    always_authenticate: bool = False
    #: Another explicit profile (the groups' profiles apply in any case).
    profile: str | None = None
    #: Requested extensions as ``generate`` takes them (None: as the profiles set them).
    key_usage: str | Sequence[str] | None = None
    eku: str | Sequence[str] | None = None
    ca: bool = False
    path_len: int | str | None = None


@dataclass(frozen=True)
class RetireResult:
    """A retired request, and whether its key pair was destroyed (False: the successor uses
    the same key pair)."""

    request: Request
    key_destroyed: bool


class Renewal:
    """Renew, retire, existing keys, certificate matching."""

    def __init__(self, ctx: ServiceContext, generation: Generation, requests: Requests) -> None:
        self.ctx = ctx
        self.generation = generation
        self.requests = requests

    # -- renew ---------------------------------------------------------------------------------
    def params_for(self, source: Request, ov: RenewOverrides) -> GenerateParams:
        """The generate parameters of a renewal of ``source`` with the overrides applied."""
        from tui_csr.core.keyspec import KeyType, Scheme, parse_key_spec

        spec = parse_key_spec(ov.key_spec or source.key_spec)
        pss = ov.pss if ov.pss is not None else (
            source.scheme == Scheme.PSS.value and spec.key_type is KeyType.RSA)
        new_subject = bool(ov.dn and ov.dn.strip()) or bool(ov.fields)
        return GenerateParams(
            key_spec=spec.name, pss=pss,
            # EdDSA has no separate hash: a source's does not follow the key to Ed25519.
            hash=ov.hash or (None if spec.key_type is KeyType.EDDSA else source.hash),
            dn=ov.dn if new_subject else source.subject,
            fields=list(ov.fields) if new_subject else [],
            sans=list(source.sans if ov.sans is None else ov.sans),
            groups=list(ov.groups or source.groups),
            owner=source.owner if ov.owner is None else ov.owner,
            label=ov.label, always_authenticate=ov.always_authenticate,
            profile=ov.profile or explicit_profile(source),
            key_usage=ov.key_usage, eku=ov.eku, ca=ov.ca, path_len=ov.path_len)

    async def _source(self, source_id: str) -> Request:
        source = await self.requests.get_request(source_id)
        if source.status is Status.RETIRED:
            raise InputError(f"Request '{source.label}' is retired; renew its successor "
                             f"{source.renewed_by or ''}".rstrip() + ".", field="id")
        if source.renewed_by:
            store = self.ctx.store
            successor = await asyncio.to_thread(_maybe_get, store, source.renewed_by)
            if successor is not None:
                raise InputError(f"Request '{source.label}' is already renewed by "
                                 f"'{successor.label}' ({successor.id[:8]}); renew or delete "
                                 "that one.", field="id")
        return source

    def _check_subject(self, source: Request, params: GenerateParams) -> None:
        """Refuse (before any key exists) when the stored subject would not rebuild the source
        CSR's subject byte for byte: the renewal promises the same DER."""
        from asn1crypto import csr as acsr

        from tui_csr.core.csr import build_tbs, from_pem_or_der

        if params.dn != source.subject:
            return  # the subject is being changed on purpose
        v = self.generation.validate(replace(params, label=params.label or None))
        info = acsr.CertificationRequest.load(from_pem_or_der(source.csr_pem))
        old = info["certification_request_info"]
        new = build_tbs(v.dn, old["subject_pk_info"].dump(), v.sans)
        if new["subject"].dump() != old["subject"].dump():
            raise InputError(f"The subject of request '{source.label}' cannot be rebuilt "
                             "exactly from its record; give the subject as a DN string.", field="dn")

    async def renew(self, source_id: str, ov: RenewOverrides | None = None,
                    progress: Progress | None = None) -> Request:
        """A new request with a new key pair and the source's subject, SANs, key spec, hash,
        groups and owner (each overridable), linked to the source (``renews``)."""
        source = await self._source(source_id)
        params = self.params_for(source, ov or RenewOverrides())
        await asyncio.to_thread(self._check_subject, source, params)
        return await self.generation.generate(params, progress, renews=source.id)

    def key_reuse_problem(self, source: Request, groups: Sequence[Group]) -> str | None:
        """None when ``source``'s key pair may sign another CSR; else the first reason a
        registered policy (:data:`KEY_REUSE_CHECKS`) gives."""
        for check in KEY_REUSE_CHECKS:
            reason = check(source, groups)
            if reason:
                return reason
        return None

    async def renew_same_key(self, source_id: str, ov: RenewOverrides | None = None) -> Request:
        """A new CSR signed by the source's own key pair (for CAs that allow it), linked to
        the source; refused where a policy forbids key reuse or the key is not there."""
        from tui_csr.core.csr import from_pem_or_der, summarize

        ov = ov or RenewOverrides()
        source = await self._source(source_id)
        if ov.key_spec:
            raise InputError("--same-key keeps the key pair, so its key spec; leave out "
                             "--key-spec.", field="key_spec")
        if ov.always_authenticate:
            raise InputError("--same-key keeps the key pair as it is; --always-authenticate "
                             "applies to new key pairs only.", field="always_authenticate")
        groups = await asyncio.to_thread(self.ctx.store.list_groups)
        mine = [g for g in groups if g.name in set(ov.groups or source.groups)]
        reason = self.key_reuse_problem(source, mine)
        if reason:
            raise InputError(f"Request '{source.label}' cannot be renewed with the same key: "
                             f"{reason.rstrip('.')}.", field="same_key")
        token = self.ctx.require_token()
        _same_token(source, token.label, "renew it with the same key")
        key_id = bytes.fromhex(source.key_id)
        if not await token.key_exists(key_id):
            raise InputError(f"The key pair of request '{source.label}' ({source.key_id}) is "
                             f"not on token '{token.label}' any more; renew it with a new key.",
                             field="same_key")
        spki = await token.public_key_spki(key_id)
        if spki != summarize(from_pem_or_der(source.csr_pem)).spki_der:
            raise InputError(f"The key {source.key_id} on token '{token.label}' is not the one "
                             f"request '{source.label}' was made for.", field="same_key")
        params = self.params_for(source, ov)
        await asyncio.to_thread(self._check_subject, source, params)
        return await self.generation.sign_and_record(
            params, key_id, ov.label or "", spki, "renew-same-key", renews=source.id,
            key_label=source.label)

    # -- retire --------------------------------------------------------------------------------
    async def retire(self, source_id: str) -> RetireResult:
        """Retire a request whose successor (``renewed_by``) has its certificate: its key pair
        is destroyed on the token (unless the successor uses the same pair: then only its
        certificate object goes) and the record stays, ``retired``, for the audit trail."""
        source = await self.requests.get_request(source_id)
        if source.status is Status.RETIRED:
            raise InputError(f"Request '{source.label}' is retired already.", field="id")
        store = self.ctx.store
        successor = (await asyncio.to_thread(_maybe_get, store, source.renewed_by)
                     if source.renewed_by else None)
        if successor is None:
            raise InputError(f"Request '{source.label}' has no renewal; renew it first "
                             "(tui-csr renew).", field="id")
        if successor.status is not Status.ISSUED:
            raise InputError(f"The renewal '{successor.label}' of request '{source.label}' has "
                             "no certificate yet; import it first.", field="id")
        token = self.ctx.require_token()
        _same_token(source, token.label, "retire it")
        key_id = bytes.fromhex(source.key_id)
        sharing = [r for r in await asyncio.to_thread(store.list_requests, None)
                   if r.id != source.id and r.key_id == source.key_id
                   and r.token_label == source.token_label and r.status is not Status.RETIRED]
        if sharing:
            if source.certificate_pem:
                from cryptography.hazmat.primitives.serialization import Encoding

                from tui_csr.services.chain import split_bundle

                leaf, _chain = split_bundle(source.certificate_pem)
                await token.destroy_certificate(key_id, leaf.public_bytes(Encoding.DER))
            detail = f"{source.label} retired; key {source.key_id} kept for '{sharing[0].label}'"
        else:
            await token.destroy(key_id)
            if await token.key_exists(key_id):
                raise TokenError(f"The key pair {source.key_id} of request '{source.label}' is "
                                 f"still on token '{token.label}' after destroying it; the "
                                 "request was not retired.", field="token")
            detail = f"{source.label} retired; key {source.key_id} destroyed"
        source.status = Status.RETIRED
        source.retired = utcnow()
        audit = AuditEntry("retire", self.ctx.user, source.id,
                           f"{detail}; renewed by {successor.id}")
        await asyncio.to_thread(store.update_request, source, audit)
        return RetireResult(source, not sharing)

    # -- certificates --------------------------------------------------------------------------
    async def match_certificate(self, data: bytes | str) -> Request:
        """The pending request whose public key one of the certificates in ``data`` carries.
        InputError when none does, or more than one request could be meant."""
        from tui_csr.services.chain import load_certificates, spki_of

        certs = await asyncio.to_thread(load_certificates, data)
        keys = {spki_of(c): c for c in certs}
        pending = await self.requests.list_requests(Status.PENDING)

        def matching() -> list[Request]:
            from tui_csr.core.csr import from_pem_or_der, summarize

            return [r for r in pending
                    if summarize(from_pem_or_der(r.csr_pem)).spki_der in keys]

        found = await asyncio.to_thread(matching)
        if not found:
            subjects = ", ".join(f"'{c.subject.rfc4514_string()}'" for c in certs[:3])
            raise InputError(f"No pending request has the key of the certificate ({subjects}); "
                             "give the request's ID.", field="certificate")
        if len(found) > 1:
            names = ", ".join(f"'{r.label}' ({r.id[:8]})" for r in found)
            raise InputError(f"The certificate fits several pending requests: {names}; give "
                             "the request's ID.", field="certificate")
        return found[0]

    async def check_retire_old(self, request: Request) -> Request:
        """The request ``request`` renews, still to retire once ``request`` is issued;
        InputError (before anything is imported) when there is none."""
        if not request.renews:
            raise InputError(f"Request '{request.label}' renews no request; --retire-old has "
                             "nothing to retire.", field="retire_old")
        source = await asyncio.to_thread(_maybe_get, self.ctx.store, request.renews)
        if source is None:
            raise InputError(f"The request {request.renews} that '{request.label}' renews is "
                             "gone; --retire-old has nothing to retire.", field="retire_old")
        if source.status is Status.RETIRED:
            raise InputError(f"Request '{source.label}' is retired already.", field="retire_old")
        token = self.ctx.token
        if token is not None and token.label:
            _same_token(source, token.label, "retire it")
        return source

    async def import_certificate(self, request_id: str | None, data: bytes | str, *,
                                 retire_old: bool = False
                                 ) -> tuple[ImportResult, RetireResult | None]:
        """Import a certificate (with its chain) for ``request_id``, or for the pending
        request whose key it carries when ``request_id`` is None; with ``retire_old``, then
        retire the request it renews."""
        if request_id is None:
            request = await self.match_certificate(data)
        else:
            request = await self.requests.get_request(request_id)
        if retire_old:
            await self.check_retire_old(request)
        result = await self.requests.import_certificate(request.id, data)
        if not (retire_old and request.renews):
            return result, None
        try:
            return result, await self.retire(request.renews)
        except TuiCsrError as exc:
            # The import stands: say so, so nobody imports it again.
            raise type(exc)(f"The certificate was imported for '{request.label}', but the "
                            f"request it renews was not retired: {exc.message} Retry with "
                            "tui-csr retire.", field=exc.field, code=exc.code) from exc

    # -- existing key pairs --------------------------------------------------------------------
    async def generate_for_key(self, selector: KeySelector, params: GenerateParams,
                               *, key_spec_given: bool = False) -> Request:
        """A CSR and record for a key pair already on the token (made by another tool or a
        ceremony). Its key spec comes from its public key; its flags must be those tui-csr
        gives its own keys; a key that a request (or a generation in progress) already owns
        is refused."""
        from tui_csr.core.csr import spec_of_spki
        from tui_csr.core.keyspec import parse_key_spec
        from tui_csr.hsm.existing import attribute_problem

        token = self.ctx.require_token()
        _token_matches(selector, self.ctx, token.label)
        key = await token.find_key(selector)
        what = f"Key '{key.label}' ({key.key_id.hex()}) on token '{token.label}'"
        problem = attribute_problem(key.attributes, what)
        if problem:
            raise InputError(problem, field="key")
        spec = spec_of_spki(key.spki_der)
        if key_spec_given and parse_key_spec(params.key_spec).name != spec.name:
            raise InputError(f"{what} is {spec.name}, not {params.key_spec}; leave out "
                             "--key-spec (it is read from the key).", field="key_spec")
        store = self.ctx.store
        # The check that no request owns the key and the write of the new record happen under
        # one lease (an inter-process lock of the data folder, named after token and key), so
        # two processes cannot both make the first request for it.
        lease_id = hashlib.sha256(f"existing-key\0{token.label}\0{key.key_id.hex()}"
                                  .encode()).hexdigest()
        try:
            lease = await asyncio.to_thread(store.intent_lease, lease_id)
        except LeaseHeldError:
            raise InputError(f"{what} is being given a request by another tui-csr process "
                             "right now; look again once it is done.", field="key") from None
        try:
            owners = [r for r in await asyncio.to_thread(store.list_requests, None)
                      if r.key_id == key.key_id.hex() and r.token_label == token.label
                      and r.status is not Status.RETIRED]
            if owners:
                raise InputError(f"{what} belongs to request '{owners[0].label}' "
                                 f"({owners[0].id[:8]}); renew that request instead.",
                                 field="key")
            busy = [i for i in await asyncio.to_thread(store.list_intents)
                    if key.key_id.hex() in i.key_ids and i.token_label == token.label]
            if busy:
                raise InputError(f"{what} is a key pair tui-csr is generating or left behind; "
                                 "see `tui-csr orphans`.", field="key")
            label = params.label or ""
            if not label.strip() and key.label:
                label = await asyncio.to_thread(self.generation.free_label, key.label)
            return await self.generation.sign_and_record(
                replace(params, key_spec=spec.name), key.key_id, label, key.spki_der,
                "generate-existing-key", key_label=key.label or None)
        finally:
            await asyncio.to_thread(lease.release)


def explicit_profile(request: Request) -> str | None:
    """The profile the request was made with by ``--profile`` (not through a group), if any:
    a renewal asks for it again (its groups' profiles apply by themselves)."""
    for applied in request.profiles or []:
        if applied.get("source") == "--profile" and isinstance(applied.get("name"), str):
            return applied["name"]
    return None


def _maybe_get(store, request_id: str) -> Request | None:  # (Store, str)
    from tui_csr.errors import NotFoundError

    try:
        return store.get_request(request_id)
    except NotFoundError:
        return None


def _same_token(request: Request, token_label: str, doing: str) -> None:
    if request.token_label and token_label and request.token_label != token_label:
        raise InputError(f"Request '{request.label}' lives on token '{request.token_label}', "
                         f"not on '{token_label}'; open that token to {doing}.", field="token")


def _token_matches(selector: KeySelector, ctx: ServiceContext, label: str) -> None:
    """Refuse a URI naming another token than the one open (label, serial, maker, model)."""
    info = ctx.token_info
    checks = [("token", selector.token, label),
              ("serial", selector.serial, info.serial if info else None),
              ("manufacturer", selector.manufacturer, info.manufacturer if info else None),
              ("model", selector.model, info.model if info else None)]
    for name, wanted, have in checks:
        if wanted is not None and have is not None and wanted.strip() != have.strip():
            raise InputError(f"The key's URI names {name} '{wanted}', but the open token has "
                             f"'{have}'; choose the token with --token.", field="key")
