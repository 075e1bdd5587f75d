"""Figure 2: per-CSR time of ``tui-csr generate --batch`` (50 P-256 requests, one process, one
token session) against a shell loop of GnuTLS ``p11tool`` + ``certtool``, 50 times.

Side by side, alternating, each on a fresh token (both then grow the same way: 50 key pairs). The
per-CSR time of a round is its wall time over 50, process start-ups included on both sides.
"""

from __future__ import annotations

import json
import statistics
import time

from bench import peers
from bench.common import GROUP, Row, emit, new_token, run, runs, tui_csr_cmd, workdir_from_argv

ROUNDS = runs(3, 1)
COUNT = runs(50, 4)
LIMIT = 0.5


def _batch_file(round_no: int) -> str:
    lines = []
    for n in range(COUNT):
        cn = f"b{round_no}-{n}.bench.example.com"
        lines.append(json.dumps({"key_spec": "P-256", "cn": cn, "o": "Bench Ltd", "c": "GB",
                                 "dns": [cn], "group": GROUP, "label": f"batch-{round_no}-{n}"}))
    return "\n".join(lines) + "\n"


def main() -> None:
    workdir = workdir_from_argv()
    gnutls = peers.available()[0].get("p11tool+certtool")
    ours: list[float] = []
    theirs: list[float] = []
    for round_no in range(ROUNDS):
        token = new_token(workdir, f"batch{round_no}")
        path = token.folder / "batch.jsonl"
        path.write_text(_batch_file(round_no), encoding="utf-8")
        took, proc = run(tui_csr_cmd("generate", "--batch", str(path), "--json"), token.env,
                         timeout=300)
        made = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        if len(made) != COUNT:
            raise RuntimeError(f"the batch made {len(made)} requests, not {COUNT}")
        ours.append(took / COUNT)
        if gnutls is not None:
            peer_token = new_token(workdir, f"gnutls{round_no}")
            out = peer_token.folder / "out"
            out.mkdir()
            start = time.perf_counter()
            for n in range(COUNT):
                gnutls(peer_token, "P-256", n, out)
            theirs.append((time.perf_counter() - start) / COUNT)
    if not theirs:
        emit([Row("2", "Batch: per-CSR time of --batch (50 x P-256)",
                  round(statistics.median(ours) * 1000, 2), "ms", f"<= {LIMIT:g}x", None,
                  runs=len(ours), note="p11tool/certtool not installed: no reference")])
        return
    mo, mt = statistics.median(ours), statistics.median(theirs)
    emit([Row("2", "Batch: per-CSR time of --batch (50 x P-256) vs a p11tool+certtool loop",
              round(mo * 1000, 2), "ms", f"<= {LIMIT:g}x", mo / mt <= LIMIT, round(mt * 1000, 2),
              "p11tool+certtool per CSR", round(mo / mt, 3), ROUNDS,
              f"{ROUNDS} rounds of {COUNT}, alternating, fresh token each")])


if __name__ == "__main__":
    main()
