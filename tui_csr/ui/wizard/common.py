"""Pieces every wizard step shares: the error line under a field, a labelled row, the step base.

A step never talks to the token itself: it awaits :class:`~tui_csr.service.CsrService` methods in
the wizard's workers and shows what they say under the field concerned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label, Static

from tui_csr.service import CsrService, GenerateParams
from tui_csr.ui.text import shown_lines

#: ``{field: message}``: what a step's check found, keyed by the field the message belongs under.
Errors = dict[str, str]


@dataclass
class WorkFailed(Message):
    """A background load or check failed; the wizard tells the user (never with a traceback)."""

    what: str
    error: Exception


class FieldError(Static):
    """The error line under one field, in the theme's error colour; hidden while empty."""

    DEFAULT_CSS = """
    FieldError {
        color: $error;
        height: auto;
        display: none;
        padding-left: 18;
    }
    FieldError.-shown { display: block; }
    FieldError.-wide { padding-left: 0; }
    """

    def __init__(self, *, id: str | None = None, wide: bool = False) -> None:
        super().__init__("", id=id, markup=False, classes="-wide" if wide else "")
        self._message = ""

    @property
    def message(self) -> str:
        """The message shown ('' when the field is fine)."""
        return self._message

    def show(self, message: str | None) -> None:
        """Show ``message`` (None or '' clears the line)."""
        if (message or "") == self._message:
            return  # checked on every keystroke: no repaint when nothing changed
        self._message = message or ""
        self.update(shown_lines(self._message))
        self.set_class(bool(self._message), "-shown")

    def clear(self) -> None:
        """Hide the line."""
        self.show(None)


class FieldRow(Horizontal):
    """``Label  [widget]`` on one line; the label column is 18 cells wide."""

    DEFAULT_CSS = """
    FieldRow { height: auto; }
    FieldRow > .field-label { width: 18; color: $text-muted; padding-top: 0; }
    FieldRow > Input, FieldRow > Select, FieldRow > RadioSet, FieldRow > Static { width: 1fr; }
    """

    def __init__(self, label: str, *children: Widget, id: str | None = None) -> None:
        super().__init__(Label(label, classes="field-label"), *children, id=id)


class WizardStep(VerticalScroll):
    """One page of the wizard.

    Subclasses set :attr:`TITLE` and :attr:`FIELDS` (the ``InputError.field`` names they own) and
    implement :meth:`check`, :meth:`contribute` and :meth:`summary`. :meth:`check` must not change
    widgets (it may await the service); the screen shows its result with :meth:`show_errors`.
    """

    DEFAULT_CSS = """
    WizardStep { padding: 0 1; height: 1fr; }
    WizardStep .step-heading { text-style: bold; color: $primary; margin-bottom: 1; }
    WizardStep .hint { color: $text-muted; padding-left: 18; }
    WizardStep .hint.-wide { padding-left: 0; }
    WizardStep .gap { height: 1; }
    WizardStep Input.-textual-compact { background: $boost; }
    WizardStep Input.-textual-compact:focus { background-tint: $primary 30%; }
    """

    TITLE: ClassVar[str] = ""
    #: The step's name in the step list (short enough for its column at 80x24).
    LIST_TITLE: ClassVar[str] = ""
    FIELDS: ClassVar[frozenset[str]] = frozenset()

    class Fixed(Message):
        """The step's input became valid again: the wizard drops the step's error mark."""

        def __init__(self, step: WizardStep) -> None:
            super().__init__()
            self.step = step

    def __init__(self, service: CsrService, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.service = service

    def heading(self) -> ComposeResult:
        """The step's bold title line."""
        yield Static(self.TITLE, classes="step-heading", markup=False)

    def owns(self, field: str | None) -> bool:
        """Whether an error about ``field`` belongs on this step."""
        return field is not None and field in self.FIELDS

    async def check(self) -> Errors:
        """Validate the step; ``{field: message}`` for every problem (empty when fine)."""
        return {}

    def error_widget(self, field: str) -> FieldError | None:
        """The error line for ``field`` (None when the step has none for it)."""
        matches = self.query(f"#{field.lower()}-error").results(FieldError)
        return next(iter(matches), None)

    def show_errors(self, errors: Errors) -> None:
        """Show ``errors`` under their fields and clear every other error line of the step."""
        for widget in self.query(FieldError):
            widget.clear()
        for field, message in errors.items():
            self.show_error(field, message)

    def show_error(self, field: str, message: str) -> None:
        """Show one message under ``field`` (steps with other layouts override this)."""
        widget = self.error_widget(field)
        if widget is not None:
            widget.show(message)

    @property
    def has_errors(self) -> bool:
        """Whether an error line of the step is showing."""
        return any(w.message for w in self.query(FieldError))

    def is_dirty(self) -> bool:
        """Whether the user entered anything on this step (Cancel then asks first)."""
        return False

    def entered(self) -> None:
        """Called when the step becomes the current one (start loads here)."""

    def focus_first(self) -> None:
        """Focus the step's first focusable widget."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return

    def focus_error(self) -> bool:
        """Focus the field above the first error line shown; False when there is none."""
        for error in self.query(FieldError):
            if not error.message or error.parent is None:
                continue
            siblings = list(error.parent.children)
            for sibling in reversed(siblings[: siblings.index(error)]):
                candidates = [sibling, *sibling.query("*")]
                # The last focusable one: the input of "Label [Input]", not its type Select.
                target = next((w for w in reversed(candidates) if w.focusable), None)
                if target is not None:
                    target.focus()
                    return True
            return False
        return False

    def contribute(self, params: GenerateParams) -> None:
        """Write this step's values into ``params``."""

    def summary(self) -> list[tuple[str, str]]:
        """``(name, value)`` rows for the review."""
        return []
