"""File writing shared by every place that writes a file: the CLI's ``--out``, the save dialogs,
attestation downloads and the store.

One :func:`write_atomic` (temp file in the same folder, fsync, then an atomic rename, optionally
refusing to replace an existing file) and one :func:`fsync_dir`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class FileExistsRefused(FileExistsError):
    """``write_atomic(..., replace=False)`` found the target already there."""


def path_problem(path: Path) -> str | None:
    """None when ``path`` can be written as a file; else the sentence saying why not."""
    if not path.name:
        return "Give a file name."
    if path.is_dir():
        return f"{path} is a folder; give a file name."
    if not path.parent.is_dir():
        return f"Folder {path.parent} does not exist."
    return None


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is synced)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int | None = 0o644,
                 replace: bool = True, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` so that a reader never sees half a file.

    The data goes to a temp file with a random name made with O_EXCL in the same folder (in a
    shared folder such as /tmp a predictable name would let another user plant a symlink there),
    is fsynced (``durable``) and renamed onto ``path``. ``mode`` None means an ordinary new file
    (0666 less the umask). With ``replace=False`` an existing file is never replaced, not even
    one that appeared after the caller's check: the temp file is hard-linked into place, and
    :class:`FileExistsRefused` is raised when the name is taken. Returns ``path``.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if mode is None:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # link() never replaces
            except FileExistsError:
                raise FileExistsRefused(str(path)) from None
            except OSError:  # no hard links on this file system
                if path.exists() or path.is_symlink():
                    raise FileExistsRefused(str(path)) from None
                os.replace(tmp, path)
        if durable:
            with contextlib.suppress(OSError):
                fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path
