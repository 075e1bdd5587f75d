"""Key generation under a write-ahead intent, and the orphan scan that reads the intents.

No bookkeeping object is put on the token. Before a key pair is generated the store durably
records an :class:`~tui_csr.core.models.Intent` (its label, the CKA_ID it is created with and,
before any rewrite, the id it is rewritten to); the write that adds the pair's request closes
it, and so does a failed generation once its pair is confirmed destroyed. A crash at any moment
therefore leaves nothing, or an open intent whose pair :func:`scan` finds:

- an open intent whose worker is gone (its lease is free, see :mod:`tui_csr.store.leases`) and
  whose pair is on the token: an orphan, to adopt or destroy;
- such an intent whose pair is not on the token (a crash before generation, or after a
  destroy): closed quietly;
- a pending record whose private key is gone from the token.

Data folders made by earlier versions put a CKO_DATA marker on the token for each key, labelled
with the store's id: a marked key of this store without a record is still an orphan, and its
marker is removed once the key has a record or is destroyed.

Every PKCS#11 call goes through the async token facade; store calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_csr import crashpoint
from tui_csr.core.models import AuditEntry, Intent, IntentState, Request, Status, utcnow
from tui_csr.errors import InputError, StoreError, TokenError
from tui_csr.store.leases import LeaseHeldError

if TYPE_CHECKING:
    from tui_csr.core.keyspec import KeySpec
    from tui_csr.hsm.keys import KeyPair, TokenKey
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.store.leases import Lease
    from tui_csr.store.repo import Store

#: How often a fresh CKA_ID is drawn when the store already knows the one drawn (2-byte ids).
_ID_ATTEMPTS = 8


@dataclass(frozen=True)
class OrphanKey:
    """A key pair on the token that this data folder made and that has no record.

    ``intent`` is the open intent that names it; ``None`` for a key found by the token marker
    of an earlier version."""

    key_id: bytes
    label: str
    has_private: bool
    has_public: bool
    intent: Intent | None = None

    @property
    def legacy(self) -> bool:
        """True when only an earlier version's token marker names the key."""
        return self.intent is None


@dataclass(frozen=True)
class OrphanReport:
    """Keys tui-csr made that have no record, and pending records whose key is gone."""

    keys_without_record: list[OrphanKey]
    records_without_key: list[Request]

    @property
    def empty(self) -> bool:
        """True when token and store agree."""
        return not self.keys_without_record and not self.records_without_key


@dataclass(frozen=True)
class Adoptable:
    """An orphan key pair claimed for adoption: record it closing ``intent_id`` (if any)."""

    key_id: bytes
    label: str
    spki_der: bytes
    intent_id: str | None


def on_token(intent: Intent, token_label: str, token_serial: str | None) -> bool:
    """Whether ``intent`` was made on this token (by serial where both are known)."""
    if intent.token_serial and token_serial:
        return intent.token_serial == token_serial
    return intent.token_label == token_label


# -- generation -----------------------------------------------------------------------------

Record = Callable[[bytes, "KeyPair", str], Awaitable[Request]]
"""``record(key_id, pair, intent_id)``: sign, verify and store the request for the pair whose
CKA_ID is now ``key_id``, closing ``intent_id`` in the store write (``add_request``)."""


