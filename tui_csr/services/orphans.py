"""Orphans: keys this data folder made that have no record, and records whose key is gone.

No bookkeeping object is put on the token. Before a key pair is generated the store durably
records an :class:`~tui_csr.core.models.Intent` (see :mod:`tui_csr.services.generation`); the
write that adds the pair's request closes it, and so does a failed generation once its pair is
confirmed destroyed. A crash at any moment therefore leaves nothing, or an open intent that the
scan here finds:

- an open intent whose worker is gone (its lease is free, see :mod:`tui_csr.store.leases`) and
  whose pair is on the token: an orphan, to adopt or destroy;
- such an intent whose pair is not on the token (a crash before generation, or after a
  destroy): closed quietly;
- a pending record of this token whose private key is gone.

An intent whose lease is held belongs to a generation (or a repair) running right now, in this
or another process: it is nobody's orphan, and is left alone.

A pair carries the intent's CKA_ID until generation rewrites it to the SHA-1 of its public key
(where the token allows it); that target is not written to the store (it would cost a durable
write per key). A key is therefore the intent's when it carries one of the intent's ids, or
when its CKA_LABEL is the intent's label (labels are unique: the store and the token are checked
before generation), its CKA_ID is the SHA-1 of its own public key (what the rewrite makes), and
neither a record nor another open intent names that id (see :meth:`Orphans._attribute`). Of
several open intents with one label the newest is given the key, and none of them is closed as
abandoned while such a key is there, so a key is never lost track of; the cost is that a key
made elsewhere after this folder's generation died *before* making its key, with the same label
and a SHA-1 CKA_ID (p11tool's rule), would be offered as this folder's orphan until a scan has
closed that intent (every scan does).

Data folders made by earlier versions put a CKO_DATA marker on the token for each key, labelled
with the store's id: a marked key of this store without a record is still an orphan, and its
marker is removed once the key has a record or is destroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Intent, IntentState, Request, Status
from tui_csr.errors import InputError, StoreError, TokenError
from tui_csr.store.leases import LeaseHeldError

if TYPE_CHECKING:
    from tui_csr.core.rules import GenerateParams
    from tui_csr.hsm.keys import TokenKey
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.services.context import ServiceContext
    from tui_csr.services.generation import Generation
    from tui_csr.store.leases import Lease


@dataclass(frozen=True)
class OrphanKey:
    """A key pair on the token that this data folder made and that has no record.

    ``intent`` is the open intent naming it; ``None`` for a key found by the token marker of
    an earlier version (:attr:`legacy`)."""

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

    keys_without_record: Sequence[OrphanKey]
    records_without_key: Sequence[Request]

    @property
    def empty(self) -> bool:
        """True when token and store agree."""
        return not self.keys_without_record and not self.records_without_key


def on_token(intent: Intent, token_label: str, token_serial: str | None) -> bool:
    """Whether ``intent`` was made on this token (by serial where both are known)."""
    if intent.token_serial and token_serial:
        return intent.token_serial == token_serial
    return intent.token_label == token_label


def present(keys: Sequence[TokenKey], intent: Intent) -> list[TokenKey]:
    """The key objects (grouped by CKA_ID) of ``keys`` that carry one of the intent's ids."""
    ids = {bytes.fromhex(k) for k in intent.key_ids}
    return [k for k in keys if k.key_id in ids and (k.has_private or k.has_public)]


def _as_orphan(found: Sequence[TokenKey], intent: Intent | None) -> OrphanKey:
    # After a rewrite of the CKA_ID cut short, the public and the private key carry different
    # ids: name the private one (what an adoption needs), and say what exists at all.
    best = next((k for k in found if k.has_private), found[0])
    return OrphanKey(best.key_id, intent.label if intent is not None else best.label,
                     any(k.has_private for k in found), any(k.has_public for k in found), intent)


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
    """An orphan picked for a repair; its lease (for an intent's orphan) is held."""

    key_id: bytes
    intent: Intent | None
    found: list[TokenKey]
    lease: Lease | None

    @property
    def ids(self) -> list[bytes]:
        """Every CKA_ID the pair may carry: the intent's, and those its objects carry now."""
        if self.intent is None:
            return [self.key_id]
        ids = [bytes.fromhex(k) for k in self.intent.key_ids]
        return ids + [k.key_id for k in self.found if k.key_id not in ids]


