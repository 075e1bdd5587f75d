"""Named points where a crash test stops the process: ``TUI_CSR_TEST_PAUSE_AT``.

The crash tests (tests/reliability/test_crash.py) kill -9 a generation at each of its steps and
check that nothing is lost track of. A sleep-then-kill cannot prove which step it hit, so each
step calls :func:`reached` with its name; when ``TUI_CSR_TEST_PAUSE_AT`` names that point, the
process writes ``tui-csr: paused at <name>`` to stderr and stops itself with SIGSTOP. The test
reads that line, waits for the stop (``waitpid(WUNTRACED)``) and sends SIGKILL: the kill lands
exactly there, and the test knows it did.

Unset (always, outside these tests) the call is one dictionary lookup and does nothing.

Points of a generation, in order: ``after-intent`` (intent written, no key yet),
``after-keygen`` (the pair is on the token), ``after-id-rewrite`` (CKA_ID rewritten),
``after-sign`` (the CSR is signed and verified), ``store-write:<operation>`` (inside the store
write of ``<operation>``, e.g. ``store-write:add_request``: the new file is written and fsynced,
not yet renamed into place; for a journaled store: half of its line is written). A batch
adds ``batch:after-intents`` (the intents of a chunk written, no key of it yet) and
``batch:after-record-<k>`` (the k-th record of the batch written); its chunk's intent write
is ``store-write:open_intents``.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "TUI_CSR_TEST_PAUSE_AT"


def armed(point: str) -> bool:
    """True when this run of a crash test stops at ``point`` (to set up a worse moment)."""
    return os.environ.get(ENV) == point


def reached(point: str) -> None:
    """Stop here (SIGSTOP) when ``TUI_CSR_TEST_PAUSE_AT`` is ``point``; else do nothing."""
    if os.environ.get(ENV) != point:
        return
    sys.stderr.write(f"tui-csr: paused at {point}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
