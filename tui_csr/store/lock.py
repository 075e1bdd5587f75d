"""Inter-process (and inter-thread) lock around one store file.

The store file itself cannot carry the lock: every write replaces it with a new inode, so a lock on
the old inode would protect nothing. The lock lives on a sibling ``<store>.lock`` file (mode 0600)
instead, taken with ``fcntl.flock``: shared for reads, exclusive for read-modify-write.

``flock`` treats two ``open()``s of one file in one process as strangers, so a nested lock in the
same thread would deadlock on itself. A per-file ``threading.RLock`` therefore serialises threads,
and only the outermost acquisition in a thread touches ``flock``.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tui_csr.errors import StoreError

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for another process before giving up with a StoreError."""


class _FileLock:
    """Lock state for one lock file, shared by all threads of this process."""

    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None
        self.exclusive = False


_locks: dict[str, _FileLock] = {}
_locks_guard = threading.Lock()


def lock_path_for(store_path: Path | str) -> Path:
    """The lock file that guards ``store_path``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".lock")


def _state_for(lock_path: Path) -> _FileLock:
    key = os.path.realpath(lock_path)
    with _locks_guard:
        state = _locks.get(key)
        if state is None:
            state = _locks[key] = _FileLock()
        return state


def _flock(fd: int, operation: int, lock_path: Path, timeout: float | None) -> None:
    """``flock`` that gives up after ``timeout`` seconds (``None``: wait for ever).

    The wait itself is a blocking ``flock``, not a retry loop: the kernel wakes blocked waiters
    when the holder lets go, whereas a poller loses nearly every race against a process that
    writes in a loop (a reader was starved for seconds that way). To bound the wait, the
    blocking call runs in a helper thread on a ``dup`` of the descriptor (same open file, so the
    same lock); if we give up first, the helper releases the lock as soon as it gets it.
    """
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if timeout is None:
        fcntl.flock(fd, operation)
        return

    helper_fd = os.dup(fd)
    guard = threading.Lock()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def wait() -> None:
        try:
            fcntl.flock(helper_fd, operation)
        except OSError as exc:
            outcome["error"] = exc
        with guard:
            if outcome.get("abandoned") and "error" not in outcome:
                fcntl.flock(helper_fd, fcntl.LOCK_UN)
            os.close(helper_fd)
            done.set()

    threading.Thread(target=wait, name="store-lock-wait", daemon=True).start()
    if not done.wait(timeout):
        with guard:
            if not done.is_set():
                outcome["abandoned"] = True
                raise StoreError(
                    f"The store is busy: another process has held {lock_path} for over "
                    f"{timeout:g} s. Try again, or look for a stuck tui-csr process."
                )
    error = outcome.get("error")
    if isinstance(error, OSError):
        raise error


@contextmanager
def store_lock(
    path: Path | str, exclusive: bool = True, *, timeout: float | None = DEFAULT_TIMEOUT
) -> Iterator[None]:
    """Hold the lock for the store file ``path`` (exclusive for writes, shared for reads).

    Re-entrant within one thread. A shared hold cannot be upgraded to an exclusive one (that
    would let another writer slip in between): take the exclusive lock first.
    """
    lock_path = lock_path_for(path)
    state = _state_for(lock_path)
    if not state.rlock.acquire(timeout=-1 if timeout is None else timeout):
        raise StoreError(f"The store is busy: another thread has held {lock_path} for too long.")
    try:
        if state.depth == 0:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreError(
                    f"The store lock {lock_path} could not be opened: {exc.strerror or exc}."
                ) from exc
            try:
                _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, lock_path, timeout)
            except BaseException:
                os.close(fd)
                raise
            state.fd, state.exclusive = fd, exclusive
        elif exclusive and not state.exclusive:
            raise RuntimeError("an exclusive store lock was requested inside a shared one")
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
            if state.depth == 0 and state.fd is not None:
                fd, state.fd = state.fd, None
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
    finally:
        state.rlock.release()
