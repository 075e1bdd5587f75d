"""``tui-csr tokens [--json]``: every slot and token of the module, and how tui-csr treats each.

The first command to run on a new HSM: it needs no PIN, selects no token and changes nothing.
"""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import new_command

    tk = new_command(sub, "tokens", "describe every slot and token of the PKCS#11 module")
    tk.add_argument("--json", action="store_true")


def _flags(tok: Any) -> str:
    flags = ["login required" if tok.login_required else "no login needed"]
    if tok.protected_auth_path:
        flags.append("protected authentication path (PIN entered on the device)")
    if tok.pin_locked:
        flags.append("user PIN LOCKED")
    elif tok.pin_final_try:
        flags.append("user PIN: final try")
    elif tok.pin_count_low:
        flags.append("user PIN: count low")
    if tok.write_protected:
        flags.append("write-protected")
    return "; ".join(flags)


def render(desc: Any) -> list[str]:
    """The human listing (every text from the module made terminal-safe)."""
    from tui_csr.cli.output import safe

    lines = [f"Module {safe(desc.module)}: {safe(desc.library)} (Cryptoki "
             f"{desc.cryptoki_version}, library {desc.library_version})"]
    if not desc.tokens:
        lines.append("No initialised token in any slot.")
    for tok in desc.tokens:
        lines.append("")
        lines.append(f"Token '{safe(tok.label)}' (serial {safe(tok.serial) or '-'}, "
                     f"{safe(tok.manufacturer)} {safe(tok.model)}, slot {tok.slot_id})")
        lines.append(f"  flags:     {_flags(tok)}")
        lines.append(f"  profile:   {tok.profile} ({safe(tok.profile_reason)})")
        can = [name for name, why in tok.key_specs.items() if why is None]
        lines.append(f"  key specs: {', '.join(can) or 'none'}")
        for name, why in tok.key_specs.items():
            if why is not None:
                lines.append(f"    not {name}: {safe(why)}")
        combined = ", ".join(tok.combined_mechanisms)
        lines.append("  hashing:   " + (f"on the token ({combined})" if combined else
                                        "in software (no combined hash-and-sign mechanism)"))
        if tok.pin_hint:
            lines.append(f"  PIN:       {safe(tok.pin_hint)}")
        for n, text in enumerate(tok.adjustments):
            lines.append(("  adjusts:   " if n == 0 else "             ") + safe(text))
    if desc.empty_slots:
        lines.append("")
        lines.append(f"{len(desc.empty_slots)} slot(s) without an initialised token: "
                     + ", ".join(f"{s.slot_id} ({safe(s.slot_description)})"
                                 if s.slot_description.strip() else str(s.slot_id)
                                 for s in desc.empty_slots))
    return lines


async def run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import print_json
    from tui_csr.hsm.worker import list_tokens

    settings.apply_module_env()
    desc = await list_tokens(settings.module, settings.token_profile)
    if args.json:
        print_json(desc.to_json())
        return 0
    print("\n".join(render(desc)))
    return 0
