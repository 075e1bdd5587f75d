"""Saving an attestation: every file checked before any is written, each written atomically."""

from __future__ import annotations

import re
from pathlib import Path

from tui_csr.attestation.base import AttestationResult
from tui_csr.errors import InputError
from tui_csr.fileio import path_problem, write_atomic

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_file_name(result: AttestationResult) -> str:
    """A file name from the key label: ``www.example.com-2026-01-02.attestation.p7b``."""
    stem = _UNSAFE.sub("_", result.key_label).strip("._") or "key"
    return f"{stem[:100]}.attestation{result.default_suffix}"


def target_problem(path: Path, force: bool) -> str | None:
    """None when ``path`` may be written; else the sentence saying why not."""
    problem = path_problem(path)
    if problem:
        return problem
    if path.exists() and not force:
        return f"{path} already exists; use --force to overwrite it."
    return None


#: Files written beside the main one, per provider (suffix appended to the chosen name).
EXTRA_SUFFIXES: dict[str, tuple[str, ...]] = {"luna": (), "fortanix": (".chain.pem",)}


def planned_problem(provider: str, path: str | Path, force: bool) -> str | None:
    """Like :func:`target_problem` for every file ``provider`` will write at ``path``: lets a
    caller refuse before anything is fetched."""
    target = Path(path).expanduser()
    for suffix in ("", *EXTRA_SUFFIXES.get(provider, ())):
        problem = target_problem(target.with_name(target.name + suffix), force)
        if problem:
            return problem
    return None


def save_attestation(result: AttestationResult, path: str | Path, *,
                     force: bool = False) -> list[Path]:
    """Write ``result``'s files (the main one at ``path``, extras beside it); returns them.

    All targets are checked first, so a refusal writes nothing; without ``force`` no existing
    file is replaced. Blocking file I/O: from an event loop, run it in ``asyncio.to_thread``.
    """
    target = Path(path).expanduser()
    files = result.files(target)
    for file_path, _data in files:
        problem = target_problem(file_path, force)
        if problem:
            raise InputError(problem, field="out")
    written = []
    for file_path, data in files:
        write_atomic(file_path, data, mode=0o644)  # public: certificates, a signed statement
        written.append(file_path.resolve())
    return written