class Orphans:
    """Compare the token with the store, and repair what a crash left."""

    def __init__(self, ctx: ServiceContext, generation: Generation) -> None:
        self.ctx = ctx
        self.generation = generation

    @property
    def _serial(self) -> str | None:
        info = self.ctx.token_info
        return info.serial if info else None

    async def _idle_intents(self, token: AsyncToken) -> list[Intent]:
        """Open intents of this token whose worker is gone: their lease was free, and they
        were still open when read again afterwards (a worker closes its intent before letting
        go of the lease, so such an intent stays open until someone repairs it)."""
        store, serial = self.ctx.store, self._serial

        def read() -> list[Intent]:
            candidates = [i for i in store.list_intents() if on_token(i, token.label, serial)]
            free = {i.id for i in candidates if not store.intent_in_progress(i.id)}
            return [i for i in store.list_intents() if i.id in free]

        return await asyncio.to_thread(read)

    def _close_abandoned(self, intent: Intent) -> None:
        """Close an idle intent whose pair is not on the token, under its lease (a repair that
        took the lease meanwhile closes it itself); best effort: the next scan tries again."""
        store = self.ctx.store
        with contextlib.suppress(LeaseHeldError, StoreError), store.intent_lease(intent.id):
            if store.get_intent(intent.id).state is IntentState.OPEN:
                store.close_intent(intent.id, IntentState.ABANDONED)

    def _open_here(self, token: AsyncToken) -> list[Intent]:
        """Every open intent of this token, running or not, oldest first."""
        serial = self._serial
        return [i for i in self.ctx.store.list_intents() if on_token(i, token.label, serial)]

    async def _attribute(self, token: AsyncToken, intents: Sequence[Intent],
                         keys: Sequence[TokenKey], known: set[str],
                         ) -> tuple[dict[str, list[TokenKey]], set[str]]:
        """For each of ``intents`` (every open intent of this token, oldest first as the store
        lists them, read after ``keys``, so that a key made meanwhile has its intent among
        them), the key objects that are its
        pair; and the ids of the intents that must not be closed as abandoned.

        By CKA_ID (:func:`present`), and by CKA_LABEL for a key whose CKA_ID was rewritten (the
        module's docstring): its id is named by no intent and no record (``known``), and is the
        SHA-1 of its own public key, read from the token. A label's key goes to the newest open
        intent with that label; while such a key is there (or several, which is given to
        none) no intent with the label is closed as abandoned."""
        pairs = {i.id: present(keys, i) for i in intents}
        unsure: set[str] = set()
        if not token.profile.key_id_mutable:
            return pairs, unsure  # no id is ever rewritten: the ids say everything
        named = {kid for i in intents for kid in i.key_ids} | known
        by_label: dict[str, list[Intent]] = defaultdict(list)
        for intent in intents:
            by_label[intent.label].append(intent)
        for label, group in by_label.items():
            loose = [k for k in keys if k.label == label and k.has_public
                     and k.key_id.hex() not in named]
            loose = [k for k in loose if await self._rewritten(token, k.key_id)]
            if not loose:
                continue
            if len(loose) == 1:
                pairs[group[-1].id].append(loose[0])  # the newest (the store lists oldest first)
            unsure |= {i.id for i in group}
        return pairs, unsure

    @staticmethod
    async def _rewritten(token: AsyncToken, key_id: bytes) -> bool:
        """True when the public key ``key_id`` carries the SHA-1 of itself as CKA_ID: the id
        generation rewrites a pair to (:func:`tui_csr.hsm.keys.key_id_for`)."""
        from tui_csr.hsm.keys import key_id_for

        try:
            return key_id_for(await token.public_key_spki(key_id)) == key_id
        except (TokenError, ValueError):
            return False

    async def scan(self) -> OrphanReport:
        """Compare the token with the store (see the module's docstring). Closes the open
        intents whose pair never came, and removes earlier versions' markers no longer
        needed."""
        token = self.ctx.require_token()
        store = self.ctx.store
        tag = await self.ctx.store_tag()
        # The records before the token's list: a record read now has its key in that list
        # (the key is made first), unless it is being deleted right now.
        records = await asyncio.to_thread(store.list_requests, None)
        idle = {i.id for i in await self._idle_intents(token)}
        keys = await token.list_keys()
        known = {r.key_id for r in records}
        # Every open intent again, after the keys: one opened meanwhile names its key's label.
        opened = await asyncio.to_thread(self._open_here, token)
        pairs, unsure = await self._attribute(token, opened, keys, known)
        orphans: list[OrphanKey] = []
        claimed: set[bytes] = set()
        for intent in (i for i in opened if i.id in idle):
            found = pairs[intent.id]
            if any(k.key_id.hex() in known for k in found):
                continue  # a record's write closes its intent: not an orphan whatever this is
            if found:
                orphans.append(_as_orphan(found, intent))
                claimed |= {k.key_id for k in found}
            elif intent.id not in unsure:
                # No pair: its worker died before making it (or after destroying it).
                await asyncio.to_thread(self._close_abandoned, intent)
        stale: list[bytes] = []
        for k in keys:
            if not (k.marked and k.store_tag == tag):
                continue  # not marked, or marked by another data folder sharing the token
            if k.key_id.hex() in known:
                stale.append(k.key_id)  # its key has a record: the marker is not needed
            elif k.key_id not in claimed and (k.has_private or k.has_public):
                orphans.append(_as_orphan([k], None))
        if stale:
            with contextlib.suppress(TokenError):  # best effort: the next scan tries again
                await token.remove_legacy_markers(stale)
        with_private = {k.key_id.hex() for k in keys if k.has_private}
        lost = [r for r in records if r.status is Status.PENDING
                and r.token_label == token.label and r.key_id not in with_private]
        return OrphanReport(orphans, lost)

    async def _claim(self, key_id: bytes, doing: str) -> _Claim:
        """The orphan named ``key_id``, its lease held (release it!); InputError when the key
        has a record, is being worked on right now, or is not one of this folder's orphans."""
        token = self.ctx.require_token()
        store = self.ctx.store
        records = await asyncio.to_thread(store.list_requests, None)
        if any(r.key_id == key_id.hex() for r in records):
            raise InputError(f"Key {key_id.hex()} belongs to a request; delete the request "
                             "instead.", field="key_id")
        known = {r.key_id for r in records}

        async def pairs() -> tuple[list[Intent], dict[str, list[TokenKey]]]:
            keys = await token.list_keys()
            opened = await asyncio.to_thread(self._open_here, token)
            return opened, (await self._attribute(token, opened, keys, known))[0]

        opened, found_by = await pairs()
        mine = [i for i in opened if key_id.hex() in i.key_ids
                or any(k.key_id == key_id for k in found_by[i.id])]
        if mine:
            try:
                lease = await asyncio.to_thread(store.intent_lease, mine[0].id)
            except LeaseHeldError:
                raise InputError(f"Key {key_id.hex()} is being generated or {doing} by "
                                 "another tui-csr process right now; look again once it is "
                                 "done.", field="key_id") from None
            try:
                intent = await asyncio.to_thread(store.get_intent, mine[0].id)
                if intent.state is not IntentState.OPEN:
                    raise InputError(f"Key {key_id.hex()} was handled by another tui-csr "
                                     "process meanwhile.", field="key_id")
                found = (await pairs())[1].get(intent.id, [])
                if not found:
                    raise InputError(f"Key {key_id.hex()} is not on token '{token.label}' "
                                     "(any more).", field="key_id")
                return _Claim(key_id, intent, found, lease)
            except BaseException:
                await asyncio.to_thread(lease.release)
                raise
        tag = await self.ctx.store_tag()
        found = [k for k in await token.list_keys()
                 if k.key_id == key_id and k.marked and k.store_tag == tag
                 and (k.has_private or k.has_public)]
        if not found:
            raise InputError(f"Key {key_id.hex()} is not a tui-csr key on token "
                             f"'{token.label}'.", field="key_id")
        return _Claim(key_id, None, found, None)

    async def destroy(self, key_id_hex: str) -> int:
        """Destroy an orphan key pair (refused for keys with a record); returns how many
        objects were destroyed. Its intent is closed, with the audit entry, once the pair is
        confirmed gone; an earlier version's marker goes with it."""
        key_id = parse_key_id(key_id_hex)
        token = self.ctx.require_token()
        claim = await self._claim(key_id, "destroyed")
        try:
            count = 0
            for kid in claim.ids:
                count += await token.destroy(kid)
            left = {k.key_id for k in await token.list_keys() if k.has_private or k.has_public}
            if any(kid in left for kid in claim.ids):
                raise TokenError(f"Key {key_id.hex()} is still on token '{token.label}' after "
                                 "destroying it; `tui-csr orphans` keeps listing it.",
                                 field="token")
            audit = AuditEntry("destroy-orphan", self.ctx.user, key_id.hex(),
                               f"{count} objects destroyed")
            if claim.intent is not None:
                await asyncio.to_thread(self.ctx.store.close_intent, claim.intent.id,
                                        IntentState.DESTROYED, audit)
            else:
                await asyncio.to_thread(self.ctx.store.add_audit, audit)
            with contextlib.suppress(TokenError):  # a marker left names no key: harmless
                await token.remove_legacy_markers(claim.ids)
            return count
        finally:
            if claim.lease is not None:
                claim.lease.release()  # directly: a cancellation must not skip it

    async def adopt(self, key_id_hex: str, params: GenerateParams) -> Request:
        """Make a new CSR for an orphan key (subject, SANs and groups from ``params``) and
        record it, closing its intent in the same write, so the key is a request again."""
        async with self._adopting(parse_key_id(key_id_hex)) as (key_id, label, spki, intent):
            return await self.generation.sign_and_record(
                params, key_id, label, spki, action="adopt", close_intent=intent)

    @asynccontextmanager
    async def _adopting(self, key_id: bytes) -> AsyncIterator[tuple[bytes, str, bytes,
                                                                    str | None]]:
        token = self.ctx.require_token()
        claim = await self._claim(key_id, "adopted")
        try:
            privates = [k for k in claim.found if k.has_private]
            if not privates:
                raise InputError(f"Key {key_id.hex()} has no private key on token "
                                 f"'{token.label}'; destroy it instead.", field="key_id")
            use = privates[0].key_id
            if not privates[0].has_public:
                # A rewrite of the CKA_ID cut short: the public key has the new id already,
                # the SHA-1 of the public key, computed again as generation does.
                from tui_csr.hsm.keys import key_id_for

                publics = [k.key_id for k in claim.found if k.has_public]
                target = (key_id_for(await token.public_key_spki(publics[0]))
                          if claim.intent is not None and publics else None)
                if target is None or target != publics[0]:
                    raise InputError(f"Key {key_id.hex()} has no public key on token "
                                     f"'{token.label}'; destroy it instead.", field="key_id")
                use = await token.set_key_id(use, target)
            spki = await token.public_key_spki(use)
            label = claim.intent.label if claim.intent is not None else privates[0].label
            yield use, label, spki, claim.intent.id if claim.intent is not None else None
            with contextlib.suppress(TokenError):  # an earlier version's marker: not needed
                await token.remove_legacy_markers(claim.ids)
        finally:
            if claim.lease is not None:
                claim.lease.release()  # directly: a cancellation must not skip it
