"""``tui-csr orphans list|destroy|adopt``: keys without a record, records without a key."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Parser, new_command

    orp = new_command(sub, "orphans", "keys without a record, records without a key")
    osub = orp.add_subparsers(dest="orphans_command", metavar="ACTION", parser_class=Parser)
    ol = osub.add_parser("list", help="report orphans (the default)")
    ol.add_argument("--json", action="store_true")
    od = osub.add_parser("destroy", help="destroy an orphan key pair on the token")
    od.add_argument("key_id", metavar="KEY_ID", help="CKA_ID in hex")
    od.add_argument("--yes", action="store_true", help="confirm: the key is destroyed")
    oa = osub.add_parser("adopt", help="make a new CSR for an orphan key and record it")
    oa.add_argument("key_id", metavar="KEY_ID", help="CKA_ID in hex")
    oa.add_argument("--dn", metavar="DN")
    oa.add_argument("--cn", metavar="TEXT")
    oa.add_argument("--hash", metavar="ALG")
    oa.add_argument("--pss", action="store_true")
    oa.add_argument("--group", action="append", default=[], metavar="NAME")
    oa.add_argument("--owner", metavar="USER")
    oa.add_argument("--json", action="store_true")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, request_json, safe
    from tui_csr.cli.session import open_service
    from tui_csr.errors import InputError
    from tui_csr.service import GenerateParams

    service = await open_service(settings, token=True)
    action = args.orphans_command or "list"
    if action == "destroy":
        if not args.yes:
            raise InputError("Destroying an orphan key is final; add --yes to confirm.",
                             field="yes")
        n = await service.destroy_orphan(args.key_id)
        print(f"destroyed {n} objects of key {safe(args.key_id)}", file=sys.stderr)
        return 0
    if action == "adopt":
        fields = {"CN": args.cn} if args.cn else {}
        req = await service.adopt_orphan(args.key_id, GenerateParams(
            key_spec="", hash=args.hash, pss=args.pss, dn=args.dn, fields=fields,
            groups=args.group, owner=args.owner))
        if args.json:
            print_json(request_json(req))
        else:
            sys.stdout.write(req.csr_pem)
        return 0
    report = await service.scan_orphans()
    if getattr(args, "json", False):
        print_json({
            "keys_without_record": [_orphan_json(k) for k in report.keys_without_record],
            "records_without_key": [{"id": r.id, "label": r.label, "key_id": r.key_id}
                                    for r in report.records_without_key]})
        return 0
    if report.empty:
        print("Token and store agree: no orphans.")
    for k in report.keys_without_record:
        kid = k.key_id.hex()
        made = ""
        if k.intent is not None:  # who started the generation that was cut short, and when
            made = (f"{safe(k.intent.key_spec)} by {safe(k.intent.created_by)} "
                    f"{k.intent.created:%Y-%m-%d %H:%M} UTC  ")
        print(f"key without a record: {kid}  label={safe(k.label)}  {made}"
              f"(tui-csr orphans adopt {kid} --cn ... --group ... | destroy {kid} --yes)")
    for r in report.records_without_key:
        print(f"record without a key: {r.id[:8]}  label={safe(r.label)}  key={safe(r.key_id)}")
    return 0


def _orphan_json(key: Any) -> dict[str, Any]:
    """An orphan key: its id and label; from its intent, who started its generation, when, of
    which key spec (``legacy``: found by an earlier version's token marker instead)."""
    doc: dict[str, Any] = {"key_id": key.key_id.hex(), "label": key.label,
                           "legacy": key.intent is None}
    if key.intent is not None:
        doc.update(key_spec=key.intent.key_spec, created_by=key.intent.created_by,
                   created=key.intent.created.isoformat().replace("+00:00", "Z"))
    return doc
