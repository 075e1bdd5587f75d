"""One token, several processes: an inter-process lock around each PKCS#11 call, for the
implementations whose store breaks under concurrent writers.

SoftHSM's file backend re-reads a token's object files on every call and rewrites them on every
change, without locking them against other processes: while one process writes, another one's
login, slot listing or object search fails (``CKR_GENERAL_ERROR``, a token that is "no longer
there", "tokens present: none"; measured in tests/reliability/test_concurrency.py). Real HSMs
serialise their own clients. So for a profile with ``serialise_processes`` every call into the
module holds an exclusive ``flock`` that every tui-csr process on the same token store takes:

- SoftHSM: the token folder itself (``directories.tokendir`` of ``SOFTHSM2_CONF``), which every
  admin who can use the token can open, whoever they are;
- anything else: a lock file per module and token in ``$XDG_RUNTIME_DIR/tui-csr`` (or the
  temp folder), which serialises one user's processes.

The lock is held for one call at a time (a key generation at most), never across calls, so a
TUI left open never blocks a CLI, and a call never waits for anything else while holding it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tui_csr.errors import ConfigError

#: Open lock descriptors by path, one per process (flock locks belong to the open file, so
#: the token thread's nested calls must reuse one descriptor, not open a second).
_FDS: dict[str, int] = {}
_FDS_GUARD = threading.Lock()
_HELD = threading.local()

#: The default SoftHSM config where SOFTHSM2_CONF is not set (Debian's package).
SOFTHSM_DEFAULT_CONF = "/etc/softhsm/softhsm2.conf"


def softhsm_token_dir(environ: dict[str, str] | None = None) -> Path | None:
    """``directories.tokendir`` of the SoftHSM config this process uses, if it can be read."""
    env = os.environ if environ is None else environ
    conf = Path(env.get("SOFTHSM2_CONF") or SOFTHSM_DEFAULT_CONF)
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "directories.tokendir" and value.strip():
            path = Path(value.strip())
            return path if path.is_dir() else None
    return None


def runtime_dir() -> Path:
    """Where per-user lock files live: ``$XDG_RUNTIME_DIR/tui-csr``, else a folder of this
    user's own in the temp folder (refused when someone else made it)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        folder = Path(base) / "tui-csr"
    else:
        folder = Path(tempfile.gettempdir()) / f"tui-csr-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(f"{folder} is not a folder of this user's own; remove it.",
                          field="token")
    return folder


def lock_path(module_path: str, token: str, *, softhsm: bool) -> Path:
    """The path every process using this token locks."""
    if softhsm:
        folder = softhsm_token_dir()
        if folder is not None:
            return folder
    key = hashlib.sha256(f"{os.path.realpath(module_path)}\0{token}".encode()).hexdigest()[:24]
    return runtime_dir() / f"token-{key}.lock"


def _fd(path: Path) -> int:
    with _FDS_GUARD:
        fd = _FDS.get(str(path))
        if fd is None:
            flags = os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT
            fd = _FDS[str(path)] = os.open(path, flags | os.O_CLOEXEC, 0o600)
        return fd


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the exclusive lock on ``path``; re-entrant within a thread."""
    depth: dict[str, int] = _HELD.__dict__.setdefault("depth", {})
    key = str(path)
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    try:
        fd = _fd(path)
    except OSError:
        # A token folder this process cannot open (SoftHSM would fail to read it as well, and
        # say so): there is nothing to take turns at.
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    depth[key] = 1
    try:
        yield
    finally:
        depth[key] = 0
        fcntl.flock(fd, fcntl.LOCK_UN)


class SerialisedToken:
    """Wraps a synchronous token so that each of its methods runs under :func:`held`; other
    attributes (``token_label``, ``profile``) read through. Used by the async facade. The lock's
    path is found at the first call (after the module's environment is in place)."""

    def __init__(self, token: Any, path: Callable[[], Path]) -> None:
        self._inner = token
        self._find_path = path
        self._path: Path | None = None

    @property
    def lock_path(self) -> Path:
        """The path this token's calls lock."""
        if self._path is None:
            self._path = self._find_path()
        return self._path

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("__") or not callable(value):
            return value
        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with held(self.lock_path):
                return value(*args, **kwargs)

        return locked

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_inner", "_find_path", "_path"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._inner, name)


def needs_serialising(token: Any) -> tuple[bool, bool]:
    """(serialise?, is it SoftHSM?) for a token that has not been opened yet: decided from the
    profile its module file (or ``token_profile``) selects, as :mod:`~tui_csr.hsm.profiles`
    declares it (``serialise_processes``)."""
    module_path = getattr(token, "module_path", None)
    if not isinstance(module_path, str) or not module_path:
        return False, False  # a stand-in in tests, or nothing to load
    from tui_csr.hsm.profiles import choose_profile

    try:
        profile, _ = choose_profile(module_path=module_path, library="", token_manufacturer="",
                                    token_model="",
                                    override=getattr(token, "profile_override", None))
    except Exception:  # noqa: BLE001 - an unknown profile name is reported by open()
        return False, False
    return bool(getattr(profile, "serialise_processes", False)), profile.name == "softhsm"


def serialised(token: Any) -> Any:
    """``token`` itself, or wrapped in :class:`SerialisedToken` when its profile needs it."""
    serialise, softhsm = needs_serialising(token)
    if not serialise:
        return token
    name = str(getattr(token, "token_serial", None) or getattr(token, "token_label", None) or "")
    return SerialisedToken(token, lambda: lock_path(token.module_path, name, softhsm=softhsm))


__all__ = ["SerialisedToken", "held", "lock_path", "serialised", "softhsm_token_dir"]
