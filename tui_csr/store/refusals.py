"""The refusals both store back ends give (TinyDB and PostgreSQL), worded once: the store
contract tests hold the two to the same sentences."""

from __future__ import annotations

from tui_csr.errors import InputError, NotFoundError


def label_taken(label: str) -> InputError:
    """A request with this label exists already."""
    return InputError(f"A request labelled '{label}' already exists.", field="label")


def group_exists(name: str) -> InputError:
    """A group of this name (any case) exists already."""
    return InputError(f"Group '{name}' already exists.", field="group")


def no_group(name: str) -> NotFoundError:
    """No group has this name."""
    return NotFoundError(f"There is no group '{name}'.", field="group")


def profile_exists(name: str) -> InputError:
    """A stored profile of this name exists already."""
    return InputError(f"Profile '{name}' already exists.", field="profile")


def no_profile(name: str) -> NotFoundError:
    """No stored profile has this name."""
    return NotFoundError(f"There is no stored profile '{name}'.", field="profile")


def profile_changed(name: str, version: object) -> InputError:
    """Another administrator's edit came first: the edit is refused, not lost."""
    return InputError(f"Profile '{name}' was changed meanwhile (now version {version}); show "
                      "it again and repeat the edit.", field="profile")
