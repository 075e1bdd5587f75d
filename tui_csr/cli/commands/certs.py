"""``tui-csr certs list|export``: issued certificates, their expiry, and their download.

``certs list --expiring DAYS`` lists exactly the certificates whose notAfter is at most DAYS days
away (those expired already included: they need renewing too); without DAYS the warning
threshold (``expiry_warning_days``, default 30). Every entry of ``--json`` carries
``not_after``, ``days_left`` (whole days, negative once expired) and ``expiry`` (``expired``,
``expiring`` within the threshold, or ``valid``). Exit status 0 whatever is listed, for cron.

``certs export ID`` writes the leaf (default), ``--chain`` (the issuers above it, in order) or
``--bundle`` (leaf then chain) as PEM, or the leaf as ``--der``; each download is audited.
"""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, Parser, new_command

    ce = new_command(sub, "certs", "issued certificates")
    csub = ce.add_subparsers(dest="certs_command", metavar="ACTION", parser_class=Parser)
    cl = csub.add_parser("list", help="list issued certificates, soonest expiry first")
    cl.add_argument("--json", action="store_true")
    cl.add_argument("--expiring", nargs="?", const=-1, type=_days, action=Once, metavar="DAYS",
                    help="only those expiring within DAYS days (default: expiry_warning_days)")
    ex = csub.add_parser("export", help="write a certificate, its chain or both (audited)")
    ex.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    part = ex.add_mutually_exclusive_group()
    part.add_argument("--leaf", dest="part", action="store_const", const="leaf",
                      help="the certificate itself (default)")
    part.add_argument("--chain", dest="part", action="store_const", const="chain",
                      help="the issuing certificates above it, in order")
    part.add_argument("--bundle", dest="part", action="store_const", const="bundle",
                      help="the certificate followed by its chain")
    ex.add_argument("--der", action="store_true", help="the leaf as DER (needs --out)")
    ex.add_argument("--out", action=Once, metavar="FILE", help="write here instead of stdout")
    ex.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _days(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of days must be 0 or more")
    return value


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.session import open_service

    service = await open_service(settings, token=False)
    if getattr(args, "certs_command", None) == "export":
        return await _export(service, args)
    return await _list(service, args, settings)


async def _list(service: Any, args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, request_json, safe

    within = getattr(args, "expiring", None)
    if within == -1:
        within = settings.expiry_warning_days
    entries = await service.certificate_expiry(within)
    if getattr(args, "json", False):
        out = []
        for e in entries:
            c = e.certificate
            doc = request_json(e.request)
            doc["certificate"] = {"subject": c.subject, "issuer": c.issuer, "serial": c.serial,
                                  "not_before": c.not_before.isoformat(),
                                  "not_after": c.not_after.isoformat()}
            doc["not_after"] = c.not_after.isoformat()
            doc["days_left"] = e.days_left
            doc["expiry"] = e.state
            out.append(doc)
        print_json(out)
        return 0
    if not entries:
        print(f"No certificates expire within {within} days." if within is not None else
              "No issued certificates; import one with: tui-csr import-cert FILE")
    for e in entries:
        req, c = e.request, e.certificate
        mark = {"expired": "EXPIRED", "expiring": "EXPIRING"}.get(e.state, "")
        print(f"{req.id[:8]}  {safe(req.label)}  {safe(c.subject)}  issuer={safe(c.issuer)}  "
              f"serial={c.serial}  {c.not_before:%Y-%m-%d}..{c.not_after:%Y-%m-%d}  "
              f"{e.days_left}d {mark}".rstrip() + f"  {safe(','.join(req.groups))}  "
              f"{safe(req.owner or '-')}")
    return 0


async def _export(service: Any, args: Any) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding

    from tui_csr.cli.output import check_out, write_out
    from tui_csr.cli.session import find_request
    from tui_csr.errors import InputError

    part = args.part or "leaf"
    if args.der and part != "leaf":
        raise InputError("--der writes one certificate: use it with the leaf only.",
                         field="der")
    if args.der and not args.out:
        raise InputError("--der writes binary: give --out FILE.", field="der")
    if args.out:
        target = check_out(args.out, args.force)
    req = await find_request(service, args.id)
    where = str(target.resolve()) if args.out else "stdout"
    _req, certs = await service.export_certificate(req.id, part, where)
    if args.der:
        data = certs[0].public_bytes(Encoding.DER)
    else:
        data = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
    if args.out:
        print(f"wrote {write_out(args.out, data, args.force)}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("ascii"))
    return 0
