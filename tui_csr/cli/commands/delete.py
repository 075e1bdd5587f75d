"""``tui-csr delete ID --yes``: destroy the request's key pair on the token, then the record."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    de = new_command(sub, "delete", "destroy the request's key pair on the token, then the request")
    de.add_argument("id", metavar="ID")
    de.add_argument("--yes", action="store_true", help="confirm: the private key is destroyed")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import safe
    from tui_csr.cli.session import find_request, login, open_service
    from tui_csr.errors import InputError

    service = await open_service(settings, token=False)
    req = await find_request(service, args.id)
    if not args.yes:
        raise InputError(f"Deleting '{req.label}' destroys its private key on the token for "
                         "good; add --yes to confirm.", field="yes")
    await login(service)
    await service.delete_request(req.id)
    print(f"deleted {safe(req.label)} ({req.id[:8]}): key pair destroyed on token "
          f"'{safe(req.token_label)}'", file=sys.stderr)
    return 0
