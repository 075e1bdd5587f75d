"""``tui-csr audit``: the audit trail (generate, renew, retire, import, download, delete ...)."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, new_command

    a = new_command(sub, "audit", "list the audit log, oldest first")
    a.add_argument("--since", action=Once, metavar="DATE",
                   help="only entries at or after DATE (YYYY-MM-DD, or an ISO 8601 time; UTC "
                        "unless it names a zone)")
    a.add_argument("--json", action="store_true", help="a JSON array of entries")
    a.add_argument("--verify", action="store_true",
                   help="check the log's hash chain instead (exit 1 naming the first entry "
                        "altered, removed or moved)")


def parse_since(text: str):  # -> datetime
    """``--since``: a date (midnight UTC) or an ISO 8601 date-time (UTC when naive)."""
    from datetime import UTC, date, datetime

    from tui_csr.errors import InputError

    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--since '{value}' is not a date (YYYY-MM-DD) or an ISO 8601 time.",
                         field="since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, safe
    from tui_csr.cli.session import open_service

    since = parse_since(args.since) if args.since else None
    service = await open_service(settings, token=False)
    if args.verify:
        from tui_csr.errors import StoreError

        problem, count = await service.verify_audit()
        if problem:
            raise StoreError(problem)
        print(f"The audit log's hash chain is intact ({count} entries).")
        return 0
    entries = await service.audit_log(since)
    if args.json:
        print_json([e.to_doc() for e in entries])
        return 0
    if not entries:
        print("No audit entries" + (" since then." if since else "."))
    for e in entries:
        print(f"{e.at.isoformat().replace('+00:00', 'Z')}  {safe(e.user)}  {safe(e.action)}  "
              f"{safe(e.subject)}  {safe(e.detail)}")
    return 0