async def generate(store: Store, token: AsyncToken, *, spec: KeySpec, label: str,
                   store_id: str, user: str, token_serial: str | None, record: Record,
                   always_authenticate: bool = False) -> Request:
    """Generate a key pair under a write-ahead intent and have ``record`` store its request.

    Order: lease, intent (durable), key pair with the intent's CKA_ID, the rewrite target
    recorded, CKA_ID rewritten to the public key's SHA-1 where the token allows it, then
    ``record``. Any failure after the intent: the pair is destroyed and the intent closed once
    that is confirmed; a pair that cannot be destroyed is reported (naming ``tui-csr
    orphans``), and its intent stays open for the next scan.
    """
    from tui_csr.hsm.keys import key_id_for

    intent, lease = await _open_intent(store, token, spec=spec, label=label,
                                       store_id=store_id, user=user, token_serial=token_serial)
    try:
        crashpoint.reached("after-intent")
        try:
            pair = await token.generate_keypair(spec, label, bytes.fromhex(intent.key_id),
                                                always_authenticate=always_authenticate)
        except BaseException as exc:
            await asyncio.shield(_settle(store, token, intent, exc))
            raise
        crashpoint.reached("after-keygen")
        try:
            key_id = pair.key_id
            if token.profile.key_id_mutable:
                target = key_id_for(pair.spki_der)
                if target != key_id:
                    intent = await asyncio.to_thread(store.set_intent_target, intent.id,
                                                     target.hex())
                    key_id = await token.set_key_id(key_id, target)
                    crashpoint.reached("after-id-rewrite")
            return await record(key_id, pair, intent.id)
        except BaseException as exc:
            # Shielded: a cancelled worker must still not leave a key behind untracked.
            await asyncio.shield(_settle(store, token, intent, exc))
            raise
    finally:
        await asyncio.to_thread(lease.release)


async def _open_intent(store: Store, token: AsyncToken, *, spec: KeySpec, label: str,
                       store_id: str, user: str,
                       token_serial: str | None) -> tuple[Intent, Lease]:
    """Take a lease and durably record a new intent under it (a fresh CKA_ID when the store
    already knows the one drawn)."""
    for attempt in range(_ID_ATTEMPTS):
        key_id = await token.new_key_id()
        intent = Intent(id=uuid.uuid4().hex, store_id=store_id, label=label,
                        key_id=key_id.hex(), key_spec=spec.name, token_label=token.label,
                        created_by=user, created=utcnow(), token_serial=token_serial)
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
    raise AssertionError("unreachable")  # pragma: no cover


async def _settle(store: Store, token: AsyncToken, intent: Intent, exc: BaseException) -> None:
    """After a failure: destroy whatever the intent's pair left on the token and close the
    intent once nothing is left. When that cannot be confirmed the intent stays open (the next
    scan finds the pair) and, for an ordinary error, the user is told so: a TokenError naming
    ``tui-csr orphans`` is raised from the original error."""
    try:
        intent = await asyncio.to_thread(store.get_intent, intent.id)  # the latest target
    except StoreError:
        pass
    ids = [bytes.fromhex(k) for k in intent.key_ids]
    try:
        for key_id in ids:
            await token.destroy(key_id)
        present = {k.key_id for k in await token.list_keys() if k.has_private or k.has_public}
    except TokenError as err:
        checked, why = False, err.message.rstrip(".")
    else:
        if not any(key_id in present for key_id in ids):
            with contextlib.suppress(StoreError):  # the next scan closes it, seeing no key
                await asyncio.to_thread(store.close_intent, intent.id, IntentState.DESTROYED)
            return
        checked, why = True, "it is still there after destroying it"
    first = str(getattr(exc, "message", exc)).rstrip(".") or type(exc).__name__
    if not isinstance(exc, Exception) or "tui-csr orphans" in first:
        return  # interrupted (that stays the outcome), or the error already says it
    what = f"key pair '{intent.label}' ({ids[-1].hex()})"
    if checked:
        tail = (f"The {what} could not be removed from token '{token.label}' ({why}); "
                "`tui-csr orphans` lists it and can destroy it.")
    else:
        tail = (f"Whether the {what} was left on token '{token.label}' could not be checked "
                f"({why}); `tui-csr orphans` lists it if so, and can destroy it.")
    raise TokenError(f"{first}. {tail}", field="token", code=getattr(exc, "code", None)) from exc


# -- the orphan scan ----------------------------------------------------------------------------

async def _idle_intents(store: Store, token_label: str,
                        token_serial: str | None) -> list[Intent]:
    """Open intents of this token whose worker is gone: their lease was free, and they were
    still open when read again afterwards (a worker closes its intent before letting go)."""
    def read() -> list[Intent]:
        candidates = [i for i in store.list_intents()
                      if on_token(i, token_label, token_serial)]
        free = {i.id for i in candidates if not store.intent_in_progress(i.id)}
        return [i for i in store.list_intents() if i.id in free]

    return await asyncio.to_thread(read)


