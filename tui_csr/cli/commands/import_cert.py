"""``tui-csr import-cert ID FILE``: the CA's certificate for a request."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    ic = new_command(sub, "import-cert", "import the CA's certificate for a request (PEM or DER)")
    ic.add_argument("id", metavar="ID")
    ic.add_argument("file", metavar="FILE", help="certificate file, or - for standard input")
    ic.add_argument("--json", action="store_true")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, read_input_file, request_json, safe
    from tui_csr.cli.session import find_request, login, open_service

    service = await open_service(settings, token=False)
    req = await find_request(service, args.id)
    data = read_input_file(args.file, "Certificate", "file")
    await login(service)
    result = await service.import_certificate(req.id, data)
    for warning in result.warnings:
        print(f"warning: {safe(warning)}", file=sys.stderr)
    c = result.certificate
    if args.json:
        print_json(request_json(result.request))
    print(f"imported certificate serial {c.serial} from {safe(c.issuer)} for {safe(req.label)}; "
          f"valid {c.not_before:%Y-%m-%d} to {c.not_after:%Y-%m-%d}", file=sys.stderr)
    return 0
