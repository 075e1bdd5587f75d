"""User keymaps: the ``[keys]`` table of the config file remaps bindings by their id.

Every key of the app is a :class:`~textual.binding.Binding` with an ``id`` (``requests.filter``,
``wizard.apply``...); Help lists the ids. A config such as::

    [keys]
    "requests.filter" = "f,slash"
    "wizard.apply" = "ctrl+enter"

is handed to :meth:`App.set_keymap` (as posting does); an id the app does not declare is
reported once instead of being ignored silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.dom import DOMNode

if TYPE_CHECKING:
    from textual.app import App

    from tui_csr.config import Settings


def declared_ids() -> set[str]:
    """Every binding id declared by tui-csr's screens, dialogs and widgets."""
    import tui_csr.ui.screens.wizard  # noqa: F401 - the wizard is imported lazily elsewhere

    ids: set[str] = set()
    stack: list[type] = [DOMNode]
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if not cls.__module__.startswith("tui_csr."):
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def apply_keymap(app: App, settings: Settings) -> list[str]:
    """Install ``settings.keys`` as the app's keymap; returns the unknown ids (also notified)."""
    keys = dict(getattr(settings, "keys", {}) or {})
    if not keys:
        return []
    known = declared_ids()
    unknown = sorted(k for k in keys if k not in known)
    app.set_keymap({k: v for k, v in keys.items() if k in known})
    if unknown:
        app.notify(f"The config's [keys] names unknown binding ids: {', '.join(unknown)}. Help "
                   "(F1) lists the ids.", title="Keymap", severity="warning")
    return unknown
