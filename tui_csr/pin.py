"""Where the PIN comes from: ``TUI_CSR_PIN``, ``--pin-file`` or a prompt without echo.

Never a command-line argument, never written anywhere, never put in an error message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tui_csr.errors import InputError


def pin_from_environment(pin_file: Path | None) -> str | None:
    """The PIN from ``TUI_CSR_PIN`` or the first line of ``pin_file``; None when neither."""
    value = os.environ.get("TUI_CSR_PIN")
    if value:
        return value
    if pin_file is not None:
        try:
            text = pin_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"PIN file {pin_file} cannot be read: {exc.strerror}.",
                             field="pin-file") from exc
        line = text.splitlines()[0] if text else ""
        if not line:
            raise InputError(f"PIN file {pin_file} is empty.", field="pin-file")
        return line
    return None


def prompt_pin(token_label: str, hint: str | None = None) -> str:
    """Ask on the terminal without echo; refuse when there is no terminal to ask on. ``hint``
    (the token profile's PIN format, e.g. YubiHSM 2's) is shown before the prompt."""
    if not sys.stdin.isatty():
        raise InputError("No PIN given: set TUI_CSR_PIN or use --pin-file FILE (there is no "
                         "terminal to prompt on).", field="pin")
    import getpass

    if hint:
        print(hint, file=sys.stderr)

    pin = getpass.getpass(f"User PIN for token '{token_label}': ")
    if not pin:
        raise InputError("The PIN is empty.", field="pin")
    return pin
