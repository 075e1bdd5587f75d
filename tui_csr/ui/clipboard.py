"""Copy text to the terminal's clipboard with OSC 52, also from inside tmux.

``App.copy_to_clipboard`` keeps the text in ``app.clipboard`` and writes ``ESC ]52;c;<b64> BEL``.
tmux passes that on only with ``set -g set-clipboard on``; wrapped in tmux's DCS passthrough it
also arrives where ``allow-passthrough`` is on. Nothing confirms delivery, so callers always offer
saving to a file as well.
"""

from __future__ import annotations

import base64
import os

from textual.app import App


def osc52(text: str) -> str:
    """The OSC 52 sequence that puts ``text`` on the terminal's clipboard."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"\x1b]52;c;{payload}\a"


def tmux_passthrough(sequence: str) -> str:
    """``sequence`` wrapped in tmux's DCS passthrough (every ESC inside doubled)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def copy_pem(app: App, text: str) -> bool:
    """Put ``text`` in ``app.clipboard`` and send it to the terminal's clipboard (OSC 52).

    Inside tmux (``$TMUX`` set) the sequence is sent a second time in tmux's passthrough wrapper.
    Returns True when it was written to a terminal driver; that still does not prove the terminal
    accepted it.
    """
    app.copy_to_clipboard(text)
    # Textual 8 offers no public handle on the output: App.copy_to_clipboard itself writes
    # through the private driver, so we do the same for the wrapped copy.
    driver = getattr(app, "_driver", None)
    if driver is None:
        return False
    if os.environ.get("TMUX"):
        driver.write(tmux_passthrough(osc52(text)))
    return True
