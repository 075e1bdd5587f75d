"""``tui-csr retire ID``: retire a request whose renewal has its certificate.

Its key pair is destroyed on the token (unless the renewal uses the same key pair: then only its
certificate object goes); the record is kept as ``retired`` for the audit trail. The same as
``import-cert FILE --retire-old`` does after importing the renewal's certificate.
"""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    r = new_command(sub, "retire", "retire a request whose renewal has its certificate "
                    "(destroys its key pair)")
    r.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    r.add_argument("--json", action="store_true", help="print the retired request as JSON")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, request_json, safe
    from tui_csr.cli.session import find_request, login, open_service

    service = await open_service(settings, token=False)
    req = await find_request(service, args.id)
    await login(service)
    result = await service.retire_request(req.id)
    if args.json:
        print_json(request_json(result.request))
    how = "its key pair destroyed" if result.key_destroyed else "its key pair kept (shared)"
    print(f"retired {safe(req.label)} ({req.id[:8]}); {how}", file=sys.stderr)
    return 0
