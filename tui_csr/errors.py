"""Errors the user can act on.

Every failure that reaches a user is one of these: one sentence naming the field or the token,
plus (for token failures) the raw ``CKR_*`` name for the expert. The CLI maps ``exit_code``
straight to the process exit status; the TUI shows ``message`` under the field named by ``field``
or in a dialog.
"""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates: shown raw they reorder the rest of the line.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with control, line-breaking, bidi and surrogate characters written as escapes
    (``\\x0a``, ``\\u202e``): messages quote what users typed, and must stay one line that a
    terminal shows as it is (no escape sequences, no lone surrogates that cannot be encoded)."""
    if text.isprintable() or all(
            unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp") and ch not in _BIDI
            for ch in text):
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class TuiCsrError(Exception):
    """Base class: a failure with a one-sentence message for the user."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def __str__(self) -> str:
        # What is printed (the CLI's error: line, dialogs) stays one printable line, whatever
        # the message quotes (typed input, a token or key label someone else chose).
        if self.code:
            return printable(f"{self.message} ({self.code})")
        return printable(self.message)


class InputError(TuiCsrError):
    """Invalid user input (exit status 2). ``field`` names the field (e.g. ``"CN"``, ``"email"``)."""

    exit_code = 2


class NotFoundError(InputError):
    """A request, group or object the user named does not exist (exit status 2)."""


class TokenError(TuiCsrError):
    """A PKCS#11 failure; ``code`` carries the CKR_* name where there is one."""


class StoreError(TuiCsrError):
    """The request store cannot be read or written; the message names the file."""


class PermissionDeniedError(TuiCsrError):
    """The OS user is not allowed to do this (e.g. create a group without being an administrator)."""


class ConfigError(InputError):
    """The configuration (file, environment or flags) is invalid (exit status 2)."""
