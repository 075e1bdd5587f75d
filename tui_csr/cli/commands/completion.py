"""``tui-csr completion bash|zsh|fish``: a shell completion script generated from the parser.

The script is made by shtab from the same parser the program uses, so it cannot drift from the
options. Sub-commands, options, files and key specs complete statically; request labels, groups
and token profiles are asked of ``tui-csr completion --candidates KIND`` at completion time, so
they come from the configured store as it is then.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

SHELLS = ("bash", "zsh", "fish")
KINDS = ("labels", "groups", "key-specs", "token-profiles")

#: Candidates are read from the store: a store that cannot be read completes nothing.
NEEDS_SETTINGS = False


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    co = new_command(sub, "completion", "print a shell completion script (bash, zsh or fish)")
    co.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to complete for")
    co.add_argument("--candidates", choices=KINDS, help=argparse.SUPPRESS)


def _attach(parser: argparse.ArgumentParser) -> None:
    """Set shtab's ``complete`` on every argument whose values can be listed."""
    import shtab

    def ask(kind: str) -> Any:
        return shtab.cmd(f"tui-csr completion --candidates {kind} 2>/dev/null")

    by_dest = {"id": ask("labels"), "group": ask("groups"), "key_spec": ask("key-specs"),
               "token_profile": ask("token-profiles"),
               "file": shtab.FILE, "out": shtab.FILE, "pin_file": shtab.FILE,
               "config": shtab.FILE, "module": shtab.FILE, "batch": shtab.FILE,
               "csr": shtab.FILE, "data_dir": shtab.DIRECTORY}
    group_names = {"name", "old"}  # groups rename/remove take a group's name
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
                continue
            complete = by_dest.get(action.dest)
            if complete is None and action.dest in group_names and p.prog.endswith(
                    ("groups rename", "groups remove")):
                complete = ask("groups")
            if complete is not None:
                action.complete = complete  # type: ignore[attr-defined]


def script(shell: str) -> str:
    """The completion script for ``shell``."""
    import shtab

    from tui_csr.cli.parser import build_parser

    parser = build_parser()
    _attach(parser)
    return shtab.complete(parser, shell=shell)


async def candidates(kind: str, args: Any) -> list[str]:
    """The values of ``kind`` to complete, from the configured store (none when unreadable)."""
    if kind == "key-specs":
        from tui_csr.core.keyspec import KEY_SPECS

        return list(KEY_SPECS)
    if kind == "token-profiles":
        try:
            from tui_csr.hsm.profiles import PROFILES
        except ImportError:
            return []
        return list(PROFILES)
    from tui_csr.cli.session import open_service, settings_from_args

    service = await open_service(settings_from_args(args), token=False)
    if kind == "groups":
        return [g.name for g in await service.list_groups()]
    return [r.label for r in await service.list_requests(None)]


async def run(args: Any, settings: Any) -> int:
    from tui_csr.errors import InputError, TuiCsrError

    if args.candidates:
        try:
            values = await candidates(args.candidates, args)
        except TuiCsrError:
            return 0
        # One per line; a value with a line break or a blank could not be completed as one word.
        for value in values:
            if value.isprintable() and " " not in value:
                print(value)
        return 0
    if not args.shell:
        raise InputError("Name the shell: tui-csr completion bash|zsh|fish.", field="shell")
    sys.stdout.write(script(args.shell))
    return 0
