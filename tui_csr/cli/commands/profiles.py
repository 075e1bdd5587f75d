"""``tui-csr profiles list|show|add|edit|remove``: request profiles (changes: administrators).

A profile is what a group's policy names: defaults and constraints for the requests made into
the group (see :mod:`tui_csr.core.profiles`). Built-in profiles cannot be changed; ``add NEW
--from NAME`` copies one. Rule flags take comma-separated lists; ``any`` lifts a limit, ``none``
empties a list.
"""

from __future__ import annotations

import sys
from typing import Any

#: Rule flags: (flag, Profile field, kind, help). Kinds: list, list-or-any, text, bool3, int,
#: int-or-none, bool.
_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("--description", "description", "text", "what the profile is for"),
    ("--key-specs", "key_specs", "list", "allowed key specs (empty/none: any)"),
    ("--default-key-spec", "default_key_spec", "text-or-none", "key spec when none is given"),
    ("--hashes", "hashes", "list", "allowed hashes (none: any)"),
    ("--default-hash", "default_hash", "text-or-none", "hash when none is given"),
    ("--default-padding", "default_pss", "padding", "pss or pkcs1 (RSA keys), or none"),
    ("--key-usage", "key_usage", "list", "keyUsage requested by default"),
    ("--key-usage-required", "key_usage_required", "list", "keyUsage bits a request must have"),
    ("--key-usage-allowed", "key_usage_allowed", "list-or-any", "keyUsage bits a request may "
                                                                "have (any: no limit)"),
    ("--eku", "eku", "list", "extendedKeyUsage requested by default (names or dotted OIDs)"),
    ("--eku-required", "eku_required", "list", "extendedKeyUsage a request must have"),
    ("--eku-allowed", "eku_allowed", "list-or-any", "extendedKeyUsage a request may have"),
    ("--ca", "ca", "bool3", "yes: CA requests (CA:TRUE); no: end entities (CA:FALSE); any"),
    ("--path-len", "path_len", "int-or-none", "default pathLenConstraint (CA profiles)"),
    ("--path-len-max", "path_len_max", "int-or-none", "largest pathLenConstraint allowed"),
    ("--ski", "ski", "bool", "yes: request a subjectKeyIdentifier"),
    ("--san-types", "san_types", "list-or-any", "SAN types allowed: email, dns, ip, uri"),
    ("--san-required", "san_required", "list", "SAN types each request must carry"),
    ("--san-min", "san_min", "int", "fewest SANs"),
    ("--san-max", "san_max", "int-or-none", "most SANs (none: no limit)"),
    ("--dn-required", "dn_required", "list", "DN attributes a request must have (O, C ...)"),
    ("--dn-default", "dn_defaults", "pairs", "default DN value ATTR=VALUE (repeat; none clears)"),
    ("--attestation", "attestation_required", "bool", "yes: a key attestation is required"),
)


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, Parser, new_command

    pr = new_command(sub, "profiles", "request profiles (what a group's policy names)")
    psub = pr.add_subparsers(dest="profiles_command", metavar="ACTION", parser_class=Parser)
    pl = psub.add_parser("list", help="list profiles")
    pl.add_argument("--json", action="store_true")
    ps = psub.add_parser("show", help="show one profile")
    ps.add_argument("name")
    ps.add_argument("--json", action="store_true")
    for action, help_ in (("add", "create a profile (administrators)"),
                          ("edit", "change a stored profile (administrators)")):
        p = psub.add_parser(action, help=help_)
        p.add_argument("name")
        if action == "add":
            p.add_argument("--from", dest="copy_of", action=Once, metavar="PROFILE",
                           help="start from a copy of this profile")
        for flag, dest, kind, text in _RULES:
            if kind == "pairs":
                p.add_argument(flag, dest=dest, action="append", default=None,
                               metavar="ATTR=VALUE", help=text)
            else:
                p.add_argument(flag, dest=dest, action=Once, default=None, metavar="VALUE",
                               help=text)
        p.add_argument("--json", action="store_true")
    pm = psub.add_parser("remove", help="remove a stored profile no group uses (administrators)")
    pm.add_argument("name")


