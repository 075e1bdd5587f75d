"""The one modal base class: every dialog's shared styling lives in ``ui/dialog.tcss``."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")

_CSS = (Path(__file__).parent.parent / "dialog.tcss").read_text(encoding="utf-8")


class Dialog(ModalScreen[ResultType]):
    """A centred, framed modal typed by its result; subclasses add only what differs."""

    DEFAULT_CSS = _CSS
