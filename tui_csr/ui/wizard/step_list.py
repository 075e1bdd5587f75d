"""The column at the wizard's side listing the steps, each marked done, current or in error."""

from __future__ import annotations

import enum

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class StepState(enum.Enum):
    """How far a step has got."""

    TODO = "todo"
    CURRENT = "current"
    DONE = "done"
    ERROR = "error"


_MARKS = {StepState.TODO: " ", StepState.CURRENT: "▶", StepState.DONE: "✓", StepState.ERROR: "✗"}
_WORDS = {StepState.TODO: "", StepState.CURRENT: "current", StepState.DONE: "done",
          StepState.ERROR: "has errors"}


class StepItem(Static):
    """One line of the step list."""

    def __init__(self, number: int, title: str, full_title: str | None = None) -> None:
        super().__init__(markup=False, classes="step-item")
        self.number = number
        self.title = title
        self.full_title = full_title or title
        self.state = StepState.TODO
        self.current = False

    def set_state(self, state: StepState, current: bool) -> None:
        """Mark the step; ``current`` adds the cursor whatever the state."""
        self.state, self.current = state, current
        for s in StepState:
            self.set_class(s is state, f"-{s.value}")
        self.set_class(current, "-at")
        mark = "▶" if current and state is not StepState.ERROR else _MARKS[state]
        self.update(f"{mark} {self.number}. {self.title}")
        word = _WORDS[StepState.CURRENT if current else state]
        if current and state is StepState.ERROR:
            word = "current, has errors"
        self.tooltip = f"Step {self.number}: {self.full_title}" + (f" ({word})" if word else "")


class StepList(Vertical):
    """The wizard's steps, top to bottom."""

    DEFAULT_CSS = """
    StepList {
        width: 26; height: 1fr; padding: 1 1;
        border-right: vkey $border-blurred; background: $panel;
    }
    StepList > .step-item { color: $text-muted; height: auto; margin-bottom: 1; }
    StepList > .step-item.-done { color: $text-success; }
    StepList > .step-item.-error { color: $text-error; text-style: bold; }
    StepList > .step-item.-at { color: $text; text-style: bold; background: $primary 30%; }
    StepList > .step-item.-at.-error { color: $text-error; }
    """

    def __init__(self, titles: list[str], *, full_titles: list[str] | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self._titles = titles
        self._full = full_titles or titles

    def compose(self) -> ComposeResult:
        """One line per step."""
        for number, (title, full) in enumerate(zip(self._titles, self._full, strict=True),
                                               start=1):
            yield StepItem(number, title, full)

    @property
    def items(self) -> list[StepItem]:
        """The step lines, in order."""
        return list(self.query(StepItem))

    def mark(self, states: list[StepState], current: int) -> None:
        """Show ``states`` (one per step) with the cursor on step index ``current``."""
        for index, (item, state) in enumerate(zip(self.items, states, strict=True)):
            item.set_state(state, index == current)