def _present(keys: Sequence[TokenKey], intent: Intent) -> list[TokenKey]:
    ids = {bytes.fromhex(k) for k in intent.key_ids}
    return [k for k in keys if k.key_id in ids and (k.has_private or k.has_public)]


def _as_orphan(found: Sequence[TokenKey], intent: Intent | None) -> OrphanKey:
    # After a rewrite cut short the public and private key carry different ids: name the
    # private one (what a destroy or adoption must reach), and say what exists at all.
    best = next((k for k in found if k.has_private), found[0])
    return OrphanKey(best.key_id, intent.label if intent is not None else best.label,
                     any(k.has_private for k in found), any(k.has_public for k in found),
                     intent)


async def scan(store: Store, token: AsyncToken, store_id: str,
               token_serial: str | None) -> OrphanReport:
    """Compare the token with the store (see the module's docstring). Closes the open intents
    whose pair never came, and removes the earlier versions' markers no longer needed."""
    records = await asyncio.to_thread(store.list_requests, None)  # before the token's list:
    idle = await _idle_intents(store, token.label, token_serial)  # a record read now has its
    keys = await token.list_keys()                                  # key in the list below
    known = {r.key_id for r in records}
    orphans: list[OrphanKey] = []
    claimed: set[bytes] = set()
    for intent in idle:
        found = _present(keys, intent)
        if any(k.key_id.hex() in known for k in found):
            continue  # cannot happen (the record's write closes the intent); never an orphan
        if found:
            orphans.append(_as_orphan(found, intent))
            claimed |= {k.key_id for k in found}
        else:  # no pair: the worker died before generating it (or after destroying it)
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(store.close_intent, intent.id, IntentState.ABANDONED)
    stale: list[bytes] = []
    for k in keys:
        if not (k.marked and k.store_tag == store_id):
            continue  # not marked, or another data folder's key sharing the token
        if k.key_id.hex() in known or not (k.has_private or k.has_public):
            stale.append(k.key_id)  # its key has a record, or is gone: the marker is not needed
        elif k.key_id not in claimed:
            orphans.append(_as_orphan([k], None))
    if stale:
        with contextlib.suppress(TokenError):  # best effort: the next scan tries again
            await token.remove_legacy_markers(stale)
    on_token_ids = {k.key_id.hex() for k in keys if k.has_private}
    lost = [r for r in records if r.status is Status.PENDING and r.token_label == token.label
            and r.key_id not in on_token_ids]
    return OrphanReport(orphans, lost)


# -- repairing ------------------------------------------------------------------------------------

def parse_key_id(text: str) -> bytes:
    """A CKA_ID typed in hex (colons allowed); InputError when it is not."""
    try:
        value = bytes.fromhex(text.replace(":", "").strip())
    except ValueError as exc:
        raise InputError(f"Key id '{text}' is not hexadecimal.", field="key_id") from exc
    if not value:
        raise InputError("The key id is empty.", field="key_id")
    return value


@dataclass
class _Claim:
    key_id: bytes
    intent: Intent | None
    found: list[TokenKey]
    lease: Lease | None


async def _claim(store: Store, token: AsyncToken, store_id: str, token_serial: str | None,
                 key_id: bytes, doing: str) -> _Claim:
    """The orphan named ``key_id``, its lease held (release it!); InputError when the key has a
    record, is being generated right now, or is not one of this data folder's orphans."""
    records = await asyncio.to_thread(store.list_requests, None)
    if any(r.key_id == key_id.hex() for r in records):
        raise InputError(f"Key {key_id.hex()} belongs to a request; delete the request "
                         "instead.", field="key_id")
    mine = [i for i in await asyncio.to_thread(store.list_intents)
            if on_token(i, token.label, token_serial) and key_id.hex() in i.key_ids]
    if mine:
        intent = mine[0]
        try:
            lease = await asyncio.to_thread(store.intent_lease, intent.id)
        except LeaseHeldError:
            raise InputError(f"Key {key_id.hex()} is being generated or {doing} by another "
                             "tui-csr process right now; look again once it is done.",
                             field="key_id") from None
        try:
            intent = await asyncio.to_thread(store.get_intent, intent.id)
            if intent.state is not IntentState.OPEN:
                raise InputError(f"Key {key_id.hex()} was handled by another tui-csr process "
                                 "meanwhile.", field="key_id")
            return _Claim(key_id, intent, _present(await token.list_keys(), intent), lease)
        except BaseException:
            await asyncio.to_thread(lease.release)
            raise
    found = [k for k in await token.list_keys()
             if k.key_id == key_id and k.marked and k.store_tag == store_id
             and (k.has_private or k.has_public)]
    if not found:
        raise InputError(f"Key {key_id.hex()} is not a tui-csr key on token "
                         f"'{token.label}'.", field="key_id")
    return _Claim(key_id, None, found, None)


