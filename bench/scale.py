"""A large store made fast: real CSRs from the token, copied under new ids and labels.

Generating 10,000 keys on SoftHSM would take minutes; the store's cost depends on the documents'
size and shape, not on the keys being distinct. So a handful of real requests (P-256, P-384,
RSA-2048, RSA-3072, made by the service on a throwaway token) are cloned, each clone with its
own id, label, CN, key id and creation time, and written with their audit entries in one write.

The clones name another token (``OTHER_TOKEN``): their key ids are made up, and on the bench's own
token the TUI's start-up scan would report every one of them as a request whose key is gone (and
open its report over the table). The seed requests stay in the store beside them, so the seed
keys on the token have their records and the scan finds nothing: a store as an admin has it.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import timedelta
from pathlib import Path

from bench.common import GROUP, PIN, Token

#: The token the cloned requests name (not the bench's: see above).
OTHER_TOKEN = "bench-elsewhere"
SPECS = ("P-256", "P-256", "P-256", "P-384", "RSA2048", "RSA2048", "RSA3072")


async def _real_requests(token: Token) -> list[dict]:
    from tui_csr.service import CsrService, GenerateParams

    service = CsrService.create(token.settings())
    await service.open_token()
    await service.login(PIN)
    docs = []
    for n, spec in enumerate(SPECS):
        cn = f"seed{n}.bench.example.com"
        req = await service.generate(GenerateParams(
            key_spec=spec, fields={"CN": cn, "O": "Bench Ltd", "OU": "PKI", "C": "GB"},
            sans=[("dns", cn), ("dns", f"www.{cn}")], groups=[GROUP], owner="alice",
            label=f"seed-{n}"))
        docs.append(req.to_doc())
    await service.token.close()
    return docs


def seed_documents(token: Token, cache: Path) -> list[dict]:
    """Real request documents (made once per bench run, then read from ``cache``)."""
    if cache.exists():
        return json.loads(cache.read_text(encoding="utf-8"))
    docs = asyncio.run(_real_requests(token))
    cache.write_text(json.dumps(docs), encoding="utf-8")
    return docs


def fill_store(data_dir: Path, seeds: list[dict], count: int) -> None:
    """Put ``count`` requests (and their ``generate`` audit entries) into the store at
    ``data_dir``, which already holds the group, in one write; the ``seeds`` themselves (made
    on the bench token) are kept too, so the store holds ``count + len(seeds)`` requests."""
    from tui_csr.core.models import AuditEntry, Request, utcnow
    from tui_csr.store.repo import Store

    store = Store.open(data_dir)
    rng = random.Random(7)
    now = utcnow()
    with_requests: dict[str, dict] = {}
    audit: dict[str, dict] = {}
    for n in range(count):
        doc = dict(rng.choice(seeds))
        cn = f"host{n}.bench.example.com"
        doc.update(id=uuid.UUID(int=rng.getrandbits(128)).hex, label=f"{cn}-2026-11-27",
                   subject=f"CN={cn},O=Bench Ltd,OU=PKI,C=GB",
                   subject_fields={"CN": cn, "O": "Bench Ltd", "OU": "PKI", "C": "GB"},
                   sans=[["dns", cn], ["dns", f"www.{cn}"]],
                   key_id=rng.getrandbits(160).to_bytes(20, "big").hex(),
                   token_label=OTHER_TOKEN)
        req = Request.from_doc(doc)
        req.created = now - timedelta(minutes=count - n)
        with_requests[str(n + 1)] = req.to_doc()
        audit[str(n + 1)] = AuditEntry("generate", "alice", req.id,
                                       f"{req.label} {req.key_spec} {req.subject}",
                                       at=req.created).to_doc()
    for n, seed in enumerate(seeds):
        with_requests[str(count + n + 1)] = dict(seed)
    data = store._storage.read() or {}
    data["requests"] = with_requests
    data["audit"] = audit
    store._storage.write(data)
