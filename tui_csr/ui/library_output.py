"""What a PKCS#11 library writes to file descriptor 2 while the UI runs.

Some modules print their own diagnostics straight to fd 2 (tpm2-pkcs11 writes ``ERROR:`` lines
for conditions tui-csr already reports as one sentence, and there is no switch to silence it).
Textual paints the screen on ``sys.__stderr__``, which is fd 2 too, so those bytes would land in
the middle of the picture. While the UI runs, :func:`library_output` gives Textual its own copy
of the terminal (a duplicate of fd 2) and points fd 2 at a pipe; a reader thread hands each line
to a callback (the app shows it as a notice, literally). Afterwards fd 2 is the terminal again and
the lines are kept so that they can be printed once the screen is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator

#: Lines kept for printing after the UI is gone (the last ones; a chatty module cannot fill memory).
KEEP = 50


class LibraryOutput:
    """The lines read from fd 2 while the UI ran."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self.on_line = on_line
        self.lines: deque[str] = deque(maxlen=KEEP)
        self.count = 0

    def _read(self, fd: int) -> None:
        pending = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._line(raw)
        if pending:
            self._line(pending)

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            return
        self.count += 1
        self.lines.append(text)
        if self.on_line is not None:
            with contextlib.suppress(Exception):  # the UI may be gone already
                self.on_line(text)


@contextlib.contextmanager
def library_output(on_line: Callable[[str], None] | None = None) -> Iterator[LibraryOutput]:
    """Route fd 2 to a pipe read by a thread, with ``sys.__stderr__``/``sys.stderr`` kept on the
    terminal, for the duration of the block. Without a usable fd 2 nothing is changed."""
    out = LibraryOutput(on_line)
    try:
        sys.__stderr__.flush()  # type: ignore[union-attr]
        terminal_fd = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield out
        return
    original = sys.__stderr__
    original_stderr = sys.stderr
    terminal = os.fdopen(terminal_fd, "w", encoding=getattr(original, "encoding", None) or "utf-8",
                         errors="backslashreplace", closefd=False)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    reader = threading.Thread(target=out._read, args=(read_fd,), name="library-stderr",
                              daemon=True)
    reader.start()
    sys.__stderr__ = terminal  # type: ignore[misc]
    sys.stderr = terminal
    try:
        yield out
    finally:
        with contextlib.suppress(OSError, ValueError):
            terminal.flush()
        sys.__stderr__ = original  # type: ignore[misc]
        sys.stderr = original_stderr
        os.dup2(terminal_fd, 2)  # closes the pipe's write end: the reader sees EOF
        reader.join(timeout=2)
        with contextlib.suppress(OSError, ValueError):
            terminal.close()
        os.close(terminal_fd)
