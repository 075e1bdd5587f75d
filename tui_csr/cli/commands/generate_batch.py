"""``tui-csr generate --batch FILE``: the command around :mod:`tui_csr.batch` (reading, the
progress bar on a terminal, one output line per request)."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from tui_csr.batch import (
    SAN_FIELDS,
    BatchLine,
    BatchRefused,
    BatchStopped,
    check_on_token,
    read_batch,
    refuse_if,
    run_batch,
    token_labels,
    validate_batch,
)
from tui_csr.cli.output import print_json, request_json, safe
from tui_csr.cli.session import login, open_service
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.core.models import Request


class ProgressBar:
    """A one-line progress bar on a terminal's stderr: ``[#####-----]  12/50  line 14: ...``."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()

    def show(self, done: int, text: str) -> None:
        """Redraw the bar with ``done`` of ``total`` finished and ``text`` beside it."""
        width = shutil.get_terminal_size((80, 24)).columns
        bar_width = max(10, min(30, width // 4))
        filled = bar_width * done // max(self.total, 1)
        counter = f"{done}/{self.total}"
        head = f"[{'#' * filled}{'-' * (bar_width - filled)}] {counter:>{2 * len(str(self.total)) + 1}}  "
        room = max(width - len(head) - 1, 0)
        self.stream.write("\r" + head + text[:room] + "\x1b[K")
        self.stream.flush()

    def clear(self) -> None:
        """Remove the bar from the terminal."""
        self.stream.write("\r\x1b[K")
        self.stream.flush()


async def run_batch_command(args: Any, settings: Any) -> int:
    """``tui-csr generate --batch FILE``: read, validate all, log in once, generate all."""

    _refuse_single_request_flags(args)
    try:
        lines = read_batch(args.batch)
        service = await open_service(settings, token=False)
        refuse_if(validate_batch(service, lines), len(lines))
        await login(service)
        labels = await token_labels(service, lines)  # the batch's one scan of the token
        refuse_if(await check_on_token(service, lines, labels), len(lines))
    except BatchRefused as refused:
        for number, message in sorted(refused.problems):
            print(f"error: line {number}: {safe(message)}", file=sys.stderr)
        raise

    bar = ProgressBar(len(lines), sys.stderr) if sys.stderr.isatty() else None

    def started(index: int, line: BatchLine) -> None:
        if bar is not None:
            p = line.params
            cn = next((v for k, v in p.field_pairs() if k.upper() == "CN"), None)
            what = p.label or cn or p.dn or ""
            bar.show(index, safe(f"line {line.number}: {p.key_spec} {what}"))

    def made(line: BatchLine, req: Request) -> None:
        if bar is not None:
            bar.clear()
        if args.json:
            print_json(request_json(req), flush=True)
        else:
            print(f"{req.id[:8]}  {safe(req.label)}  {req.key_spec}  {safe(req.subject)}", flush=True)

    begin = time.perf_counter()
    try:
        reqs = await run_batch(service, lines, on_made=made, on_start=started, labels=labels)
    except BatchStopped as stop:
        if bar is not None:
            bar.clear()
        print(f"error: line {stop.line.number}: {stop.cause}", file=sys.stderr)
        raise
    except BaseException:
        if bar is not None:
            bar.clear()
        raise
    if bar is not None:
        bar.clear()
    took = time.perf_counter() - begin
    print(f"generated {len(reqs)} {'request' if len(reqs) == 1 else 'requests'} in "
          f"{took:.1f} s ({took / len(reqs) * 1000:.0f} ms each)", file=sys.stderr)
    return 0




#: Flags of a single request; with --batch every request comes from the file.
_SINGLE_FLAGS = ("key_spec", "hash", "dn", "cn", "o", "ou", "l", "st", "c", "owner", "label",
                 "out", "profile", "key_usage", "eku", "ca", "path_len", "dc", "uid",
                 "serial_number", "email_address", "title", "given_name", "surname",
                 "pseudonym", "street", "postal_code", "organization_identifier",
                 "business_category", "jurisdiction_c", "jurisdiction_st", "jurisdiction_l")


def _refuse_single_request_flags(args: Any) -> None:
    given = [f"--{name.replace('_', '-')}" for name in _SINGLE_FLAGS
             if getattr(args, name, None)]
    given += [f"--{name}" for name in ("pss", "der", "force", "always_authenticate", *SAN_FIELDS, "group")
              if getattr(args, name, None)]
    if given:
        raise InputError(f"--batch takes every request from the file; drop {', '.join(given)} "
                         "(put the fields in each line instead).", field="batch")
