"""``tui-csr demo``: set up (or reuse) the SoftHSM demo token, then open the UI."""

from __future__ import annotations

import sys
from typing import Any

#: The demo makes its own settings.
NEEDS_SETTINGS = False


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    new_command(sub, "demo", "set up (or reuse) the SoftHSM demo token, then open the UI")


def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.commands import ui
    from tui_csr.demo import DEMO_LABEL, DEMO_PIN, DEMO_SO_PIN, setup_demo

    settings, created = setup_demo()
    state = "created" if created else "reused"
    print(f"Demo token '{DEMO_LABEL}' {state} (SoftHSM2; user PIN {DEMO_PIN}, SO PIN "
          f"{DEMO_SO_PIN}: public on purpose, it is a demo).\n"
          f"Data folder: {settings.data_dir}", file=sys.stderr)
    return ui.run(args, settings, pin=DEMO_PIN)
