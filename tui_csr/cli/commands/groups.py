"""``tui-csr groups list|add|edit|rename|remove``: certificate groups (changes: administrators)."""

from __future__ import annotations

import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, Parser, new_command

    gr = new_command(sub, "groups", "certificate groups")
    gsub = gr.add_subparsers(dest="groups_command", metavar="ACTION", parser_class=Parser)
    gl = gsub.add_parser("list", help="list groups")
    gl.add_argument("--json", action="store_true")
    ga = gsub.add_parser("add", help="create a group (administrators)")
    ga.add_argument("name")
    ga.add_argument("--policy", default="")
    ga.add_argument("--description", default="")
    ge = gsub.add_parser("edit", help="change a group's policy, description or name "
                                      "(administrators)")
    ge.add_argument("name")
    ge.add_argument("--policy", action=Once, metavar="POLICY",
                    help="the profile the group's requests take on (tui-csr profiles list)")
    ge.add_argument("--description", action=Once, metavar="TEXT")
    ge.add_argument("--name", dest="new_name", action=Once, metavar="NEW", help="rename it")
    gn = gsub.add_parser("rename", help="rename a group (administrators)")
    gn.add_argument("old")
    gn.add_argument("new")
    gm = gsub.add_parser("remove", help="remove an empty group (administrators)")
    gm.add_argument("name")


async def run(args: Any, settings: Any) -> int:
    import asyncio

    from tui_csr.cli.output import print_json, safe
    from tui_csr.cli.session import open_service
    from tui_csr.errors import InputError

    service = await open_service(settings, token=False)
    action = args.groups_command or "list"
    if action == "list":
        groups = await service.list_groups()
        usage = await asyncio.to_thread(service.store.group_usage)
        if getattr(args, "json", False):
            out = []
            for g in groups:
                doc = g.to_doc()
                doc["pending"], doc["issued"] = usage.get(g.name, (0, 0))
                doc["policy_problem"] = await service.policy_problem(g.policy)
                out.append(doc)
            print_json(out)
        elif not groups:
            print("No certificate groups; an administrator creates one with: "
                  "tui-csr groups add NAME --policy POLICY")
        else:
            for g in groups:
                pending, issued = usage.get(g.name, (0, 0))
                problem = await service.policy_problem(g.policy)
                policy = f"{g.policy} ({problem.split(': ', 1)[1]})" if problem else g.policy
                print(f"{safe(g.name)}\tpolicy={safe(policy or '-')}\tpending={pending}\t"
                      f"issued={issued}\t{safe(g.description)}")
        return 0
    if action == "add":
        g = await service.add_group(args.name, policy=args.policy, description=args.description)
        print(f"created group {safe(g.name)}", file=sys.stderr)
        problem = await service.policy_problem(g.policy)
        if problem:  # kept (older stores use free text), but said: it constrains nothing
            print(f"note: policy {safe(problem)} (tui-csr profiles list)", file=sys.stderr)
    elif action == "edit":
        current = next((g for g in await service.list_groups()
                        if g.name.casefold() == args.name.casefold()), None)
        if current is None:
            raise InputError(f"There is no group '{args.name}'.", field="group")
        if args.policy is None and args.description is None and args.new_name is None:
            raise InputError("Nothing to change: give --policy, --description or --name.",
                             field="groups")
        g = await service.edit_group(
            current.name, new_name=args.new_name,
            policy=current.policy if args.policy is None else args.policy,
            description=current.description if args.description is None else args.description)
        print(f"saved group {safe(g.name)}", file=sys.stderr)
        problem = await service.policy_problem(g.policy)
        if problem:
            print(f"note: policy {safe(problem)} (tui-csr profiles list)", file=sys.stderr)
        if g.policy != current.policy:
            misfits = await service.group_misfits(g.name)
            for request, reason in misfits:
                print(f"warning: pending request {safe(request.label)} ({request.id[:8]}) does "
                      f"not fit the new policy: {safe(reason)}", file=sys.stderr)
    elif action == "rename":
        await service.rename_group(args.old, args.new)
        print(f"renamed group {safe(args.old)} to {safe(args.new)}", file=sys.stderr)
    elif action == "remove":
        await service.remove_group(args.name)
        print(f"removed group {safe(args.name)}", file=sys.stderr)
    else:  # pragma: no cover - argparse limits the choices
        raise InputError(f"Unknown groups action '{action}'.", field="groups")
    return 0
