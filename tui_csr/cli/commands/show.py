"""``tui-csr show ID``: one request as PEM, DER, decoded text or JSON."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    sh = new_command(sub, "show", "show one request")
    sh.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    fmt = sh.add_mutually_exclusive_group()
    fmt.add_argument("--pem", action="store_true", help="the CSR as PEM (default)")
    fmt.add_argument("--der", action="store_true", help="the CSR as DER (needs --out)")
    fmt.add_argument("--text", action="store_true", help="decoded, like openssl req -text")
    fmt.add_argument("--json", action="store_true")
    sh.add_argument("--out", metavar="FILE")
    sh.add_argument("--force", action="store_true", help="overwrite --out if it exists")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import json_text, request_json, safe_lines, write_out
    from tui_csr.cli.session import find_request, open_service
    from tui_csr.core.csr import describe, from_pem_or_der
    from tui_csr.errors import InputError

    service = await open_service(settings, token=False)
    req = await find_request(service, args.id)
    der = from_pem_or_der(req.csr_pem)
    if args.der:
        if not args.out:
            raise InputError("--der writes binary: give --out FILE.", field="der")
        path = write_out(args.out, der, args.force)
        print(f"wrote {path}", file=sys.stderr)
        await service.record_download(req, "CSR as DER", str(path))
        return 0
    if args.json:
        text = json_text(request_json(req)) + "\n"
    elif args.text:
        text = describe(der) + record_text(req)
        if not args.out:
            text = safe_lines(text)
    else:
        text = req.csr_pem
    if args.out:
        path = write_out(args.out, text.encode(), args.force)
        print(f"wrote {path}", file=sys.stderr)
        what = "request as JSON" if args.json else "CSR as text" if args.text else "CSR as PEM"
        await service.record_download(req, what, str(path))
    else:
        sys.stdout.write(text)
    return 0


def record_text(req: Any) -> str:
    """The store's facts about a request, in the indented style of ``openssl req -text``."""
    key = ""
    attrs = req.key_attributes or {}
    if attrs.get("ALWAYS_AUTHENTICATE"):
        key += ("    Key use: the PIN again before every signature "
                "(CKA_ALWAYS_AUTHENTICATE)\n")
    if req.key_forced:
        forced = ", ".join(f"{k}={str(v).lower()}" for k, v in sorted(req.key_forced.items()))
        key += f"    Set by the token against the template: {forced}\n"
    return key + (f"    Label: {req.label}\n    Token: {req.token_label}\n"
            f"    PKCS#11 URI: {req.pkcs11_uri}\n    Groups: {', '.join(req.groups)}\n"
            f"    Owner: {req.owner or '-'}\n"
            f"    Created: {req.created.astimezone().isoformat()} by {req.created_by}\n"
            f"    Status: {req.status.value}\n    Id: {req.id}\n"
            + (f"    Renews: {req.renews}\n" if req.renews else "")
            + (f"    Renewed by: {req.renewed_by}\n" if req.renewed_by else "")
            + (f"    Retired: {req.retired.astimezone().isoformat()}\n" if req.retired else "")
            + "".join(f"    Profile: {p.get('name')} v{p.get('version')} ({p.get('source')})\n"
                      for p in req.profiles or []))
