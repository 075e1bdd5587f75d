"""Generating a request: validate, make the key pair on the token, have it sign the CSR, verify
the signature in software, store the record. No key pair is left untracked: each is made under a
write-ahead intent in the store (see :mod:`tui_csr.services.orphans`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from tui_csr import crashpoint
from tui_csr.core.models import AuditEntry, Intent, IntentState, Request, Status, utcnow
from tui_csr.core.rules import (
    GenerateParams,
    ValidatedRequest,
    default_label,
    free_label,
    validate_label,
    validate_request,
)
from tui_csr.errors import InputError, StoreError, TokenError

if TYPE_CHECKING:
    from tui_csr.core.dn import DistinguishedName
    from tui_csr.hsm.keys import KeyPair
    from tui_csr.services.context import ServiceContext
    from tui_csr.store.leases import Lease

Progress = Callable[[str], None]

#: How often a fresh CKA_ID is drawn when the store already knows the one drawn (2-byte ids).
_ID_ATTEMPTS = 8


class Generation:
    """Validate and generate requests over the shared context."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # -- checks without a key ------------------------------------------------------------------
    def validate(self, params: GenerateParams) -> ValidatedRequest:
        """Check everything that needs no token; raises InputError naming the field.

        Runs before any key exists, so a refusal leaves the token as it was.
        """
        from tui_csr.core.profiles import all_profiles

        store = self.ctx.store
        groups = store.list_groups()

        def attestation_problem() -> str | None:  # asked only when a profile requires one
            from tui_csr.attestation.support import attestation_support

            return attestation_support(self.ctx.settings, self.ctx.token_info)

        return validate_request(
            params, existing_groups=[g.name for g in groups],
            label_taken=lambda label: store.find_request_by_label(label) is not None,
            san_supported=self.ctx.settings.san_supported, today=self.ctx.today(),
            group_policies={g.name: g.policy for g in groups},
            profiles=all_profiles(store.list_profiles()),
            attestation_problem=attestation_problem)

    def free_label(self, base: str) -> str:
        """``base`` made unique among the store's labels."""
        store = self.ctx.store
        return free_label(base, lambda label: store.find_request_by_label(label) is not None)

    async def spec_support(self) -> dict[str, str | None]:
        """Every key spec name -> None when the token can make it, else the reason it cannot."""
        from tui_csr.core.keyspec import KEY_SPECS

        token = self.ctx.require_token()
        return {name: await token.supports(spec, ec_sizes=True)
                for name, spec in KEY_SPECS.items()}

    async def label_problem(self, label: str) -> str | None:
        """None when ``label`` is a valid key label free in the store and on the token; else the
        one-sentence reason (for the wizard's label field)."""
        try:
            value = validate_label(label)
        except InputError as exc:
            return exc.message
        if await asyncio.to_thread(self.ctx.store.find_request_by_label, value) is not None:
            return f"A request labelled '{value}' already exists."
        token = self.ctx.token
        if token is not None and await token.label_in_use(value):
            return f"Key label '{value}' is already used on token '{token.label}'."
        return None

    async def suggest_label(self, dn: DistinguishedName) -> str:
        """The default label for ``dn`` (CN and date), made unique in the store."""
        return await asyncio.to_thread(self.free_label, default_label(dn, self.ctx.today()))

    # -- generating ----------------------------------------------------------------------------
    async def generate(self, params: GenerateParams,
                       progress: Progress | None = None, *,
                       renews: str | None = None, label_checked: bool = False) -> Request:
        """Validate, generate the key pair on the token, have it sign the CSR, verify the
        signature in software and store the request.

        The key pair is generated under a write-ahead intent (see
        :mod:`tui_csr.services.orphans`): lease, intent (durable), pair with the intent's
        CKA_ID and label, CKA_ID rewritten to the public key's SHA-1 where the token allows it
        (no store write: an orphan scan recognises the rewritten pair by its label and that
        id), signature, verification, then the record, which closes the intent in the same
        store write. On any failure after the intent the pair is destroyed and the
        intent closed once that is confirmed; a pair that cannot be destroyed is reported with a
        sentence naming ``tui-csr orphans`` and its intent stays open for the next scan.

        ``label_checked``: the caller has checked the label against the token already (a
        batch scans the token's labels once, :func:`tui_csr.batch.token_labels`), so no
        search is made for it here.
        """
        v = await self.prepare(params, label_checked=label_checked)
        intent, lease = await self._open_intent(v)
        return await self.generate_opened(v, intent, lease, progress, renews=renews)

    async def prepare(self, params: GenerateParams, *,
                      label_checked: bool = False) -> ValidatedRequest:
        """The checks of :meth:`generate` before its intent: validation, the key spec on the
        token and (unless ``label_checked``) the label on the token. No store write."""
        v = await asyncio.to_thread(self.validate, params)
        token = self.ctx.require_token()
        reason = await token.supports(v.spec)
        if reason:
            raise InputError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
        if not label_checked and await token.label_in_use(v.label):
            if params.label and params.label.strip():
                raise InputError(f"Key label '{v.label}' is already used on token "
                                 f"'{token.label}'.", field="label")
            # A default label may collide with a key made elsewhere (another data folder,
            # another tool): take the next free suffix instead of refusing.
            v = await self._free_token_label(v)
        return v

    async def generate_opened(self, v: ValidatedRequest, intent: Intent, lease: Lease,
                              progress: Progress | None = None, *,
                              renews: str | None = None) -> Request:
        """:meth:`generate` from its open intent on: ``intent`` is durably open for ``v``
        (:meth:`open_intents`, or :meth:`generate`'s own) and ``lease`` is its lease, held by
        the caller and released here whatever happens."""
        say = progress or (lambda _msg: None)
        try:
            token = self.ctx.require_token()
            crashpoint.reached("after-intent")
            say(f"Generating {v.spec.display} key on token {token.label}")
            try:
                pair = await token.generate_keypair(
                    v.spec, v.label, bytes.fromhex(intent.key_id),
                    always_authenticate=v.always_authenticate)
            except BaseException as exc:
                # The token destroys what a failed generation made, or says it could not
                # (naming `tui-csr orphans`): only the intent is left to settle.
                await asyncio.shield(self._settle(intent, exc, report=False))
                raise
            crashpoint.reached("after-keygen")
            # The id the pair may be rewritten to, known before any store write: destroyed on
            # failure even when the store cannot say it was recorded (unreachable, failed).
            target = self._rewrite_target(pair)
            try:
                key_id = await self._final_key_id(pair)
                return await self.record(v, key_id, pair.spki_der,
                                         "renew" if renews else "generate", say,
                                         close_intent=intent.id, renews=renews, pair=pair)
            except BaseException as exc:
                # Shielded: a cancelled worker must still not leave a key behind untracked.
                await asyncio.shield(self._settle(intent, exc, extra_ids=target))
                raise
        finally:
            # Directly, not in a thread (an unlink and a close): a second cancellation must
            # not skip it. The kernel would drop the lock at exit anyway.
            lease.release()

    async def _open_intent(self, v: ValidatedRequest) -> tuple[Intent, Lease]:
        """Take a lease and durably record a new intent under it: before any key exists. A
        fresh CKA_ID is drawn when the store already knows the one drawn (2-byte ids)."""
        token = self.ctx.require_token()
        store = self.ctx.store
        info = self.ctx.token_info
        store_id = await self.ctx.store_tag()
        for attempt in range(_ID_ATTEMPTS):
            key_id = await token.new_key_id()
            intent = Intent(id=uuid.uuid4().hex, store_id=store_id, label=v.label,
                            key_id=key_id.hex(), key_spec=v.spec.name, token_label=token.label,
                            created_by=self.ctx.user, created=utcnow(),
                            token_serial=info.serial if info else None)
            lease = await asyncio.to_thread(store.intent_lease, intent.id)
            try:
                await asyncio.to_thread(store.open_intent, intent)
            except InputError as exc:
                await asyncio.to_thread(lease.release)
                if exc.field == "key_id" and attempt < _ID_ATTEMPTS - 1:
                    continue
                raise
            except BaseException:
                await asyncio.to_thread(lease.release)
                raise
            return intent, lease
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def open_intents(self, vs: Sequence[ValidatedRequest]) -> list[tuple[Intent, Lease]]:
        """The intents of several requests (a batch's chunk), each with its CKA_ID drawn and
        its lease held, recorded in one durable store write before any of their keys exists;
        pass each to :meth:`generate_opened`, or to :meth:`abandon` when it will not be made.
        Fresh CKA_IDs are drawn when the store knows one of those drawn (2-byte ids)."""
        token = self.ctx.require_token()
        store = self.ctx.store
        info = self.ctx.token_info
        store_id = await self.ctx.store_tag()
        for attempt in range(_ID_ATTEMPTS):
            intents = [Intent(id=uuid.uuid4().hex, store_id=store_id, label=v.label,
                              key_id=(await token.new_key_id()).hex(), key_spec=v.spec.name,
                              token_label=token.label, created_by=self.ctx.user,
                              created=utcnow(), token_serial=info.serial if info else None)
                       for v in vs]
            held: list[Lease] = []

            def open_all(intents: list[Intent] = intents, held: list[Lease] = held) -> None:
                for intent in intents:
                    held.append(store.intent_lease(intent.id))
                store.open_intents(intents)

            try:
                await asyncio.to_thread(open_all)
            except InputError as exc:
                for lease in held:
                    lease.release()
                if exc.field == "key_id" and attempt < _ID_ATTEMPTS - 1:
                    continue
                raise
            except BaseException:
                for lease in held:
                    lease.release()
                raise
            return list(zip(intents, held, strict=True))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def abandon(self, opened: Sequence[tuple[Intent, Lease]]) -> None:
        """Close intents from :meth:`open_intents` whose keys were never asked for (a batch
        stopped first), under their leases, then release those. The leases are released
        whatever happens (directly: a cancellation must not skip it); a close that did not
        happen is left to the next orphan scan, which closes an intent without a pair as
        abandoned."""
        store = self.ctx.store

        def close_all() -> None:
            for intent, _lease in opened:
                with contextlib.suppress(StoreError):
                    store.close_intent(intent.id, IntentState.ABANDONED)

        try:
            if opened:
                await asyncio.to_thread(close_all)
        finally:
            for _intent, lease in opened:
                lease.release()

    def _rewrite_target(self, pair: KeyPair) -> tuple[bytes, ...]:
        """The CKA_ID :meth:`_final_key_id` rewrites ``pair`` to, when the token allows it."""
        from tui_csr.hsm.keys import key_id_for

        target = key_id_for(pair.spki_der)
        token = self.ctx.require_token()
        return (target,) if token.profile.key_id_mutable and target != pair.key_id else ()

    async def _final_key_id(self, pair: KeyPair) -> bytes:
        """Rewrite the pair's CKA_ID to the SHA-1 of its public key where the token allows it;
        returns the id the pair has now. Nothing is written to the store first: a crash
        during or after the rewrite leaves objects under the intent's id or under the SHA-1
        of their own public key with the intent's label, which an orphan scan attributes to
        the intent (:meth:`tui_csr.services.orphans.Orphans._attribute`)."""
        from tui_csr.hsm.keys import key_id_for

        token = self.ctx.require_token()
        target = key_id_for(pair.spki_der)
        if not token.profile.key_id_mutable or target == pair.key_id:
            return pair.key_id
        key_id = await token.set_key_id(pair.key_id, target)
        crashpoint.reached("after-id-rewrite")
        return key_id

    async def _settle(self, intent: Intent, exc: BaseException, *, report: bool = True,
                      extra_ids: tuple[bytes, ...] = ()) -> None:
        """After a failure: destroy what the intent's pair left on the token and close the
        intent once nothing is left. When that cannot be confirmed the intent stays open (the
        next orphan scan finds the pair) and, with ``report`` and unless the error says so
        already, a TokenError naming ``tui-csr orphans`` is raised from the original error:
        never swallowed."""
        token = self.ctx.require_token()
        store = self.ctx.store
        with contextlib.suppress(StoreError):
            intent = await asyncio.to_thread(store.get_intent, intent.id)  # closed meanwhile?
        if intent.state is IntentState.RECORDED:
            return  # the record's write did land (it failed after): the key is recorded, keep it
        ids = [bytes.fromhex(k) for k in intent.key_ids]
        # ``extra_ids``: the rewrite target, which the intent does not name (it is not written
        # to the store): destroying an id with no objects is harmless.
        ids += [k for k in extra_ids if k not in ids]
        try:
            for key_id in ids:
                await token.destroy(key_id)
            left = {k.key_id for k in await token.list_keys() if k.has_private or k.has_public}
        except TokenError as err:
            checked, why = False, err.message.rstrip(".")
        else:
            if not any(key_id in left for key_id in ids):
                with contextlib.suppress(StoreError):  # else the next scan closes it: no key
                    await asyncio.to_thread(store.close_intent, intent.id,
                                            IntentState.DESTROYED)
                return
            checked, why = True, "it is still there after destroying it"
        first = str(getattr(exc, "message", exc)).rstrip(".") or type(exc).__name__
        if not report or not isinstance(exc, Exception) or "tui-csr orphans" in first:
            return  # interrupted (that stays the outcome), or the error already says it
        what = f"key pair '{intent.label}' ({ids[-1].hex()})"
        if checked:
            tail = (f"The {what} could not be removed from token '{token.label}' ({why}); "
                    "`tui-csr orphans` lists it and can destroy it.")
        else:
            tail = (f"Whether the {what} was left on token '{token.label}' could not be "
                    f"checked ({why}); `tui-csr orphans` lists it if so, and can destroy it.")
        raise TokenError(f"{first}. {tail}", field="token",
                         code=getattr(exc, "code", None)) from exc

    async def sign_and_record(self, params: GenerateParams, key_id: bytes, label: str,
                              spki_der: bytes, action: str,
                              close_intent: str | None = None, *, renews: str | None = None,
                              key_label: str | None = None) -> Request:
        """Validate ``params`` for an existing key pair (its spec comes from the public key),
        have the token sign the CSR and record it (closing ``close_intent`` in that write)."""
        from tui_csr.core.csr import spec_of_spki

        params = replace(params, key_spec=spec_of_spki(spki_der).name, label=label)
        v = await asyncio.to_thread(self.validate, params)
        return await self.record(v, key_id, spki_der, action, lambda _m: None,
                                 close_intent=close_intent, renews=renews, key_label=key_label)

    async def record(self, v: ValidatedRequest, key_id: bytes, spki_der: bytes, action: str,
                     say: Progress, close_intent: str | None = None, *,
                     renews: str | None = None, key_label: str | None = None,
                     pair: KeyPair | None = None) -> Request:
        """Sign the CSR for ``key_id`` on the token, verify it in software, store the record;
        the open intent ``close_intent`` is closed in the same store write."""
        # Imported here, not at the top: list, show and the TUI's start need no asn1crypto.
        from tui_csr.core.csr import assemble, build_tbs, signature_algorithm, to_pem, verify
        from tui_csr.hsm.keys import pkcs11_uri

        token = self.ctx.require_token()
        say(f"Signing the CSR on token {token.label}")
        tbs = build_tbs(v.dn, spki_der, v.sans, v.extensions)
        signature = await self._sign(key_id, tbs.dump(), v)
        der = assemble(tbs, signature_algorithm(v.spec, v.hash_alg, v.scheme), signature)
        verify(der)
        crashpoint.reached("after-sign")
        info = self.ctx.token_info
        request = Request(
            id=uuid.uuid4().hex, label=v.label, subject=v.dn.to_rfc4514(),
            subject_fields=v.dn.fields, sans=[(e.kind.value, e.value) for e in v.sans],
            key_spec=v.spec.name, hash=v.hash_alg.value, scheme=v.scheme.value,
            token_label=token.label, key_id=key_id.hex(),
            pkcs11_uri=pkcs11_uri(token.label, v.label if key_label is None else key_label,
                                  key_id),
            csr_pem=to_pem(der), groups=list(v.groups), owner=v.owner, created=utcnow(),
            created_by=self.ctx.user, status=Status.PENDING,
            token_serial=info.serial if info else None, renews=renews,
            extensions=None if v.extensions.empty else v.extensions.to_doc(),
            profiles=[dict(p) for p in v.profiles] or None,
            key_attributes=dict(pair.attributes) if pair and pair.attributes else None,
            key_forced=dict(pair.forced) if pair and pair.forced else None)
        say("Saving the request")
        audit = AuditEntry(action, self.ctx.user, request.id,
                           f"{v.label} {v.spec.name} {request.subject}")
        await asyncio.to_thread(partial(self.ctx.store.add_request, request, audit,
                                        close_intent=close_intent, renews=renews))
        return request

    async def _sign(self, key_id: bytes, data: bytes, v: ValidatedRequest) -> bytes:
        """The token's signature over ``data``; a key that needs a context-specific login
        (CKA_ALWAYS_AUTHENTICATE) is refused by the token before C_SignInit, and is then signed
        again with the PIN from :attr:`ServiceContext.pin_source`."""
        token = self.ctx.require_token()
        try:
            return await token.sign(key_id, data, v.spec, v.hash_alg, v.scheme)
        except TokenError as exc:
            if (exc.code != "CKR_USER_NOT_LOGGED_IN" or exc.field != "pin"
                    or self.ctx.pin_source is None):
                raise
        pin = await self.ctx.pin_source(token.label)
        return await token.sign(key_id, data, v.spec, v.hash_alg, v.scheme, pin=pin)

    async def _free_token_label(self, v: ValidatedRequest) -> ValidatedRequest:
        token = self.ctx.require_token()
        for n in range(2, 1000):
            label = f"{v.label}-{n}"
            if (await asyncio.to_thread(self.ctx.store.find_request_by_label, label) is None
                    and not await token.label_in_use(label)):
                return replace(v, label=label)
        raise InputError(f"No free key label near '{v.label}' on token '{token.label}'; give "
                         "a key label of your own.", field="label")
