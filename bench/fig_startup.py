"""Figure 6: start-up of short commands, fresh processes: ``tui-csr --version`` and
``tui-csr list --json`` with 100 requests stored. ``python -c pass`` (the interpreter alone, same
venv) is measured alongside as the floor."""

from __future__ import annotations

import json
import statistics
import sys

from bench.common import Row, emit, new_token, run, runs, tui_csr_cmd, value_row, workdir_from_argv
from bench.scale import fill_store, seed_documents

RUNS = runs(15)


def main() -> None:
    workdir = workdir_from_argv()
    token = new_token(workdir, "startup")
    fill_store(token.data_dir, seed_documents(token, workdir / "seed-requests.json"), 100)
    env = token.env
    version, listing, floor = [], [], []
    for n in range(-2, RUNS):  # two warm-up rounds: the disk cache, the bytecode cache
        t_floor, _ = run([sys.executable, "-c", "pass"], env)
        t_version, proc = run(tui_csr_cmd("--version"), env)
        assert proc.stdout.startswith("tui-csr ")
        t_list, proc = run(tui_csr_cmd("list", "--json"), env)
        if n >= 0:
            floor.append(t_floor)
            version.append(t_version)
            listing.append(t_list)
    assert len(json.loads(proc.stdout)) == 100
    python = statistics.median(floor) * 1000
    emit([
        value_row("6", "Start-up: tui-csr --version", version, 60,
                  note=f"python -c pass alone: {python:.0f} ms"),
        value_row("6", "Start-up: tui-csr list --json with 100 requests", listing, 250),
        Row("6", "Start-up, for information: python -c pass (the floor)", round(python, 2),
            "ms", "-", None, runs=RUNS),
    ])


if __name__ == "__main__":
    main()
