"""The argument parser, assembled from the command modules (each adds its own sub-parser)."""

from __future__ import annotations

import argparse
import importlib
from typing import NoReturn

from tui_csr import __version__

#: Sub-command name -> module in :mod:`tui_csr.cli.commands` (order = the order in --help).
COMMANDS: dict[str, str] = {
    "ui": "ui",
    "demo": "demo",
    "generate": "generate",
    "list": "list_",
    "show": "show",
    "delete": "delete",
    "attestation": "attestation",
    "edit": "edit",
    "import-cert": "import_cert",
    "renew": "renew",
    "retire": "retire",
    "certs": "certs",
    "orphans": "orphans",
    "audit": "audit",
    "tokens": "tokens",
    "groups": "groups",
    "profiles": "profiles",
    "completion": "completion",
    "store": "store",
}


class Parser(argparse.ArgumentParser):
    """argparse with the house error format: ``error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        from tui_csr.errors import printable

        self.exit(2, f"error: {printable(message)}\n")


class _RefusePin(argparse.Action):
    """``--pin``: refused, and the value is not repeated in the message."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.error("a PIN is never a command-line argument (every user of this host can read "
                     "process arguments); use TUI_CSR_PIN, --pin-file FILE or the prompt")


class Once(argparse.Action):
    """A single-valued option given twice is refused, never silently replaced by the last."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        seen = getattr(namespace, "_given_once", None)
        if seen is None:
            seen = set()
            namespace._given_once = seen
        if self.dest in seen:
            parser.error(f"{option_string} is given more than once; give it once")
        seen.add(self.dest)
        setattr(namespace, self.dest, values)


def add_common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """The configuration options every command takes (before or after the sub-command)."""
    # On sub-commands the defaults are SUPPRESS so they do not overwrite values given before the
    # sub-command: `tui-csr --token x list` and `tui-csr list --token x` both work.
    d = None if top else argparse.SUPPRESS
    g = p.add_argument_group("configuration")
    g.add_argument("--module", default=d, metavar="PATH",
                   help="PKCS#11 library (or TUI_CSR_MODULE)")
    g.add_argument("--token", default=d, metavar="LABEL", help="token label (or TUI_CSR_TOKEN)")
    g.add_argument("--data-dir", default=d, metavar="DIR",
                   help="data folder (or TUI_CSR_DATA_DIR; default XDG data dir)")
    g.add_argument("--config", default=d, metavar="FILE",
                   help="TOML config (or TUI_CSR_CONFIG; default XDG config dir)")
    g.add_argument("--store", default=d, metavar="DSN",
                   help="PostgreSQL store, e.g. postgresql://db/tui or service=NAME, never with "
                        "a password (or TUI_CSR_STORE; default the TinyDB file in the data dir)")
    g.add_argument("--pin-file", default=d, metavar="FILE",
                   help="read the user PIN from FILE (or TUI_CSR_PIN; else a prompt)")
    # Never an option, but named, so that `--pin 1234` is refused without echoing the PIN
    # (argparse would otherwise take it as an abbreviation of --pin-file and quote it back).
    g.add_argument("--pin", nargs="?", action=_RefusePin, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def command_module(name: str):  # -> module with add_parser() and run()
    """The module implementing sub-command ``name``."""
    return importlib.import_module(f"tui_csr.cli.commands.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI and for shell completion); with
    ``only``, just that sub-command's (the CLI parsing one command: each command module
    imported costs start-up)."""
    parser = Parser(prog="tui-csr", description="CSRs whose key pair is made and kept in an "
                    "HSM (PKCS#11). Without a command: the terminal UI.")
    parser.add_argument("--version", action="version", version=f"tui-csr {__version__}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS if only is None else (only,):
        command_module(name).add_parser(sub)
    return parser


def new_command(sub: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
    """A sub-command's parser with the common options."""
    p = sub.add_parser(name, help=help_, description=help_)
    add_common(p)
    return p
