"""The store's journal: small writes to a large store as appended lines, not a whole new file.

Rewriting a 19 MB store (10,000 requests) to add one request costs its encoding, writing and
fsyncing all of it, ~50-250 ms. Once the store file is large, a write appends one line to
``<store>.log`` instead and fsyncs only that line; every reader replays the journal over the file.
When the journal has grown to a quarter of the file (at least 1 MB) the next write folds it in:
a whole new file, atomically replaced as before, then the journal is removed.

A line is one committed write: ``{"ops": [[table, doc_id, document or null], ...]}`` and a
newline. An op sets a document to its new value (``null``: removed), so replaying a line again
changes nothing: a journal that outlived its fold (a crash between the file's replace and the
journal's removal) is harmless. A last line without its newline is a write that was cut short
(the writer crashed before it returned): readers ignore it and the next writer cuts it off. Any
other line that cannot be read makes the store unreadable, and nothing overwrites it.

Appends happen under the exclusive store lock and reads under the shared one, so no reader ever
sees a line being written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from tui_csr import crashpoint
from tui_csr.fileio import fsync_dir
from tui_csr.store import codec

Data = dict[str, dict[str, Any]]
Op = list[Any]  # [table, doc_id, document | None]

#: The store file must be at least this large before writes go to the journal: below it a
#: whole rewrite is cheap, and the file alone holds everything (as small stores always did).
MIN_STORE_BYTES = 1 << 20
#: Fold the journal in once it is larger than this, or than the store file over FOLD_FRACTION.
MIN_FOLD_BYTES = 1 << 20
FOLD_FRACTION = 4


class JournalError(ValueError):
    """A complete journal line that cannot be applied: the journal is damaged."""


def journal_path_for(store_path: Path) -> Path:
    """``<store>.log`` beside the store file."""
    return store_path.with_name(store_path.name + ".log")


def read_from(path: Path, offset: int) -> tuple[list[list[Op]], int, int, int | None]:
    """The complete lines of the journal from ``offset``: (their ops, the new offset just after
    the last complete line, the inode, the size). ``([], offset, 0, None)`` when there is no
    journal. Raises JournalError for a damaged line, OSError when it cannot be read."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; fstat needs the open file
    except FileNotFoundError:
        return [], offset, 0, None
    with fh:
        st = os.fstat(fh.fileno())
        fh.seek(offset)
        raw = fh.read()
    end = raw.rfind(b"\n") + 1  # a trailing fragment is a cut-short write: not committed
    lines: list[list[Op]] = []
    start = 0
    while start < end:
        stop = raw.index(b"\n", start)
        lines.append(_parse_line(raw[start:stop], offset + start))
        start = stop + 1
    return lines, offset + end, st.st_ino, st.st_size


def _parse_line(raw: bytes, at: int) -> list[Op]:
    try:
        entry = codec.loads(raw)
    except (codec.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JournalError(f"the line at byte {at} is not valid JSON") from exc
    ops = entry.get("ops") if isinstance(entry, dict) else None
    if not isinstance(ops, list):
        raise JournalError(f"the line at byte {at} holds no list of changes")
    for op in ops:
        if not (isinstance(op, list) and len(op) == 3 and isinstance(op[0], str)
                and isinstance(op[1], str) and op[1].isdigit()
                and (op[2] is None or isinstance(op[2], dict))):
            raise JournalError(f"the line at byte {at} holds a change that is not "
                               "[table, document id, document or null]")
    return ops


def apply(data: Data, lines: list[list[Op]]) -> None:
    """Replay journal lines over the tables in ``data`` (in place)."""
    for ops in lines:
        for table, doc_id, doc in ops:
            docs = data.setdefault(table, {})
            if doc is None:
                docs.pop(doc_id, None)
            else:
                docs[doc_id] = doc


def append(path: Path, ops: list[Op], offset: int, pause: str = "") -> tuple[int, int]:
    """Append one committed line after ``offset`` (cutting off anything past it: a write that
    was cut short), fsync it; returns (inode, new offset). On failure the journal is cut back to
    ``offset`` so that no half or unacknowledged line stays behind, and the OSError is raised."""
    payload = codec.dumps({"ops": ops}) + b"\n"
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            if os.fstat(fd).st_size != offset:
                os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(payload)
            if pause and crashpoint.armed(pause):  # tests only: stop with half a line written
                view = view[os.write(fd, view[: len(view) // 2]):]
                crashpoint.reached(pause)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            raise
        ino = os.fstat(fd).st_ino
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
    return ino, offset + len(payload)


def should_fold(store_size: int, journal_size: int) -> bool:
    """Whether the journal is large enough to fold into the store file now."""
    return journal_size >= max(MIN_FOLD_BYTES, store_size // FOLD_FRACTION)


