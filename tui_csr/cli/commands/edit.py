"""``tui-csr edit ID``: change a request's groups and owner. A group the request joins applies
its profile to the request as made: one that does not fit is refused (exit 2) naming the group,
the profile and the rule, and nothing is written."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, new_command

    ed = new_command(sub, "edit", "change a request's groups and owner")
    ed.add_argument("id", metavar="ID")
    ed.add_argument("--group", action="append", default=[], metavar="NAME",
                    help="the request's groups (replaces them; at least one); a group joined "
                         "must have a profile the request fits")
    ed.add_argument("--owner", action=Once, metavar="USER", help="new owner ('' to clear)")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import safe
    from tui_csr.cli.session import find_request, open_service

    service = await open_service(settings, token=False)
    req = await find_request(service, args.id)
    groups = args.group or req.groups
    req = await service.set_groups(req.id, groups, args.owner,
                                   change_owner=args.owner is not None)
    print(f"{safe(req.label)}: groups {safe(', '.join(req.groups))}; owner "
          f"{safe(req.owner or '-')}", file=sys.stderr)
    return 0
