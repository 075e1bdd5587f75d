"""A country field: type part of a country's name, pick it from the matches with Enter."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from tui_csr.core.dn import countries


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@cache
def _country_index() -> tuple[tuple[str, str, str], ...]:
    """``(code, name, folded name)`` for every ISO 3166 country, sorted by name."""
    return tuple((code, name, _fold(name)) for code, name in countries())


def country_label(code: str) -> str:
    """``Germany (DE)``; the bare code when it is unknown."""
    for known, name, _ in _country_index():
        if known == code.upper():
            return f"{name} ({known})"
    return code


def match_countries(query: str) -> list[tuple[str, str]]:
    """``(code, name)`` of the countries whose name contains ``query`` (or whose code it is):
    the country with that code first, then names that start with it, then the others."""
    q = _fold(query.strip())
    if not q:
        return [(code, name) for code, name, _ in _country_index()]
    exact, starts, contains = [], [], []
    for code, name, folded in _country_index():
        if q == code.casefold() or f"{folded} ({code.casefold()})" == q:
            exact.append((code, name))
        elif folded.startswith(q):
            starts.append((code, name))
        elif q in folded:
            contains.append((code, name))
    return exact + starts + contains


class CountryInput(Input):
    """The picker's text field; up/down move through the matches, escape closes them."""

    BINDINGS = [
        Binding("down", "move(1)", "Next match", show=False, id="country.next"),
        Binding("up", "move(-1)", "Previous match", show=False, id="country.previous"),
        Binding("escape", "close", "Close the list", show=False, id="country.close"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape only closes an open list; otherwise it goes on to the screen (Cancel)."""
        if action == "close":
            return self.picker.is_open
        return True

    @property
    def picker(self) -> CountryPicker:
        """The picker this field belongs to."""
        assert isinstance(self.parent, CountryPicker)
        return self.parent

    def action_move(self, delta: int) -> None:
        """Move the highlight in the list (opening it first)."""
        self.picker.move(delta)

    def action_close(self) -> None:
        """Close the list."""
        self.picker.close()


class CountryList(OptionList, can_focus=False):
    """The matches under the field; focus stays in the field while it is open."""


class CountryPicker(Vertical):
    """Pick an ISO 3166 country: its value is the alpha-2 code (or None)."""

    DEFAULT_CSS = """
    CountryPicker { height: auto; width: 1fr; }
    CountryPicker > CountryList {
        display: none; overlay: screen; constrain: none inside;
        height: auto; max-height: 8; width: 1fr;
        border: round $border; background: $surface;
    }
    CountryPicker.-open > CountryList { display: block; }
    """

    @dataclass
    class Changed(Message):
        """The user picked a country (``code``) or cleared the field (None)."""

        picker: CountryPicker
        code: str | None

        @property
        def control(self) -> CountryPicker:
            """The picker that changed."""
            return self.picker

    def __init__(self, *, id: str | None = None, input_id: str | None = None) -> None:
        super().__init__(id=id)
        self._input_id = input_id
        self.code: str | None = None

    def compose(self) -> ComposeResult:
        """The text field and the (hidden) list of matches."""
        yield CountryInput(id=self._input_id, compact=True,
                           placeholder="type part of a name, Enter picks", select_on_focus=True)
        yield CountryList()

    @property
    def field(self) -> CountryInput:
        """The text field."""
        return self.query_one(CountryInput)

    @property
    def options(self) -> CountryList:
        """The list of matches."""
        return self.query_one(CountryList)

    @property
    def is_open(self) -> bool:
        """Whether the list of matches is showing."""
        return self.has_class("-open")

    @property
    def text(self) -> str:
        """What the field shows."""
        return self.field.value

    @property
    def unresolved(self) -> bool:
        """True when the field holds text that is not a picked country."""
        text = self.text.strip()
        return bool(text) and (self.code is None or text != country_label(self.code))

    def set_code(self, code: str | None) -> None:
        """Show ``code`` without announcing it (the DN string set it)."""
        self.code = code.upper() if code else None
        label = country_label(self.code) if self.code else ""
        if self.field.value != label:
            with self.prevent(Input.Changed):
                self.field.value = label
        self.close()

    def pick(self, code: str | None) -> None:
        """Choose ``code`` (None clears) and tell the step."""
        self.set_code(code)
        self.post_message(self.Changed(self, self.code))

    def _refill(self, text: str) -> None:
        matches = match_countries(text)
        self.options.set_options(Option(f"{name} ({code})", id=code) for code, name in matches)
        self.options.highlighted = 0 if matches else None

    def open(self) -> None:
        """Show the matches for the current text."""
        query = "" if not self.unresolved else self.text
        self._refill(query)
        self.add_class("-open")

    def close(self) -> None:
        """Hide the matches."""
        self.remove_class("-open")

    def move(self, delta: int) -> None:
        """Move the highlight by ``delta`` (opening the list first)."""
        if not self.is_open:
            self.open()
            return
        options = self.options
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = max(0, min(options.option_count - 1, current + delta))

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if not event.value.strip():
            self.close()
            if self.code is not None:
                self.pick(None)
            return
        if not self.unresolved:
            return
        self._refill(event.value)
        self.add_class("-open")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.is_open and self.options.highlighted is not None:
            option = self.options.get_option_at_index(self.options.highlighted)
            self.pick(option.id)
        elif self.unresolved:
            self.open()

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick(event.option.id)
        self.field.focus()

    @on(Input.Blurred)
    def _left(self, event: Input.Blurred) -> None:
        event.stop()
        self.close()
        if self.unresolved:
            # Leaving the field with text that names exactly one country counts as picking it.
            matches = match_countries(self.text)
            if len(matches) == 1:
                self.pick(matches[0][0])
