"""Figure 6: start-up of short commands, fresh processes: ``tui-csr --version`` and
``tui-csr list --json`` with 100 requests stored. ``python -c pass`` (the interpreter alone, same
venv) is measured alongside as the floor.

Beside them, for information, each command's import cost: the same fresh process with
``PYTHONPROFILEIMPORTTIME=1`` (``-X importtime``), the self time of every module it imported
summed (every thread: cryptography loads on a thread while the token generates the key), and
how many modules that was. The TUI's is the import of its app module alone."""

from __future__ import annotations

import json
import re
import statistics
import sys

from bench.common import Row, emit, new_token, run, runs, tui_csr_cmd, value_row, workdir_from_argv
from bench.scale import fill_store, seed_documents

RUNS = runs(15)


#: (row name, tui-csr arguments, stdin) of the commands whose imports are measured; the
#: generate runs use the figure's token (keys accumulate there, which imports do not mind).
IMPORT_RUNS = runs(5, 1)
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", re.M)


def _batch_lines(n: int, tag: str) -> str:
    return "".join(json.dumps({"key_spec": "P-256", "cn": f"{tag}{i}.bench.example.com",
                               "group": "Bench"}) + "\n" for i in range(n))


def _commands(n: int) -> list[tuple[str, list[str], str | None]]:
    return [
        ("--version", ["--version"], None),
        ("list --json", ["list", "--json"], None),
        ("tokens", ["tokens"], None),
        ("orphans list", ["orphans", "list"], None),
        ("audit", ["audit"], None),
        ("generate P-256", ["generate", "--key-spec", "P-256", "--cn",
                            f"imp{n}.bench.example.com", "--group", "Bench", "--json"], None),
        ("generate --batch (3 x P-256)", ["generate", "--batch", "-"],
         _batch_lines(3, f"impb{n}-")),
    ]


def import_cost(cmd: list[str], env: dict[str, str], stdin: str | None) -> tuple[float, int]:
    """(Summed self time of every import in seconds, modules imported) of one fresh run."""
    _, proc = run(cmd, {**env, "PYTHONPROFILEIMPORTTIME": "1"}, stdin=stdin)
    found = _IMPORT_LINE.findall(proc.stderr)
    return sum(int(us) for us, _name in found) / 1e6, len(found)


def import_rows(env: dict[str, str]) -> list[Row]:
    """One information row per command: its median import cost, fresh process."""
    costs: dict[str, list[float]] = {}
    modules: dict[str, int] = {}
    for n in range(IMPORT_RUNS):
        runs_ = [(name, tui_csr_cmd(*argv), stdin) for name, argv, stdin in _commands(n)]
        runs_.append(("ui (import of the TUI app module)",
                      [sys.executable, "-c", "import tui_csr.ui.app"], None))
        for name, cmd, stdin in runs_:
            took, count = import_cost(cmd, env, stdin)
            costs.setdefault(name, []).append(took)
            modules[name] = count
    return [Row("6", f"Start-up, for information: imports of `tui-csr {name}`",
                round(statistics.median(v) * 1000, 2), "ms", "-", None, runs=len(v),
                note=f"{modules[name]} modules; -X importtime self times summed over every "
                     "thread (the import profiler's own cost included)")
            for name, v in costs.items()]


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
    from tui_csr.store.repo import Store

    # 100 filled in, plus whatever making the seed documents left in this data folder
    assert len(json.loads(proc.stdout)) == Store.open(token.data_dir).count_requests() >= 100
    python = statistics.median(floor) * 1000
    emit([
        value_row("6", "Start-up: tui-csr --version", version, 60,
                  note=f"python -c pass alone: {python:.0f} ms"),
        value_row("6", "Start-up: tui-csr list --json with 100 requests", listing, 250),
        Row("6", "Start-up, for information: python -c pass (the floor)", round(python, 2),
            "ms", "-", None, runs=RUNS),
        *import_rows(env),
    ])


if __name__ == "__main__":
    main()
