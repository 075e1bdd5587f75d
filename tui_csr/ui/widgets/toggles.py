"""Check boxes and radio buttons whose state shows in the glyph, not only in its colour.

Textual draws a ticked and an unticked box alike (``▐X▌``) and every radio button as ``▐●▌``,
told apart by colour alone: unreadable on a monochrome terminal or with ``NO_COLOR`` (which the
app honours: Textual then renders in monochrome). These draw ``☑``/``☐`` and ``(•)``/``( )``, in
the same three cells.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.style import Style
from textual.widgets import Checkbox, RadioButton, SelectionList

TICKED, UNTICKED = "☑", "☐"
CHOSEN, UNCHOSEN = "(•)", "( )"


class StateRadioButton(RadioButton):
    """A radio button drawn ``(•)`` when chosen and ``( )`` when not."""

    @property
    def _button(self) -> Content:
        # Chosen: in the button's "on" colour; not chosen: in the text colour (Textual draws
        # the "off" button in a colour close to the background, which hid "( )").
        if not self.value:
            return Content(UNCHOSEN)
        style = self.get_visual_style("toggle--button")
        return Content.assemble((CHOSEN, Style(foreground=style.foreground, bold=True)))


class StateCheckbox(Checkbox):
    """A check box drawn ``☑`` when ticked and ``☐`` when not."""

    @property
    def _button(self) -> Content:
        if not self.value:
            return Content(f" {UNTICKED} ")
        style = self.get_visual_style("toggle--button")
        return Content.assemble(" ", (TICKED, Style(foreground=style.foreground)), " ")


class StateSelectionList(SelectionList):
    """A selection list whose boxes read ``☑`` (selected) or ``☐``."""

    def render_line(self, y: int) -> Strip:
        """The line as SelectionList draws it, with the state glyph in the box."""
        strip = super().render_line(y)
        segments = list(strip)
        _, scroll_y = self.scroll_offset
        try:
            selection = self.get_option_at_index(scroll_y + y)
        except Exception:  # noqa: BLE001 - past the last option: nothing to mark
            return strip
        if len(segments) < 4:
            return strip
        left, inner, right = segments[:3]
        ticked = selection.value in self._selected
        glyph = TICKED if ticked else UNTICKED
        if not ticked:  # in the prompt's colours: the "off" box colour is near the background
            inner = Segment(inner.text, segments[3].style)
        # The sides were drawn as half blocks in the box colour; blank them so the glyph is the
        # whole box, and keep the styles (and the click meta) of each cell.
        marked = [Segment(" ", right.style), Segment(glyph, inner.style),
                  Segment(" ", left.style)]
        return Strip([*marked, *segments[3:]], strip.cell_length)
