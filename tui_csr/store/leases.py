"""Leases: how an orphan scan tells a generation in progress from one whose process died.

An open intent (see :class:`tui_csr.core.models.Intent`) means "a key pair may be on the token
without a record". That is true for a process killed mid-generation, and also, for a few
seconds, for every generation still running in another process (or another task of this one).
The scan must offer the first for adoption or destruction and leave the second alone.

So whoever works on an intent holds its lease: an exclusive ``flock`` on
``<store>.leases/<intent id>``, taken before the intent is written and let go after it is
closed. The kernel drops the lock when its holder dies, also on kill -9, so a lease nobody holds
belongs to an intent whose worker is gone. ``flock`` locks belong to an open file, not to a
process: a second ``open()`` in the same process conflicts with the first, so this process's
own generation is "in progress" to its own scan too.

Checking a lease never creates its file, and a holder removes its file before letting go:
a checker that opened the file just before its removal then gets the lock on a removed file,
and sees the intent closed when it reads the store again (the holder closes the intent first).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from pathlib import Path

from tui_csr.errors import StoreError

_ID_RE = re.compile(r"^[0-9a-f]{8,64}$")
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class LeaseHeldError(StoreError):
    """Another process (or task) is working on this intent right now."""


def lease_dir_for(store_path: Path) -> Path:
    """``<store>.leases`` beside the store file."""
    return store_path.with_name(store_path.name + ".leases")


def _lease_path(folder: Path, intent_id: str) -> Path:
    if not _ID_RE.match(intent_id):  # the id becomes a file name: never a path
        raise StoreError(f"'{intent_id}' is not an intent id.")
    return folder / intent_id


class Lease:
    """A held lease; :meth:`release` (or the end of a ``with`` block) lets go of it."""

    def __init__(self, folder: Path, intent_id: str) -> None:
        path = _lease_path(folder, intent_id)
        try:
            folder.mkdir(mode=_DIR_MODE, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        except OSError as exc:
            raise StoreError(f"The lease {path} could not be made: {exc.strerror or exc}.") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LeaseHeldError(f"Another tui-csr process is working on intent "
                                     f"{intent_id} right now.") from None
            raise StoreError(f"The lease {path} could not be locked: "
                             f"{exc.strerror or exc}.") from exc
        self.path: Path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Remove the lease file, then let go of the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold(folder: Path, intent_id: str) -> Lease:
    """Take the lease of ``intent_id`` (use as a ``with`` block, or call ``release()``);
    LeaseHeldError when someone else holds it."""
    return Lease(folder, intent_id)


def is_held(folder: Path, intent_id: str) -> bool:
    """True while someone holds the lease of ``intent_id`` (never creates its file)."""
    path = _lease_path(folder, intent_id)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"The lease {path} could not be read: {exc.strerror or exc}.") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise StoreError(f"The lease {path} could not be locked: "
                             f"{exc.strerror or exc}.") from exc
        return False
    finally:
        os.close(fd)


def discard(folder: Path, intent_id: str) -> None:
    """Remove a lease file a dead holder left behind (only for an intent already closed)."""
    with contextlib.suppress(FileNotFoundError, StoreError):
        os.unlink(_lease_path(folder, intent_id))
