"""``tui-csr import-cert [ID] FILE``: the CA's certificate (and its chain) for a request.

FILE may hold the certificate with its chain in any order (PEM bundle, PKCS#7 .p7b/.p7c in DER
or PEM); the chain is put in order and checked. Without ID the pending request with the
certificate's public key is found. ``--retire-old``: when the request renews another, retire that
one afterwards (its key pair destroyed on the token, the record kept as retired).
"""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    ic = new_command(sub, "import-cert", "import the CA's certificate for a request (PEM or DER)")
    ic.add_argument("id", metavar="ID", nargs="?", default=None,
                    help="the request (default: the pending request with the certificate's key)")
    ic.add_argument("file", metavar="FILE", help="certificate file, or - for standard input")
    ic.add_argument("--retire-old", action="store_true",
                    help="then retire the request this one renews (destroys its key pair)")
    ic.add_argument("--json", action="store_true")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, read_input_file, request_json, safe
    from tui_csr.cli.session import find_request, login, open_service

    service = await open_service(settings, token=False)
    data = read_input_file(args.file, "Certificate", "file")
    if args.id is not None:
        req = await find_request(service, args.id)
    else:
        req = await service.match_certificate(data)
    if args.retire_old:
        await service.renewal.check_retire_old(req)  # refused before anything changes
    await login(service)
    result, retired = await service.import_certificate_for(req.id, data,
                                                           retire_old=args.retire_old)
    for warning in result.warnings:
        print(f"warning: {safe(warning)}", file=sys.stderr)
    c = result.certificate
    if args.json:
        print_json(request_json(result.request))
    print(f"imported certificate serial {c.serial} from {safe(c.issuer)} for {safe(req.label)}; "
          f"valid {c.not_before:%Y-%m-%d} to {c.not_after:%Y-%m-%d}", file=sys.stderr)
    if retired is not None:
        how = "its key pair destroyed" if retired.key_destroyed else "its key pair kept (shared)"
        print(f"retired {safe(retired.request.label)} ({retired.request.id[:8]}); {how}",
              file=sys.stderr)
    return 0