async def destroy_orphan(store: Store, token: AsyncToken, store_id: str,
                         token_serial: str | None, user: str, key_id_hex: str) -> int:
    """Destroy an orphan key pair (refused for keys with a record); returns how many objects
    were destroyed. Its intent is closed (with the audit entry) once the pair is confirmed
    gone, its marker (earlier versions) removed."""
    key_id = parse_key_id(key_id_hex)
    claim = await _claim(store, token, store_id, token_serial, key_id, "destroyed")
    try:
        ids = ([bytes.fromhex(k) for k in claim.intent.key_ids] if claim.intent is not None
               else [key_id])
        count = 0
        for kid in ids:
            count += await token.destroy(kid)
        audit = AuditEntry("destroy-orphan", user, key_id.hex(), f"{count} objects destroyed")
        present = {k.key_id for k in await token.list_keys() if k.has_private or k.has_public}
        if any(kid in present for kid in ids):
            raise TokenError(f"Key {key_id.hex()} is still on token '{token.label}' after "
                             "destroying it; `tui-csr orphans` keeps listing it.",
                             field="token")
        if claim.intent is not None:
            await asyncio.to_thread(store.close_intent, claim.intent.id, IntentState.DESTROYED,
                                    audit)
        else:
            await asyncio.to_thread(store.add_audit, audit)
        with contextlib.suppress(TokenError):  # a leftover marker names no key: harmless
            await token.remove_legacy_markers(ids)
        return count
    finally:
        if claim.lease is not None:
            await asyncio.to_thread(claim.lease.release)


@asynccontextmanager
async def adopting(store: Store, token: AsyncToken, store_id: str, token_serial: str | None,
                   key_id_hex: str) -> AsyncIterator[Adoptable]:
    """Claim an orphan key pair for adoption: the ``with`` block records a request for it
    (closing ``intent_id`` in that write); afterwards its marker (earlier versions) goes."""
    key_id = parse_key_id(key_id_hex)
    claim = await _claim(store, token, store_id, token_serial, key_id, "adopted")
    try:
        privates = [k for k in claim.found if k.has_private]
        if not privates:
            raise InputError(f"Key {key_id.hex()} has no private key on token "
                             f"'{token.label}' any more; destroy it instead.", field="key_id")
        use = privates[0].key_id
        if not privates[0].has_public and claim.intent is not None:
            # A rewrite of the CKA_ID cut short: the public key already has the new id.
            target = claim.intent.final_key_id
            if target is None or not any(k.has_public for k in claim.found):
                raise InputError(f"Key {key_id.hex()} has no public key on token "
                                 f"'{token.label}'; destroy it instead.", field="key_id")
            use = await token.set_key_id(use, bytes.fromhex(target))
        spki = await token.public_key_spki(use)
        label = claim.intent.label if claim.intent is not None else privates[0].label
        yield Adoptable(use, label, spki, claim.intent.id if claim.intent else None)
        ids = ([bytes.fromhex(k) for k in claim.intent.key_ids] if claim.intent is not None
               else [key_id])
        with contextlib.suppress(TokenError):
            await token.remove_legacy_markers(ids)
    finally:
        if claim.lease is not None:
            await asyncio.to_thread(claim.lease.release)
