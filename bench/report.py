"""The results table: plain text for the terminal, Markdown for ``bench/RESULTS.md``."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import Row

HEADER = ("#", "Measure", "tui-csr", "Reference", "Ratio", "Target", "Result", "Runs")

#: Why a figure can miss, and where the time goes: printed under the table for missed rows.
LIMITS = {
    "1": (
        "Overhead in-process. What generate adds on top of keygen + sign is token work the tool "
        "does on purpose plus one durable store write: the label check (a C_FindObjects, which "
        "SoftHSM answers by walking every object on the token), reading the private key's "
        "attributes back, setting CKA_ID to the public key's SHA-1 on both objects, the marker "
        "data object for orphan scans (a token object write), building and verifying the CSR "
        "in software, and the store write (temp file, fsync, rename, directory fsync). The step "
        "medians below show each; on a P-256 key (~15-20 ms of keygen on SoftHSM) these few "
        "milliseconds are a large share, on RSA-2048 (~250 ms) a small one."
    ),
    "2": (
        "Batch. The batch pays the per-request token and store work of figure 1 once per "
        "request, but Python start-up, imports and the login only once."
    ),
    "3": (
        "Single shot. A fresh tui-csr process pays Python start-up and imports (asyncio, "
        "asn1crypto, python-pkcs11, cryptography for the software check) before the token "
        "does anything; the peers are C programs. Imports are lazy (`--version` loads neither "
        "asyncio nor the service) and cryptography loads on a thread while the token generates "
        "the key; what remains is the interpreter and the modules generate really uses."
    ),
    "4": (
        "Responsiveness. Every PKCS#11 call runs on the token thread and releases the GIL, so "
        "the event loop only waits for the scheduler: on a machine whose CPUs are all busy "
        "(see the load above), a runnable loop can wait tens of ms for a core."
    ),
    "5": (
        "Store at scale. The store file is rewritten whole and fsynced on every write (atomic "
        "replace, `.bak` of the previous version): add costs encoding (orjson) plus writing and "
        "fsyncing the whole file, so it grows with the store. TUI start: Textual's DataTable "
        "measures every cell of every added row (`_update_dimensions` -> `measure`, and "
        "`Text.from_markup` on each str cell), so 10,000 rows x 8 columns cost seconds before "
        "the first paint; the fix belongs in the Requests screen (a virtual table, or rows "
        "added a page at a time as the cursor nears the end, and `Text` cells instead of str)."
    ),
    "6": (
        "Start-up. `python -c pass` is the floor; the editable install's import finder adds "
        "to every start in a development checkout."
    ),
}


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value:.0f} MB"
    if value >= 1000 and unit == "ms":
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} {unit}".strip()


def _cells(row: Row) -> tuple[str, ...]:
    ref = "-" if row.ref is None else f"{_num(row.ref, row.unit)} ({row.ref_name})"
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    result = {True: "met", False: "MISSED", None: "-"}[row.met]
    return (row.figure, row.name, _num(row.ours, row.unit), ref, ratio,
            row.target.replace("<=", "≤"), result, str(row.runs or "-"))


def render_table(rows: Sequence[Row]) -> str:
    """An aligned text table."""
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    out = []
    for n, line in enumerate(table):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(rows: Sequence[Row], info: dict[str, str]) -> str:
    """``bench/RESULTS.md``."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); every ratio compares runs made side by "
        "side, alternating, in the same bench run, on throwaway SoftHSM tokens. Values are "
        "medians.",
        "",
        "## Machine",
        "",
        f"- Date: {info['date']}; bench duration {info.get('duration', '?')}",
        f"- CPU: {info['cpu']}, {info['cpus']} CPUs (nproc)",
        f"- OS: {info['os']}; Python {info['python']}",
        f"- SoftHSM {info['softhsm']}; {info['openssl']}; {info['gnutls']}",
        f"- Load at start: {info['load_start']}; at end: {info.get('load_end', '?')}",
        "",
        "## Results",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in _cells(row)) + " |")
    lines += ["", "## Notes per measure", ""]
    for row in rows:
        if row.note:
            lines.append(f"- **{row.figure}. {row.name}**: {row.note}")
    steps = [(k.removeprefix("step "), v) for r in rows for k, v in r.extra.items()
             if k.startswith("step ")]
    if steps:
        lines += ["", "## Profile: where a P-256 `generate` goes (median ms per step, "
                  "in-process, 15 runs)", "", "| Step | ms |", "|---|---|"]
        lines += [f"| {name} | {ms:.2f} |" for name, ms in steps]
        lines += ["", "`token.generate_keypair` includes the keygen, the attribute read-back, "
                  "the CKA_ID update and `token._mark`; `token.sign` includes the sign."]
    missed = sorted({r.figure for r in rows if r.met is False})
    if missed:
        lines += ["", "## What limits the missed figures", ""]
        lines += [f"- **Figure {fig}.** {LIMITS[fig]}" for fig in missed if fig in LIMITS]
    return "\n".join(lines) + "\n"
