"""Entry point of ``tui-csr``: parse, dispatch to the command's module, map errors to exit codes."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

from tui_csr import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tui-csr``; returns the exit status."""
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        # The one answer that needs no parser: building it (every sub-command) costs ~10 ms.
        print(f"tui-csr {__version__}")
        return 0
    from tui_csr.cli.parser import build_parser
    from tui_csr.errors import TuiCsrError

    words = list(sys.argv[1:] if argv is None else argv)
    args = _literal_double_dash(build_parser(only=_command_named(words)).parse_args(words))
    previous = _interrupt_on_sigterm()
    try:
        return _dispatch(args)
    except TuiCsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract: one sentence, never a traceback
        from tui_csr.errors import printable

        print(f"error: unexpected {type(exc).__name__}: {printable(str(exc))}", file=sys.stderr)
        if os.environ.get("TUI_CSR_DEBUG"):
            raise
        return 1
    finally:
        _shutdown()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


#: Options before the sub-command that take a value (the next word is that value).
_VALUED = ("--module", "--token", "--data-dir", "--config", "--store", "--pin-file")


def _command_named(words: list[str]) -> str | None:
    """The sub-command ``words`` name, when it can be told without the full parser (then only
    its sub-parser is built: importing every command module costs start-up); None otherwise
    (no command, ``--help`` first, an abbreviation argparse would have to resolve): the full
    parser decides, with its own messages."""
    from tui_csr.cli.parser import COMMANDS

    value_next = False
    for word in words:
        if value_next:
            value_next = False
            continue
        if word in COMMANDS:
            return word
        if word == "--" or not word.startswith("--") or word in ("--help", "--version"):
            return None
        if "=" in word:
            continue
        if word in _VALUED:
            value_next = True
            continue
        return None  # an abbreviation or an unknown option: argparse's business
    return None


def _interrupt_on_sigterm():  # -> the previous handler, or None when none was installed
    """SIGTERM ends a command like Ctrl-C (exit 130 after the cleanup and the token shutdown),
    instead of killing the process by the signal while it may be inside the PKCS#11 module."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _shutdown() -> None:
    """Close the token session and finalise the module on the token thread, whatever happened,
    before the interpreter exits (a thread still inside the module at exit can abort it)."""
    if "tui_csr.hsm.worker" not in sys.modules:  # never imported: no token was opened
        return
    from tui_csr.hsm.worker import shutdown_token_thread

    shutdown_token_thread()


def _literal_double_dash(args):  # (argparse.Namespace) -> argparse.Namespace
    """Python 3.11's argparse turns the value of ``--cn=--`` into ``[]`` (it strips a ``--``
    even from an attached value): give the user's literal ``--`` back, so it is checked like
    any other value instead of crashing later on a list."""
    for dest, value in vars(args).items():
        if not isinstance(value, list):
            continue
        if value == [] and dest not in _REPEATABLE:
            setattr(args, dest, "--")
        elif dest in _REPEATABLE:
            setattr(args, dest, ["--" if item == [] else item for item in value])
    return args


#: Options that may be repeated (argparse ``append``): their value is a list of strings.
_REPEATABLE = frozenset({"email", "dns", "ip", "uri", "group", "ou", "dc"})


def _dispatch(args) -> int:  # (argparse.Namespace) -> int
    import asyncio
    import inspect

    from tui_csr.cli.parser import command_module
    from tui_csr.cli.session import settings_from_args

    command = args.command or "ui"
    module = command_module(command)
    settings = None if getattr(module, "NEEDS_SETTINGS", True) is False else settings_from_args(args)
    result = module.run(args, settings)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result)
