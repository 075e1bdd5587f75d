"""Figure 8: the PostgreSQL store at scale beside the TinyDB one (figure 5): 10,000 requests
(and their audit entries) stored, then add one request with its audit entry and list the pending
requests, each in a process that has opened the store, as ``generate`` and ``list`` do.

The server is the test suite's own (``tests/backends/postgres.py``: initdb into a temp folder,
unix socket there, no TCP; fsync on, as a team's server would run). The 10,000 requests are
copied in by ``tui-csr store migrate``'s code from a TinyDB store made like figure 5's.
"""

from __future__ import annotations

import time
import uuid

from bench.common import emit, new_token, runs, value_row, workdir_from_argv
from bench.scale import fill_store, seed_documents

COUNT = runs(10_000, 300)
RUNS = runs(9)


def main() -> None:
    from tests.backends import postgres as pg
    from tui_csr.core.models import AuditEntry, Request, utcnow
    from tui_csr.store.migrate import migrate
    from tui_csr.store.postgres import PostgresStore
    from tui_csr.store.repo import Store

    gone = pg.missing()
    if gone:
        raise RuntimeError(f"PostgreSQL is not installed ({', '.join(gone)})")
    workdir = workdir_from_argv()
    token = new_token(workdir, "pgscale")
    seeds = seed_documents(token, workdir / "seed-requests-pg.json")
    fill_store(token.data_dir, seeds, COUNT)
    server = pg.start(pg.server_folder(), durable=True)
    try:
        dsn = pg.init_store(server, role=pg.ADMIN)
        migrate(Store.open(token.data_dir).path, PostgresStore(dsn))
        store = PostgresStore(dsn)
        store.list_requests()
        add, listed_times = [], []
        listed: list[Request] = []
        for n in range(RUNS):
            doc = dict(seeds[n % len(seeds)])
            doc.update(id=uuid.uuid4().hex, label=f"pg-added-{n}-{uuid.uuid4().hex[:6]}")
            req = Request.from_doc(doc)
            req.created = utcnow()
            audit = AuditEntry("generate", pg.ADMIN, req.id, f"{req.label} {req.key_spec}")
            start = time.perf_counter()
            store.add_request(req, audit)
            add.append(time.perf_counter() - start)
            start = time.perf_counter()
            listed = store.list_requests()
            listed_times.append(time.perf_counter() - start)
        assert len(listed) >= COUNT
    finally:
        pg.stop(server)
    note = f"{COUNT:,} requests, PostgreSQL 15 on a unix socket, fsync on"
    emit([
        value_row("8", "PostgreSQL 10k: add one request (with its audit entry)", add, 50,
                  note=note),
        value_row("8", "PostgreSQL 10k: list pending requests", listed_times, 100,
                  note=f"{len(listed):,} requests returned; TinyDB beside it: figure 5"),
    ])


if __name__ == "__main__":
    main()
