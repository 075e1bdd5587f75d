"""Checks shared by every place that writes a user-chosen file (CLI --out, save dialogs,
attestation downloads)."""

from __future__ import annotations

from pathlib import Path


def path_problem(path: Path) -> str | None:
    """None when ``path`` can be written as a file; else the sentence saying why not."""
    if not path.name:
        return "Give a file name."
    if path.is_dir():
        return f"{path} is a folder; give a file name."
    if not path.parent.is_dir():
        return f"Folder {path.parent} does not exist."
    return None