def changes_of(args: Any) -> dict[str, Any]:
    """The rule flags given, as Profile field values (raw names; the profile checks them)."""
    from tui_csr.errors import InputError

    def words(text: str) -> tuple[str, ...]:
        items = tuple(p.strip() for p in text.split(",") if p.strip())
        return () if [i.lower() for i in items] == ["none"] else items

    def number(flag: str, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{flag} needs a whole number, not '{text}'.",
                             field=flag[2:]) from None

    def yes_no(flag: str, text: str, *, allow_any: bool = False) -> bool | None:
        value = text.strip().lower()
        if value in ("yes", "true", "on", "1"):
            return True
        if value in ("no", "false", "off", "0"):
            return False
        if allow_any and value in ("any", "none", ""):
            return None
        raise InputError(f"{flag} takes yes or no{', or any' if allow_any else ''}, not "
                         f"'{text}'.", field=flag[2:])

    out: dict[str, Any] = {}
    for flag, dest, kind, _text in _RULES:
        raw = getattr(args, dest, None)
        if raw is None:
            continue
        if kind == "text":
            out[dest] = raw.strip()
        elif kind == "text-or-none":
            out[dest] = None if raw.strip().lower() in ("", "none") else raw.strip()
        elif kind == "list":
            out[dest] = words(raw)
        elif kind == "list-or-any":
            out[dest] = None if raw.strip().lower() == "any" else words(raw)
        elif kind == "bool3":
            out[dest] = yes_no(flag, raw, allow_any=True)
        elif kind == "bool":
            out[dest] = bool(yes_no(flag, raw))
        elif kind == "padding":
            value = raw.strip().lower()
            if value not in ("pss", "pkcs1", "none"):
                raise InputError(f"{flag} takes pss, pkcs1 or none, not '{raw}'.",
                                 field="default_pss")
            out[dest] = {"pss": True, "pkcs1": False, "none": None}[value]
        elif kind == "int":
            out[dest] = number(flag, raw)
        elif kind == "int-or-none":
            out[dest] = None if raw.strip().lower() in ("", "none") else number(flag, raw)
        elif kind == "pairs":
            pairs: list[tuple[str, str]] = []
            for item in raw:
                if item.strip().lower() == "none":
                    pairs = []
                    continue
                attr, sep, value = item.partition("=")
                if not sep or not attr.strip():
                    raise InputError(f"{flag} takes ATTR=VALUE, not '{item}'.", field="dn")
                pairs.append((attr.strip(), value.strip()))
            out[dest] = tuple(pairs)
    return out


def print_profile(profile: Any) -> None:
    """A profile's rules, one per line (terminal-safe)."""
    from tui_csr.cli.output import safe

    tag = " (built in)" if profile.builtin else (
        f" (by {safe(profile.created_by)})" if profile.created_by else "")
    print(f"{safe(profile.name)}{tag}")
    for rule, value in profile.summary():
        print(f"    {rule}: {safe(value)}")


def profile_json(profile: Any) -> dict[str, Any]:
    """The JSON object of a profile (``--json``)."""
    doc = profile.to_doc()
    doc["builtin"] = profile.builtin
    return doc


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json, safe
    from tui_csr.cli.session import open_service
    from tui_csr.core.profiles import Profile
    from tui_csr.errors import InputError

    service = await open_service(settings, token=False)
    action = args.profiles_command or "list"
    if action == "list":
        profiles = await service.list_profiles()
        if getattr(args, "json", False):
            print_json([profile_json(p) for p in profiles])
            return 0
        for p in profiles:
            print(f"{safe(p.name)}\tv{p.version}\t{'built-in' if p.builtin else 'stored'}\t"
                  f"{safe(p.description)}")
        return 0
    if action == "show":
        profile = await service.get_profile(args.name)
        if args.json:
            print_json(profile_json(profile))
        else:
            print_profile(profile)
        return 0
    if action == "remove":
        await service.remove_profile(args.name)
        print(f"removed profile {safe(args.name)}", file=sys.stderr)
        return 0
    changes = changes_of(args)
    if action == "add":
        profile = await service.add_profile(Profile(args.name), copy_of=args.copy_of,
                                            changes=changes)
        print(f"created profile {safe(profile.name)} v{profile.version}", file=sys.stderr)
    elif action == "edit":
        if not changes:
            raise InputError("Nothing to change: give at least one rule flag (see tui-csr "
                             "profiles edit --help).", field="profile")
        profile = await service.edit_profile(args.name, changes)
        print(f"changed profile {safe(profile.name)}, now v{profile.version}", file=sys.stderr)
    else:  # pragma: no cover - argparse limits the choices
        raise InputError(f"Unknown profiles action '{action}'.", field="profiles")
    if args.json:
        print_json(profile_json(profile))
    return 0
