"""``tui-csr ui`` (and no command at all): the terminal UI."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    new_command(sub, "ui", "open the terminal UI (the default)")


def run(args: Any, settings: Any, pin: str | None = None) -> int:
    from tui_csr.ui.app import run_app

    return run_app(settings, pin=pin)
