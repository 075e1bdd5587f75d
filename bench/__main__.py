"""``make bench`` / ``python -m bench [--smoke] [FIGURE...]``: every figure of issue 7 on throwaway
SoftHSM tokens, a table of medians on stdout and in ``bench/RESULTS.md``. ``--smoke``
(``make bench-smoke``) runs a few rounds of each figure, prints the table and fails when a
figure does not run; it leaves RESULTS.md alone.

Figures (each a child process, see ``bench/common.py``): overhead, batch, single, tui, store,
startup, calls, store-pg. Naming some runs only those (and still rewrites RESULTS.md with what ran).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, Row
from bench.report import render_markdown, render_table

FIGURES = {
    "overhead": "bench.fig_overhead",
    "batch": "bench.fig_batch",
    "single": "bench.fig_single",
    "tui": "bench.fig_tui",
    "store": "bench.fig_store",
    "startup": "bench.fig_startup",
    "calls": "bench.fig_calls",
    "store-pg": "bench.fig_store_pg",
    "scale": "bench.fig_scale",
}
NAMES = {"overhead": "1", "batch": "2", "single": "3", "tui": "4", "store": "5", "startup": "6",
         "calls": "7", "store-pg": "8", "scale": "9"}
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    def first(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"
        return (out.strip().splitlines() or ["?"])[0]

    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pretty = "?"
    if os.path.exists("/etc/os-release"):
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    debian = Path("/etc/debian_version").read_text(encoding="utf-8").strip() \
        if os.path.exists("/etc/debian_version") else "?"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{pretty} ({debian})",
        "python": platform.python_version(),
        "softhsm": first(["softhsm2-util", "--version"]),
        "openssl": first(["openssl", "version"]),
        "gnutls": first(["p11tool", "--version"]),
        "load_start": _load(),
    }


def _load() -> str:
    one, five, _ = os.getloadavg()
    text = f"{one:.2f} (1 min), {five:.2f} (5 min)"
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        some = pressure.read_text(encoding="utf-8").splitlines()[0]
        text += f"; CPU pressure {some.split()[1].replace('avg10=', '')} % (10 s)"
    return text


def run_figure(module: str, workdir: Path) -> list[Row]:
    """Run one figure's child process; its rows, or one row saying why it failed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", module, str(workdir)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=420, check=False)
    except subprocess.TimeoutExpired:
        return [Row(NAMES[_key(module)], f"{module}: timed out", 0, "", "-", False,
                    note="the figure did not finish in 7 minutes")]
    took = time.monotonic() - start
    for line in proc.stderr.splitlines():
        if line.startswith(("note:", "warning:", "bench:")):
            print(f"  {line}", file=sys.stderr)
    try:
        rows = [Row(**d) for d in json.loads(proc.stdout.strip().splitlines()[-1])]
    except (IndexError, ValueError, TypeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [Row(NAMES[_key(module)], f"{module}: failed", 0, "", "-", False,
                    note=" / ".join(tail)[-400:])]
    print(f"  {module}: {took:.0f} s", file=sys.stderr)
    return rows


def smoke_verdict(chosen: list[str], rows: list[Row]) -> int:
    """Quick mode's exit status: 0 when every chosen figure ran and printed its rows."""
    failed = [r.name for r in rows if r.name.endswith((": failed", ": timed out"))]
    missing = [f"figure {NAMES[n]} ({n})" for n in chosen
               if not any(r.figure == NAMES[n] for r in rows)]
    for problem in failed + [f"{m}: no rows" for m in missing]:
        print(f"bench-smoke: {problem}", file=sys.stderr)
    ran = sorted({r.figure for r in rows} - {r.figure for r in rows if r.name in failed})
    print(f"bench-smoke: figures {', '.join(ran) or 'none'} ran; "
          f"{'all ' + str(len(chosen)) + ' figures ok' if not (failed or missing) else 'FAILED'}",
          file=sys.stderr)
    return 1 if failed or missing else 0


def _key(module: str) -> str:
    return next(k for k, v in FIGURES.items() if v == module)


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    if smoke:
        # Quick mode: a few runs of each figure (bench/common.py reads this in every child);
        # the numbers are not results, so RESULTS.md is left alone and targets are not judged.
        os.environ["TUI_CSR_BENCH_SMOKE"] = "1"
    chosen = argv or list(FIGURES)
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        print(f"error: unknown figure {', '.join(unknown)}; choose from {', '.join(FIGURES)}",
              file=sys.stderr)
        return 2
    began = time.monotonic()
    if not smoke:  # installing a peer tool is not for a quick check
        subprocess.run(["bash", str(ROOT / "bench" / "setup-peers.sh")], check=False)
    info = machine()
    busy_at_start = os.getloadavg()[0] > (os.cpu_count() or 1)
    print(f"tui-csr bench on {info['cpu']} x{info['cpus']}, {info['os']}, Python "
          f"{info['python']}; load {info['load_start']}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="tui-csr-bench-"))
    rows: list[Row] = []
    try:
        for name in chosen:
            print(f"figure {NAMES[name]}: {name}…", file=sys.stderr)
            rows += run_figure(FIGURES[name], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_end"] = _load()
    if busy_at_start or os.getloadavg()[0] > (os.cpu_count() or 1):
        info["busy"] = "yes"
    info["duration"] = f"{time.monotonic() - began:.0f} s"
    if smoke:
        print("bench-smoke: quick mode, a few runs per figure on smaller data (row names give the "
              "full sizes): the numbers are no results and the targets are not judged.")
    print(render_table(rows))
    if smoke:
        return smoke_verdict(chosen, rows)
    RESULTS.write_text(render_markdown(rows, info), encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} ({info['duration']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
