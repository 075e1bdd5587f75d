"""Modules imported on first use, so that ``tui-csr --version`` and ``--help`` start fast.

``asyncio`` alone costs ~30 ms to import; a command that only prints must not pay for it. A
:class:`LazyModule` stands in for the module and imports it the first time an attribute is read.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for module ``name`` until an attribute of it is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_import(name: str) -> Any:
    """A stand-in for ``import name`` that imports on first attribute access."""
    return LazyModule(name)


def import_in_background(*names: str) -> None:
    """Start importing ``names`` on a daemon thread and return at once.

    For a module a command will surely need after waiting on the token: the token's calls
    release the GIL, so e.g. ``cryptography.x509`` (~50 ms) loads during the key generation
    instead of after it. A failure here is ignored: the real import later raises it properly.
    """
    import contextlib
    import threading

    def run() -> None:
        for name in names:
            with contextlib.suppress(Exception):  # the import at the point of use reports it
                importlib.import_module(name)

    # Not a daemon: the interpreter waits for the import at exit. A daemon thread still inside
    # cryptography's (Rust) module init when a fast failure (a wrong PIN) ends the process is
    # unwound there by glibc and aborts it: "FATAL: exception not rethrown", exit -6 (measured:
    # 4 of 150 runs under load, tests/reliability/test_shutdown.py).
    threading.Thread(target=run, name="tui-csr-preimport", daemon=False).start()
