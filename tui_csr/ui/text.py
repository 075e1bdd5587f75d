"""Text from the store, the token, a file or a CA, shown exactly as it is.

Textual reads a ``str`` handed to ``Static``, ``Label``, a ``DataTable`` cell, an option or a
notification as content markup: ``[b]`` turns bold, ``[/b]`` without an opening tag raises
``MarkupError`` while the screen is drawn, ``[@click=app.quit]`` becomes a live link. Anything
someone else typed (a label, a DN value, a group name, a certificate's issuer) therefore goes on
screen through the helpers here, which build :class:`rich.text.Text` objects (never parsed) and
write control characters as escapes (``\\x1b``), so no escape sequence reaches the terminal.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_csr.errors import printable


def shown(text: object) -> str:
    """``text`` as one line for the screen: control, bidi and line-breaking characters escaped."""
    return printable(str(text))


def shown_lines(text: object) -> str:
    """Like :func:`shown`, but line breaks stay line breaks (each line escaped on its own)."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def literal(text: object) -> Text:
    """A :class:`Text` that shows ``text`` exactly (never read as markup), control characters
    escaped; line breaks are kept."""
    return Text(shown_lines(text), end="")


class LiteralTable(DataTable):
    """A DataTable whose ``str`` cells are shown literally (DataTable reads a ``str`` cell as
    markup: a label ``Closing [/b] tag`` made the whole screen fail to draw)."""

    def add_row(self, *cells, height=1, key=None, label=None):
        """Add a row; ``str`` cells become literal :class:`Text`."""
        return super().add_row(*(Text(shown(c), end="") if isinstance(c, str) else c
                                 for c in cells),
                               height=height, key=key, label=label)


class LiteralNotifications:
    """App mixin: every notification is shown literally, whoever posts it (``Widget.notify``
    passes ``markup=True`` by default), with control characters escaped."""

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Show a toast; ``markup`` is ignored: messages quote labels, DNs and file names."""
        super().notify(shown_lines(message), title=shown(title),  # type: ignore[misc]
                       severity=severity, timeout=timeout, markup=False)
