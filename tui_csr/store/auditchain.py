"""The audit log's hash chain: every entry carries the hash of the one before it.

Entry number ``seq`` (1, 2, 3, ... in the order written) stores ``prev``, the hash of entry
``seq - 1`` (64 zeros for the first), and ``hash``, SHA-256 over a length-prefixed encoding of
``seq``, ``prev`` and the entry's text as stored (time, action, user, subject, detail). So an
entry altered after it was written no longer matches its hash, and one removed from the middle
breaks the link of the next. The PostgreSQL store also keeps the newest (seq, hash) in a row of
its own, so removing the newest entries is caught too. The PostgreSQL store computes the same
hash in SQL (tui_csr/store/pg_schema.py); :func:`entry_hash` is the reference.

A chain is evidence against edits made outside tui-csr, not a signature: whoever can rewrite
every entry and the head can also recompute them all.

Entries written before the chain existed (older TinyDB stores) carry no ``seq``: they come
before the first chained entry, are counted, and cannot be verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_csr.core.models import AuditEntry

GENESIS = "0" * 64
"""The ``prev`` of the first chained entry."""
_DOMAIN = b"tui-csr-audit-v1\n"
_TEXT_FIELDS = ("at", "action", "user", "subject", "detail")


def entry_hash(seq: int, prev: str, doc: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of entry ``seq`` with predecessor hash ``prev`` and the stored text
    fields of ``doc`` (``at`` exactly as stored, e.g. ``2026-12-01T10:00:00Z``)."""
    digest = hashlib.sha256(_DOMAIN)
    for part in (str(seq), prev, *(str(doc.get(name) or "") for name in _TEXT_FIELDS)):
        raw = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(raw) + raw + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class AuditLink:
    """One audit entry as stored, with its place in the chain (``seq`` 0: written before the
    chain existed)."""

    seq: int
    prev: str
    hash: str
    doc: dict[str, Any]

    @property
    def entry(self) -> AuditEntry:
        """The entry as a model."""
        return AuditEntry.from_doc(self.doc)


@dataclass(frozen=True)
class AuditChain:
    """The whole log, oldest first, and the head the store recorded (None where it keeps
    none)."""

    links: list[AuditLink]
    head: tuple[int, str] | None = None
    unchained: int = field(default=0)


def link(doc: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """``doc`` (an :meth:`AuditEntry.to_doc`) with ``seq``, ``prev`` and ``hash`` set to follow
    ``previous``, the newest chained document (None: this is the first)."""
    seq = int(previous["seq"]) + 1 if previous is not None else 1
    prev = str(previous["hash"]) if previous is not None else GENESIS
    return {**doc, "seq": seq, "prev": prev, "hash": entry_hash(seq, prev, doc)}


def newest_chained(docs: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The chained document with the highest ``seq`` among TinyDB's ``{doc id: doc}``."""
    if not docs:
        return None
    last = docs.get(str(max(map(int, docs))))
    if last is not None and isinstance(last.get("seq"), int):
        return last  # the usual case: the entry stored last is the newest chained one
    best: Mapping[str, Any] | None = None
    for doc in docs.values():
        seq = doc.get("seq")
        if isinstance(seq, int) and (best is None or seq > best["seq"]):
            best = doc
    return best


def chain_from_docs(docs: Iterable[Mapping[str, Any]]) -> AuditChain:
    """A TinyDB audit table's documents (in storage order) as a chain: unchained ones first,
    then the chained ones by ``seq``."""
    links: list[AuditLink] = []
    unchained = 0
    for doc in docs:
        seq = doc.get("seq")
        if isinstance(seq, int):
            links.append(AuditLink(seq, str(doc.get("prev", "")), str(doc.get("hash", "")),
                                   dict(doc)))
        else:
            unchained += 1
            links.append(AuditLink(0, "", "", dict(doc)))
    links.sort(key=lambda item: item.seq)
    return AuditChain(links, None, unchained)


def _name(item: AuditLink) -> str:
    return (f"entry #{item.seq} ({item.doc.get('action', '?')} of "
            f"{item.doc.get('subject', '?')!s} at {item.doc.get('at', '?')})")


def verify_audit_chain(chain: AuditChain | Sequence[AuditLink]) -> str | None:
    """None when every chained entry is intact and in place; else one sentence naming the
    first entry that was altered, removed or moved."""
    if not isinstance(chain, AuditChain):
        chain = AuditChain(list(chain))
    expected_seq, prev = 1, GENESIS
    seen_chained = False
    last: AuditLink | None = None
    for item in chain.links:
        if item.seq == 0:
            if seen_chained:
                return (f"The audit log has an entry without a hash after entry #{expected_seq - 1}"
                        f" ({item.doc.get('action', '?')} at {item.doc.get('at', '?')}): "
                        "it was inserted or its hash removed.")
            continue
        seen_chained = True
        if item.seq != expected_seq:
            if item.seq < expected_seq:
                return f"The audit log holds entry #{item.seq} twice."
            gap = (f"#{expected_seq}" if item.seq == expected_seq + 1
                   else f"#{expected_seq} to #{item.seq - 1}")
            return f"The audit log lacks entry {gap}: it was removed (the next is {_name(item)})."
        if item.prev != prev:
            return (f"The audit log's {_name(item)} does not follow entry #{item.seq - 1}: "
                    "one of them was altered or replaced.")
        if entry_hash(item.seq, item.prev, item.doc) != item.hash:
            return f"The audit log's {_name(item)} was altered after it was written."
        expected_seq, prev, last = item.seq + 1, item.hash, item
    if chain.head is not None:
        head_seq, head_hash = chain.head
        last_seq = last.seq if last is not None else 0
        if head_seq > last_seq:
            gap = f"#{head_seq}" if head_seq == last_seq + 1 else f"#{last_seq + 1} to #{head_seq}"
            return f"The audit log lacks its newest entries {gap}: they were removed."
        if head_seq < last_seq or head_hash != (last.hash if last is not None else GENESIS):
            return ("The audit log's newest entry does not match the head the store recorded: "
                    "it was altered, or entries were added outside tui-csr.")
    return None
