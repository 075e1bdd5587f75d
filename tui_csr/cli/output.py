"""What the commands write: JSON, files chosen with ``--out``, and terminal-safe text.

Text that comes from the store, a token, a file or a CA goes through :func:`safe` (one line) or
:func:`safe_lines` before it reaches a terminal: control characters are shown escaped (``\\x1b``),
never written raw. JSON output escapes them as JSON does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tui_csr.errors import printable


def safe(text: object) -> str:
    """``text`` as one terminal-safe line (control, bidi and line-break characters escaped)."""
    return printable(str(text))


def safe_lines(text: str) -> str:
    """Multi-line ``text`` with each line made terminal-safe; the line breaks are kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def json_text(obj: Any) -> str:
    """``obj`` as one line of JSON: non-ASCII kept, control characters escaped by JSON, and the
    characters JSON leaves raw that a terminal would act on (line and paragraph separators,
    bidi overrides) escaped as ``\\u2028``: the same document, parsed back, but safe to show."""
    import json

    text = json.dumps(obj, ensure_ascii=False)
    if printable(text) == text:
        return text
    # Outside strings JSON is ASCII: every such character is inside a string, where a \u
    # escape stands for it.
    return "".join(f"\\u{ord(ch):04x}" if ch != printable(ch) else ch for ch in text)


def print_json(obj: Any, *, flush: bool = False) -> None:
    """One JSON document on stdout (:func:`json_text`)."""
    print(json_text(obj), flush=flush)


def say(message: str) -> None:
    """A progress or status line on stderr."""
    print(message, file=sys.stderr)


def request_json(req: Any) -> dict[str, Any]:
    """The JSON object of a request (the CLI contract; ``list --json`` gives an array of them)."""
    from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme, signature_name

    doc = req.to_doc()
    try:
        doc["signature"] = signature_name(KEY_SPECS[req.key_spec], HashAlg(req.hash),
                                          Scheme(req.scheme))
    except (KeyError, ValueError):  # a record edited by hand: show it, with what is known
        doc["signature"] = None
    doc["sans"] = [{"type": k, "value": v} for k, v in req.sans]
    doc["token"] = req.token_label
    return doc


def emit_request(req: Any, args: Any) -> None:
    """What ``generate``, ``renew`` and ``generate --key`` print for the request they made: the
    CSR to ``--out`` (PEM, or DER with ``--der``) or stdout, and/or its JSON with ``--json``."""
    if args.out:
        from tui_csr.core.csr import from_pem_or_der

        data = from_pem_or_der(req.csr_pem) if args.der else req.csr_pem.encode()
        path = write_out(args.out, data, args.force)
        if not args.json:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print_json(request_json(req))
    elif not args.out:
        sys.stdout.write(req.csr_pem)


def check_out(path: str, force: bool) -> Path:
    """Refuse to overwrite without --force, and a missing folder, before any work is done."""
    from tui_csr.errors import InputError
    from tui_csr.fileio import path_problem

    target = Path(path).expanduser()
    if target.exists() and not force and not target.is_dir():
        raise InputError(f"{target} already exists; use --force to overwrite it.", field="out")
    problem = path_problem(target)
    if problem:
        raise InputError(problem, field="out")
    return target


def write_out(path: str, data: bytes, force: bool) -> Path:
    """Write ``data`` (a CSR, a certificate: public material) to ``path``; returns its full path.

    Without ``force`` an existing file is never replaced, not even one that appeared after the
    first check.
    """
    from tui_csr.errors import InputError
    from tui_csr.fileio import FileExistsRefused, write_atomic

    target = check_out(path, force)
    try:
        write_atomic(target, data, mode=None, replace=force, durable=False)
    except FileExistsRefused:
        raise InputError(f"{target} already exists; use --force to overwrite it.",
                         field="out") from None
    return target.resolve()


def read_input_file(path: str, what: str, field: str) -> bytes:
    """The bytes of ``path`` (``-`` for standard input); an unreadable file is an input error."""
    from tui_csr.errors import InputError

    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise InputError(f"{what} file {path} cannot be read: {exc.strerror}.",
                         field=field) from exc
