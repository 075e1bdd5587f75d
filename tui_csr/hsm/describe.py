"""What a PKCS#11 module offers: every slot and token, for ``tui-csr tokens`` and the TUI's
token picker. Reads module, slot, token and mechanism info only; needs no login and selects
no token. Runs on the token thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tui_csr.core.keyspec import KEY_SPECS, KeySpec, KeyType
from tui_csr.hsm.keys import serial_of
from tui_csr.hsm.profiles import PROFILES, choose_profile

#: The combined hash-and-sign mechanisms tui-csr uses where a slot lists them.
COMBINED = tuple(f"{kind}" for h in ("SHA256", "SHA384", "SHA512")
                 for kind in (f"ECDSA_{h}", f"{h}_RSA_PKCS", f"{h}_RSA_PKCS_PSS"))


@dataclass(frozen=True)
class TokenDescription:
    """One initialised token as the module reports it, and how tui-csr would treat it."""

    slot_id: int
    slot_description: str
    label: str
    serial: str
    manufacturer: str
    model: str
    login_required: bool
    protected_auth_path: bool
    pin_count_low: bool
    pin_final_try: bool
    pin_locked: bool
    write_protected: bool
    profile: str
    profile_reason: str
    pin_hint: str | None
    #: Key spec name -> None when the token can make it, else why not.
    key_specs: dict[str, str | None] = field(default_factory=dict)
    #: Combined hash-and-sign mechanisms the slot lists (the token hashes).
    combined_mechanisms: list[str] = field(default_factory=list)
    adjustments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SlotDescription:
    """A slot without an initialised token."""

    slot_id: int
    slot_description: str
    token_present: bool


@dataclass(frozen=True)
class ModuleDescription:
    """The module and all its slots."""

    module: str
    library: str
    cryptoki_version: str
    library_version: str
    tokens: list[TokenDescription] = field(default_factory=list)
    empty_slots: list[SlotDescription] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``tui-csr tokens --json``."""
        return asdict(self)


def spec_problem(spec: KeySpec, mechanisms: set[Any], info: Any, refused: dict[str, str],
                 label: str, ec_sizes: bool = True) -> str | None:
    """None when a slot with ``mechanisms`` (and ``info(mech)``) can make and sign with
    ``spec``; else the reason. The same rules as :meth:`Pkcs11Token.supports`; without
    ``ec_sizes`` an EC curve's size is not checked against ``info`` (no C_GetMechanismInfo
    for EC key pair generation)."""
    from pkcs11 import Mechanism

    if spec.name in refused:
        return f"Token '{label}' cannot make {spec.name} keys: {refused[spec.name]}"
    if spec.key_type is KeyType.EDDSA:
        for needed in (Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA):
            if needed not in mechanisms:
                return (f"Token '{label}' cannot make {spec.name} keys ({needed.name} is not "
                        "listed).")
        got = info(Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
        lo, hi = got.min_key_length, got.max_key_length
        if hi and not lo <= spec.bits <= hi:
            return f"Token '{label}' supports Edwards curves of {lo} to {hi} bits, not {spec.name}."
        return None
    mech = (Mechanism.RSA_PKCS_KEY_PAIR_GEN if spec.key_type is KeyType.RSA
            else Mechanism.EC_KEY_PAIR_GEN)
    if mech not in mechanisms:
        return f"Token '{label}' cannot generate {spec.key_type.value} keys ({mech.name} is not listed)."
    if spec.key_type is KeyType.RSA or ec_sizes:
        got = info(mech)
        lo, hi = got.min_key_length, got.max_key_length
        if spec.key_type is KeyType.RSA and not lo <= spec.bits <= hi:
            return f"Token '{label}' supports RSA keys of {lo} to {hi} bits, not {spec.bits}."
        if spec.key_type is KeyType.EC and hi and not lo <= spec.bits <= hi:
            return f"Token '{label}' supports EC curves of {lo} to {hi} bits, not {spec.name}."
    names = {m.name for m in mechanisms if hasattr(m, "name")}
    raw = "RSA_PKCS" if spec.key_type is KeyType.RSA else "ECDSA"
    combined = any(n.startswith("SHA") and n.endswith("_RSA_PKCS") for n in names) if (
        spec.key_type is KeyType.RSA) else any(n.startswith("ECDSA_SHA") for n in names)
    if raw not in names and not combined:
        return f"Token '{label}' cannot sign with {spec.key_type.value} keys."
    return None


def adjustments(profile: Any, module_path: str) -> list[str]:
    """The profile's adjustments, plus p11-kit's when the module forwards a remote token."""
    out = profile.adjustments()
    forwarder = PROFILES["p11-kit-client"]
    file_name = module_path.rsplit("/", 1)[-1].lower()
    if profile is not forwarder and any(s in file_name for s in forwarder.match.module_file):
        out.extend(forwarder.notes)
    return out


def describe_module(lib: Any, module_path: str, override: str | None) -> ModuleDescription:
    """Describe every slot of the loaded module ``lib``."""
    from pkcs11 import TokenFlag

    library = f"{lib.manufacturer_id.strip()} {lib.library_description.strip()}"
    out = ModuleDescription(
        module=module_path, library=library,
        cryptoki_version="{}.{}".format(*lib.cryptoki_version),
        library_version="{}.{}".format(*lib.library_version))
    for slot in lib.get_slots(token_present=False):
        try:
            tok = slot.get_token()
        except Exception:  # noqa: BLE001 - CKR_TOKEN_NOT_PRESENT and kin: an empty slot
            tok = None
        flags = TokenFlag(tok.flags) if tok is not None else TokenFlag(0)
        if tok is None or not flags & TokenFlag.TOKEN_INITIALIZED:
            out.empty_slots.append(SlotDescription(slot.slot_id,
                                                   slot.slot_description.strip(),
                                                   tok is not None))
            continue
        profile, reason = choose_profile(
            module_path=module_path, library=library,
            token_manufacturer=tok.manufacturer_id.strip(), token_model=tok.model.strip(),
            override=override)
        mechanisms = set(slot.get_mechanisms())
        infos: dict[Any, Any] = {}

        def info(mech: Any, _slot: Any = slot, _infos: dict[Any, Any] = infos) -> Any:
            if mech not in _infos:
                _infos[mech] = _slot.get_mechanism_info(mech)
            return _infos[mech]

        names = {m.name for m in mechanisms if hasattr(m, "name")}
        combined = [name for name in COMBINED if name in names]
        out.tokens.append(TokenDescription(
            slot_id=slot.slot_id, slot_description=slot.slot_description.strip(),
            label=tok.label, serial=serial_of(tok), manufacturer=tok.manufacturer_id.strip(),
            model=tok.model.strip(),
            login_required=bool(flags & TokenFlag.LOGIN_REQUIRED),
            protected_auth_path=bool(flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH),
            pin_count_low=bool(flags & TokenFlag.USER_PIN_COUNT_LOW),
            pin_final_try=bool(flags & TokenFlag.USER_PIN_FINAL_TRY),
            pin_locked=bool(flags & TokenFlag.USER_PIN_LOCKED),
            write_protected=bool(flags & TokenFlag.WRITE_PROTECTED),
            profile=profile.name, profile_reason=reason, pin_hint=profile.pin_hint,
            key_specs={name: spec_problem(spec, mechanisms, info, profile.refused_specs,
                                          tok.label)
                       for name, spec in KEY_SPECS.items()},
            combined_mechanisms=combined, adjustments=adjustments(profile, module_path)))
    return out
