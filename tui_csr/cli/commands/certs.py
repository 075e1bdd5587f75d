"""``tui-csr certs list``: issued certificates."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Parser, new_command

    ce = new_command(sub, "certs", "issued certificates")
    csub = ce.add_subparsers(dest="certs_command", metavar="ACTION", parser_class=Parser)
    cl = csub.add_parser("list", help="list issued certificates")
    cl.add_argument("--json", action="store_true")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, request_json, safe
    from tui_csr.cli.session import open_service

    service = await open_service(settings, token=False)
    certs = await service.list_certificates()
    if getattr(args, "json", False):
        out = []
        for req, c in certs:
            doc = request_json(req)
            doc["certificate"] = {"subject": c.subject, "issuer": c.issuer, "serial": c.serial,
                                  "not_before": c.not_before.isoformat(),
                                  "not_after": c.not_after.isoformat()}
            out.append(doc)
        print_json(out)
        return 0
    if not certs:
        print("No issued certificates; import one with: tui-csr import-cert ID FILE")
    for req, c in certs:
        print(f"{req.id[:8]}  {safe(req.label)}  {safe(c.subject)}  issuer={safe(c.issuer)}  "
              f"serial={c.serial}  {c.not_before:%Y-%m-%d}..{c.not_after:%Y-%m-%d}  "
              f"{safe(','.join(req.groups))}  {safe(req.owner or '-')}")
    return 0
