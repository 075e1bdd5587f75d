"""Figure 9: the scale curve, the store and the TUI at 1k, 10k and 100k stored requests.

Each size gets its own data folder on one throwaway token, filled by cloning real requests
(bench/scale.py: the clones name another token, the seeds stay beside them), with one audit entry
per request. Per size:

- add one: ``Store.add_request`` (with its audit entry) in a process that has read the store;
- list: ``Store.list_requests()`` in such a process (in-process);
- ``tui-csr list --json``: a fresh process, parse and output included;
- TUI start: from starting ``python -m bench.tui_start`` until the Requests table holds every
  request and has painted; then in the same child ``ctrl+end`` until the last row is painted, and
  a filter typed key by key with a 10 ms ticker in the event loop: its worst lateness is the stall
  (bench/tui_start.py); the child's peak RSS over all of it.

The filter stall is also measured on a 20-request store, side by side: what the app's own frames
cost on this machine whatever the size (the reference column of the 100k row).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import time
import uuid

from bench.common import (
    GROUP,
    ROOT,
    SMOKE,
    Row,
    Token,
    _user,
    emit,
    new_token,
    run,
    tui_csr_cmd,
    value_row,
    workdir_from_argv,
)
from bench.scale import fill_store, seed_documents
from bench.tui_start import FILTER

#: (name, requests, in-process runs, fresh list runs, TUI runs)
SIZES = ([("1k", 100, 3, 1, 1), ("10k", 400, 3, 1, 1)] if SMOKE else
         [("1k", 1_000, 9, 5, 3), ("10k", 10_000, 9, 5, 3), ("100k", 100_000, 3, 1, 3)])
SMALL = 20  # the reference store of the filter stall
#: The targets of issue 14: at 10k start, RSS and list; at 100k the worst filter stall.
TARGETS = {("10k", "start"): 1000, ("10k", "rss"): 150, ("10k", "list"): 100,
           ("100k", "stall"): 100}


def _data_folder(token: Token, name: str) -> Token:
    """A new data folder (holding the group) on ``token``."""
    from tui_csr.core.models import Group
    from tui_csr.store.repo import Store

    data_dir = token.folder / f"data-{name}"
    Store.open(data_dir).add_group(Group(GROUP, policy="bench", created_by=_user()))
    return dataclasses.replace(token, data_dir=data_dir)


def _new_request(seeds: list[dict], n: int):  # -> (Request, AuditEntry)
    from tui_csr.core.models import AuditEntry, Request, utcnow

    doc = dict(seeds[n % len(seeds)])
    doc.update(id=uuid.uuid4().hex, label=f"added-{n}-{uuid.uuid4().hex[:6]}")
    req = Request.from_doc(doc)
    req.created = utcnow()
    return req, AuditEntry("generate", "alice", req.id, f"{req.label} {req.key_spec}")


def _in_process(token: Token, seeds: list[dict], runs: int) -> tuple[list[float], list[float]]:
    from tui_csr.store.repo import Store

    store = Store.open(token.data_dir)
    store.list_requests()  # this process has read the store once, as generate has
    adds, lists = [], []
    for n in range(runs):
        req, audit = _new_request(seeds, n)
        start = time.perf_counter()
        store.add_request(req, audit)
        adds.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.list_requests()
        lists.append(time.perf_counter() - start)
    return adds, lists


def _tui(token: Token, expected: int) -> dict[str, float]:
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "bench.tui_start", str(expected), "--probe"],
                          env=token.env, cwd=ROOT, capture_output=True, text=True,
                          timeout=400, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.tui_start failed: {proc.stderr.strip()[-800:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["shown_at"] is None:
        raise RuntimeError(f"the Requests table never showed its rows ({result['rows']})")
    result["start_s"] = result["shown_at"] - started
    return result


def _row(size: str, measure: str, title: str, values: list[float], *, unit: str = "ms",
         scale: float = 1000.0, note: str = "", key: str = "") -> Row:
    name = f"Scale {size}: {title}"
    limit = TARGETS.get((size, key))
    if limit is not None:
        row = value_row("9", name, values, limit, unit=unit, note=note, scale=scale)
    else:
        row = Row("9", name, round(statistics.median(values) * scale, 2), unit, "-", None,
                  runs=len(values), note=note)
    row.extra = {"scale_size": size, "scale_measure": measure}
    return row


def main() -> None:
    from tui_csr.store.repo import Store

    workdir = workdir_from_argv()
    token = new_token(workdir, "scale9")
    seeds = seed_documents(token, workdir / "seed-requests.json")
    small = _data_folder(token, "small")
    fill_store(small.data_dir, seeds, SMALL)
    rows: list[Row] = []
    for size, count, runs, fresh_runs, tui_runs in SIZES:
        sized = _data_folder(token, size)
        fill_store(sized.data_dir, seeds, count)
        file_mb = Store.open(sized.data_dir).path.stat().st_size / 1e6
        adds, lists = _in_process(sized, seeds, runs)
        total = Store.open(sized.data_dir).count_requests()
        fresh = []
        for _ in range(fresh_runs):
            took, proc = run(tui_csr_cmd("list", "--json"), sized.env, timeout=300)
            fresh.append(took)
        listed = len(json.loads(proc.stdout))
        tui = [_tui(sized, total) for _ in range(tui_runs)]
        ref = [_tui(small, SMALL + len(seeds)) for _ in range(tui_runs)] if size == "100k" \
            or SMOKE and size == SIZES[-1][0] else []
        note_store = f"{total:,} requests + {count + runs:,} audit entries, file {file_mb:.1f} MB"
        stall = [t["filter_stall_s"] for t in tui]
        stall_note = (f"'/' then '{FILTER}' typed key by key, {tui[-1]['filter_rows']:,} rows "
                      f"match; typing until shown {statistics.median(t['filter_s'] for t in tui):.2f}"
                      " s")
        rows += [
            _row(size, "add one", "add one request (process that has read the store)", adds,
                 note=note_store),
            _row(size, "list", "list pending requests in-process", lists, key="list",
                 note=f"{total:,} requests returned"),
            _row(size, "list --json", "tui-csr list --json, fresh process", fresh,
                 note=f"{listed:,} requests printed"),
            _row(size, "TUI start", "TUI start until the Requests table shows its rows",
                 [t["start_s"] for t in tui], key="start",
                 note="process start to every row in the table and painted, headless "
                      "(App.run_test, 120x40), token login included"),
            _row(size, "TUI end", "TUI ctrl+end until the last row is painted",
                 [t["end_s"] for t in tui]),
            _row(size, "filter stall", "TUI worst event-loop stall while typing a filter",
                 stall, key="stall", note=stall_note),
            _row(size, "peak RSS", "peak RSS of that TUI process (start, end, filter)",
                 [t["peak_rss_mb"] for t in tui], unit="MB", scale=1.0, key="rss",
                 note=f"at the first paint {statistics.median(t['start_peak_rss_mb'] for t in tui):.0f} MB"),
        ]
        if ref:
            small_stall = statistics.median(t["filter_stall_s"] for t in ref) * 1000
            stall_row = rows[-2]
            stall_row.ref, stall_row.ref_name = round(small_stall, 2), f"{SMALL} requests"
            stall_row.ratio = round(stall_row.ours / small_stall, 3) if small_stall else None
        print(f"bench: scale {size} done", file=sys.stderr)
    emit(rows)


if __name__ == "__main__":
    main()
