"""Figure 5: the store at scale, 10,000 requests (and their 10,000 audit entries) stored.

- add one: ``Store.add_request`` (with its audit entry) in a process that has read the store,
  as ``generate``, ``--batch`` and the TUI do (the validation reads it first);
- list: ``Store.list_requests()`` in such a process;
- for information, the same two from a fresh ``Store`` (parse included: a new process);
- TUI start: from starting ``python -m bench.tui_start`` (interpreter, imports, token login,
  store read) until the Requests table holds and paints its 10,000 rows; that child's peak RSS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from bench.common import ROOT, Row, emit, new_token, runs, value_row, workdir_from_argv
from bench.scale import fill_store, seed_documents

COUNT = runs(10_000, 300)
RUNS = runs(9)
TUI_RUNS = runs(int(os.environ.get('BENCH_TUI_RUNS', 3)), 1)


def _new_request(seeds: list[dict], n: int):  # -> (Request, AuditEntry)
    from tui_csr.core.models import AuditEntry, Request, utcnow

    doc = dict(seeds[n % len(seeds)])
    doc.update(id=uuid.uuid4().hex, label=f"added-{n}-{uuid.uuid4().hex[:6]}")
    req = Request.from_doc(doc)
    req.created = utcnow()
    return req, AuditEntry("generate", "alice", req.id, f"{req.label} {req.key_spec}")


def main() -> None:
    from tui_csr.store.repo import Store

    workdir = workdir_from_argv()
    token = new_token(workdir, "scale")
    seeds = seed_documents(token, workdir / "seed-requests.json")
    fill_store(token.data_dir, seeds, COUNT)
    size_mb = Store.open(token.data_dir).path.stat().st_size / 1e6

    store = Store.open(token.data_dir)
    store.list_requests()  # this process has read the store once, as generate has
    warm_add, warm_list, cold_add, cold_list = [], [], [], []
    # The warm series first: a write by another Store object would make this one read again.
    for n in range(RUNS):
        req, audit = _new_request(seeds, n)
        start = time.perf_counter()
        store.add_request(req, audit)
        warm_add.append(time.perf_counter() - start)
        start = time.perf_counter()
        listed = store.list_requests()
        warm_list.append(time.perf_counter() - start)
    for n in range(RUNS):
        req, audit = _new_request(seeds, 1000 + n)
        start = time.perf_counter()
        Store.open(token.data_dir).add_request(req, audit)
        cold_add.append(time.perf_counter() - start)
        start = time.perf_counter()
        Store.open(token.data_dir).list_requests()
        cold_list.append(time.perf_counter() - start)
    total = Store.open(token.data_dir).count_requests()
    assert len(listed) >= COUNT

    shown, rss, tui_rows = [], [], 0
    for _ in range(TUI_RUNS):
        started = time.time()
        proc = subprocess.run([sys.executable, "-m", "bench.tui_start", str(total)],
                              env=token.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"bench.tui_start failed: {proc.stderr.strip()[-800:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["shown_at"] is None:
            raise RuntimeError(f"the Requests table never showed its rows ({result['rows']})")
        shown.append(result["shown_at"] - started)
        rss.append(result["peak_rss_mb"])
        tui_rows = result["rows"]

    note = f"{COUNT:,} requests + {COUNT:,} audit entries, store file {size_mb:.1f} MB"
    emit([
        value_row("5", "Store 10k: add one request (process that has read the store)",
                  warm_add, 50, note=note),
        value_row("5", "Store 10k: list pending requests (process that has read the store)",
                  warm_list, 100, note=f"{total:,} requests returned"),
        Row("5", "Store 10k, for information: add one from a fresh Store (parse included)",
            round(statistics.median(cold_add) * 1000, 2), "ms", "-", None, runs=RUNS),
        Row("5", "Store 10k, for information: list from a fresh Store (parse included)",
            round(statistics.median(cold_list) * 1000, 2), "ms", "-", None, runs=RUNS),
        value_row("5", "Store 10k: TUI start until the Requests table shows its rows", shown,
                  1000, note=f"process start to {tui_rows:,} rows painted, headless "
                             "(App.run_test), token login included"),
        value_row("5", "Store 10k: peak RSS of that TUI process", rss, 150, unit="MB",
                  scale=1.0),
    ])


if __name__ == "__main__":
    main()
