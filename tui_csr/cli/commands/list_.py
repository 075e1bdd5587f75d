"""``tui-csr list``: pending (or all) requests."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    ls = new_command(sub, "list", "list pending requests")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--all", action="store_true", help="issued requests too")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, request_json, safe
    from tui_csr.cli.session import open_service
    from tui_csr.core.keyspec import KEY_SPECS
    from tui_csr.core.models import Status

    service = await open_service(settings, token=False)
    reqs = await service.list_requests(None if args.all else Status.PENDING)
    if args.json:
        print_json([request_json(r) for r in reqs])
        return 0
    if not reqs:
        groups = await service.list_groups()
        hint = ("no certificate group exists yet: an administrator must create one "
                "(tui-csr groups add NAME)" if not groups else
                "make one with: tui-csr generate --key-spec P-256 --cn NAME --group "
                f"{safe(groups[0].name)}")
        print(f"No pending requests; {hint}.")
        return 0
    rows = [("ID", "LABEL", "SUBJECT CN", "KEY", "GROUPS", "OWNER", "CREATED")]
    for r in reqs:
        rows.append((r.id[:8], safe(r.label), safe(r.subject_fields.get("CN", "")),
                     KEY_SPECS[r.key_spec].display if r.key_spec in KEY_SPECS else safe(r.key_spec),
                     safe(",".join(r.groups)), safe(r.owner or ""),
                     r.created.astimezone().strftime("%Y-%m-%d %H:%M")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
