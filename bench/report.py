"""The results table: plain text for the terminal, Markdown for ``bench/RESULTS.md``."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import Row

HEADER = ("#", "Measure", "tui-csr", "Reference", "Ratio", "Target", "Result", "Runs")

#: Why a figure can miss, and where the time goes: printed under the table for missed rows.
LIMITS = {
    "1": (
        "Overhead in-process. On top of keygen + sign, generate does on purpose: the label check "
        "on the token, the key pair's attributes read back and its public key checked, CKA_ID "
        "rewritten to the public key's SHA-1, the CSR built and verified in software, and two "
        "durable store writes (the write-ahead intent before the key exists, the record that "
        "closes it: temp file or journal line, fsync; 1-3 ms each on this shared disk). A "
        "crash between the CKA_ID rewrite and the record is found by label and the key's own "
        "SHA-1, so the rewrite needs no write of its own. The rest is the hand-offs between the "
        "event loop, the token thread and the store thread; each costs ~0.1 ms on an idle "
        "machine but waits for a free CPU when all are busy (see the load above), which the "
        "bare run, one call on one thread, never does. Meeting 1.25x (about 2 ms over bare "
        "keygen + sign) would leave room for one fsync: dropping the durable intent before the "
        "key exists would lose track of a key after a power cut, so it stays. The step medians "
        "below show each part."
    ),
    "2": (
        "Batch. Python start-up, imports and the login are paid once; the intents of 16 lines "
        "go to the store in one durable write before their keys are made, and each line pays "
        "its token work (keygen, read-backs, CKA_ID rewrite, sign: 7 PKCS#11 calls), the CSR "
        "built and checked in software, and one durable record. SoftHSM itself slows down as "
        "the token fills (its file backend re-reads every object file on a search or a "
        "keygen: bare python-pkcs11 keygen 8 ms on an empty token, 18 ms at 500 objects), and "
        "on this machine the token work alone is about 12 ms a CSR: the 0.5x target (about 17 "
        "ms a CSR here) is below what SoftHSM takes for keygen + sign + a durable record."
    ),
    "3": (
        "Single shot. A fresh tui-csr process pays Python start-up (about 10 ms here, the floor "
        "in figure 6) and the imports generate really uses (asyncio with ssl, asn1crypto, "
        "python-pkcs11's enums and exceptions, the service and its rules; cryptography for the "
        "software check loads on a thread while the token makes the key): about 180 ms of "
        "import time on this machine, measured per command in figure 6. The peers are small C "
        "programs that finish a P-256 CSR in 25-40 ms, of which the token's work is about 15 "
        "ms: for P-256 the rest of tui-csr's time is start-up and imports; for RSA, where the "
        "keygen itself is long, the ratio is under 3x. Cutting further means a generate path "
        "without asyncio and python-pkcs11 (our own module loader already makes every PKCS#11 "
        "call; python-pkcs11's types and exceptions remain)."
    ),
    "4": (
        "Responsiveness. Every PKCS#11 call runs on the token thread and releases the GIL, so "
        "the token never holds the loop (the reference column is the same probe with the app "
        "idle). The gaps while the key is generated are the app's own frames: the wizard's "
        "busy view animates, and each repaint is a few ms on an idle machine but tens of ms "
        "when every CPU is busy (see the load above); they fall anywhere in the keygen, not at "
        "its start or end. Opening the result screen afterwards is the largest gap of the "
        "whole apply (see the note), outside the keygen."
    ),
    "5": (
        "Store at scale. Add: a large store appends each write to a journal (one line, one "
        "fsync) instead of rewriting and fsyncing the whole 19 MB file. List: building 10,000 "
        "Request models is the cost (~5-10 us each). TUI start and memory: the Requests table is "
        "virtual and renders only the rows on screen (see figure 9 for the curve); what is left "
        "is the interpreter and imports, the token login, the store's parse (~55 MB of objects "
        "for 22 MB of JSON, read while the token logs in), the 10,000 models of the list and "
        "the 10,000 more of the start-up orphan scan, and the table's rows, made on a thread."
    ),
    "7": (
        "PKCS#11 calls (bench/fig_calls.py). Per batch request: the key pair, one read of each "
        "key (the security promise of the private key, the public key check) and the CKA_ID "
        "rewrite to the public key's SHA-1 (2 calls, where the profile allows it), then SignInit "
        "and one Sign. A fresh generate adds the session around it, through tui-csr's own "
        "loader (tui_csr/hsm/native.py): C_GetFunctionList, C_Initialize, C_GetInfo, one "
        "C_GetSlotList into a buffer, C_GetTokenInfo per slot (the labels choose the token; "
        "SoftHSM has a free second slot, p11-kit forwards one), open, login, the mechanism list "
        "once (EC key sizes are asked only when the token refuses a curve), one label search "
        "(3 calls), and C_Finalize, which ends the session (no C_CloseSession before it). The "
        "safety checks cost 7 of them (label search 3, read-backs 2, CKA_ID 2). Growth with "
        "the batch: SoftHSM's own C_GenerateKeyPair slows as its file store fills (every "
        "object file re-checked), measured bare beside the batch in the row's note."
    ),
    "8": (
        "PostgreSQL store (bench/fig_store_pg.py). Each add is one transaction on a unix "
        "socket: the store-wide lock that keeps two hosts' read-modify-writes apart, the insert "
        "(the unique label is a constraint), the audit row through its hash-chaining SQL "
        "function, a NOTIFY for the live view, and the commit's fsync. List reads every pending "
        "row and builds the Request models, like figure 5's TinyDB list."
    ),
    "9": (
        "Scale (bench/fig_scale.py). The Requests table is virtual (tui_csr/ui/widgets/"
        "virtual_table.py): it renders only the rows on screen, so ctrl+end and each frame cost "
        "the same at 1k and 100k. What grows is the store: TinyDB reads and parses the whole "
        "JSON file (~22 MB and ~55 MB of Python objects per 10,000 requests with their audit "
        "entries) and every list builds a Request model per record (~2 KB, ~10 us each); at "
        "start-up the TUI lists the pending requests, and the orphan scan lists them all again "
        "(models for three fields), both under the store lock, then the table's rows are made "
        "on a thread. Memory is that parse, both lists of models and the rows, on top of ~45 MB "
        "of interpreter, Textual and the app. `list --json` pays `Request.to_doc()`, a "
        "`dataclasses.asdict` deep copy (~90 us a request). The filter runs on a thread above "
        "5,000 rows; the stall left is the app's own frames (the reference: the same typing on "
        "a 20-request store) plus the filter thread's turns at the interpreter lock, and it "
        "waits for a CPU when the machine is busy (see the load above)."
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
    ]
    if info.get("busy"):
        lines += [
            "**Other work shared the machine** (load above its CPU count): absolute times "
            "include waiting for a CPU. Ratios of runs made side by side are less affected, "
            "but tui-csr's hand-offs between threads (event loop, token thread, store thread: "
            "figures 1, 2, 4) wait for a CPU more often than a peer tool running straight "
            "through. Re-run `make bench` on an idle machine for the floor.",
            "",
        ]
    lines += [
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
        lines += ["", "`token.generate_keypair` includes the keygen, one attribute read of each "
                  "key and the public key check; `token.set_key_id` is the CKA_ID rewrite (one "
                  "call per key); `token.sign` is SignInit and Sign; `store.open_intent` and "
                  "`store.add_request` are the two durable writes."]
    scale = [r for r in rows if "scale_measure" in r.extra]  # figure 9: one column per size
    if scale:
        sizes = list(dict.fromkeys(str(r.extra["scale_size"]) for r in scale))
        measures = list(dict.fromkeys(str(r.extra["scale_measure"]) for r in scale))
        cells = {(str(r.extra["scale_measure"]), str(r.extra["scale_size"])): _num(r.ours, r.unit)
                 for r in scale}
        lines += ["", "## Scale: growth with the number of stored requests (figure 9, medians)",
                  "", "| Measure | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]
        lines += [f"| {m} | " + " | ".join(cells.get((m, z), "-") for z in sizes) + " |"
                  for m in measures]
    missed = sorted({r.figure for r in rows if r.met is False})
    if missed:
        lines += ["", "## What limits the missed figures", ""]
        lines += [f"- **Figure {fig}.** {LIMITS[fig]}" for fig in missed if fig in LIMITS]
    return "\n".join(lines) + "\n"
