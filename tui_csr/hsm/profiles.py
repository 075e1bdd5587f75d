"""Token profiles: what tui-csr adjusts for each PKCS#11 implementation, in one table.

A profile is chosen from what the module and the token say about themselves (library
description and manufacturer, token manufacturer and model), or named with ``token_profile`` in
the config / ``TUI_CSR_TOKEN_PROFILE``. It never bends the security promise: whatever the
profile leaves to the token, the private key must read back SENSITIVE, not EXTRACTABLE,
ALWAYS_SENSITIVE, NEVER_EXTRACTABLE and SIGN, or it is destroyed (see :mod:`tui_csr.hsm.token`).

Pure data and string matching: no PKCS#11 call happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tui_csr.errors import ConfigError

#: Capability attributes of a key pair template that tui-csr sets to false where the token lets
#: it (a CSR key only signs). A profile may leave some of them to the token instead.
CAPABILITIES_OFF = ("ENCRYPT", "WRAP", "DECRYPT", "UNWRAP", "DERIVE")


@dataclass(frozen=True)
class Match:
    """Substrings (case-insensitive) that identify an implementation; any one field matching
    is enough. ``module_file`` is matched against the module's file name."""

    library: tuple[str, ...] = ()        # CK_INFO manufacturerID + libraryDescription
    token: tuple[str, ...] = ()          # CK_TOKEN_INFO manufacturerID + model
    module_file: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenProfile:
    """How tui-csr treats one PKCS#11 implementation."""

    name: str
    title: str
    #: Template attributes not sent at all (python-pkcs11's ``DEFAULT``): the token decides.
    leave_to_token: frozenset[str] = frozenset()
    #: Extra attributes left to the token for EC keys only (encrypt/wrap mean nothing there).
    leave_to_token_ec: frozenset[str] = frozenset()
    #: Whether the public key template carries CKA_PRIVATE=false and CKA_VERIFY=true.
    set_public_flags: bool = True
    key_id_mutable: bool = True
    key_id_length: int = 20
    label_max: int | None = None          # bytes of UTF-8
    stores_certificates: bool = True
    stores_data_objects: bool = True
    multipart_sign: bool = True
    pin_hint: str | None = None
    #: Whether tui-csr's processes take turns at each call into the module (an inter-process
    #: lock, :mod:`tui_csr.hsm.interprocess`): for stores that break under concurrent writers.
    serialise_processes: bool = False
    #: Key spec name -> why tui-csr refuses it before any key is made (known module bugs).
    refused_specs: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: CKR name -> what it usually means on this implementation (a fragment starting "; ").
    failure_hints: dict[str, str] = field(default_factory=dict)
    match: Match = Match()

    def left_to_token(self, ec: bool) -> frozenset[str]:
        """The capability attributes this profile does not put in the template."""
        return self.leave_to_token | (self.leave_to_token_ec if ec else frozenset())

    def label_problem(self, label: str) -> str | None:
        """None when ``label`` fits the token's label limit, else the sentence saying why not."""
        if self.label_max is not None and len(label.encode("utf-8")) > self.label_max:
            return (f"The key label is {len(label.encode('utf-8'))} bytes; {self.title} holds at "
                    f"most {self.label_max}.")
        return None

    def adjustments(self) -> list[str]:
        """What tui-csr does differently on this token, as sentences (``tui-csr tokens``)."""
        out: list[str] = []
        for ec, kind in ((False, "RSA and EC"), (True, "EC")):
            left = sorted(self.leave_to_token if not ec else
                          self.leave_to_token_ec - self.leave_to_token)
            if left:
                out.append(f"Leaves {', '.join('CKA_' + a for a in left)} of {kind} key "
                           "templates to the token.")
        if not self.set_public_flags:
            out.append("Leaves CKA_PRIVATE and CKA_VERIFY of the public key to the token.")
        if not self.key_id_mutable:
            out.append("Keeps the random CKA_ID chosen before generation (the token does not "
                       "let it change).")
        if self.key_id_length != 20:
            out.append(f"Uses CKA_ID values of {self.key_id_length} bytes.")
        if self.label_max is not None:
            out.append(f"Refuses key labels longer than {self.label_max} bytes.")
        if not self.stores_certificates:
            out.append("Keeps imported certificates in the store only (the token cannot hold "
                       "certificate objects).")
        if not self.multipart_sign:
            out.append("Signs in one C_Sign call (no multi-part signing).")
        for spec, why in sorted(self.refused_specs.items()):
            out.append(f"Refuses {spec}: {why}")
        out.extend(self.notes)
        return out


_SIGN_ONLY_EC = frozenset({"ENCRYPT", "WRAP", "DECRYPT", "UNWRAP"})

PROFILES: dict[str, TokenProfile] = {p.name: p for p in (
    TokenProfile(
        "softhsm", "SoftHSM 2",
        match=Match(library=("softhsm",), token=("softhsm",), module_file=("softhsm",)),
        # Its file store is not safe for concurrent writers (FIELD-NOTES: another process's
        # login or token search fails with CKR_GENERAL_ERROR while one writes).
        serialise_processes=True,
        notes=("A software token: good for trying tui-csr out, not for real keys.",)),
    TokenProfile(
        "tpm2-pkcs11", "tpm2-pkcs11",
        # One TPM attribute bit backs CKA_SIGN+CKA_ENCRYPT and one CKA_VERIFY+CKA_DECRYPT: a
        # template with ENCRYPT/DECRYPT=false contradicts itself there ("attr mismatch").
        leave_to_token=frozenset({"ENCRYPT", "DECRYPT"}),
        refused_specs={"P-521": "tpm2-pkcs11 returns a malformed CKA_EC_POINT for P-521 keys "
                                "and cannot sign with them."},
        notes=("Keys come back with CKA_DECRYPT=true and the public key with CKA_ENCRYPT=true "
               "(the TPM ties them to signing); tui-csr reports them in key_attributes.",
               "The TPM resource manager holds about 14 key generations per process.",),
        failure_hints={"CKR_GENERAL_ERROR": (
            "; on tpm2-pkcs11 this is often the TPM resource manager out of object slots "
            "(about 14 key generations per process): run tui-csr again")},
        match=Match(library=("tpm2-software", "tpm2.0 cryptoki"), module_file=("tpm2_pkcs11",))),
    TokenProfile(
        "p11-kit-client", "p11-kit client (remote token)",
        leave_to_token_ec=_SIGN_ONLY_EC,
        notes=("The token is on another host, forwarded by p11-kit server: every PKCS#11 call "
               "is a round trip; combined RSA-PSS mechanisms are not forwarded.",),
        match=Match(module_file=("p11-kit-client",))),
    TokenProfile(
        "luna", "Thales Luna / DPoD",
        pin_hint="The PIN is the partition's Crypto Officer (or Crypto User) password.",
        notes=("Luna lists combined ECDSA_SHA* mechanisms: the token hashes and signs.",),
        match=Match(library=("chrystoki", "safenet", "luna", "thales", "gemalto"),
                    token=("luna", "safenet", "thales", "cryptovisor", "gemalto"),
                    module_file=("cryptoki", "cklog"))),
    TokenProfile(
        "cloudhsm", "AWS CloudHSM",
        # CloudHSM refuses template attributes it does not support (CKR_TEMPLATE_INCONSISTENT).
        leave_to_token_ec=_SIGN_ONLY_EC,
        key_id_mutable=False, stores_certificates=False, stores_data_objects=False,
        multipart_sign=False,
        pin_hint="The PIN is the crypto user's name and password: USER:PASSWORD.",
        match=Match(library=("cloudhsm", "amazon"), token=("cloudhsm",),
                    module_file=("cloudhsm",))),
    TokenProfile(
        "fortanix", "Fortanix DSM",
        leave_to_token_ec=_SIGN_ONLY_EC,
        pin_hint="The PIN is the DSM app's API key.",
        match=Match(library=("fortanix",), token=("fortanix", "sdkms", "dsm"),
                    module_file=("fortanix", "sdkms"))),
    TokenProfile(
        "yubihsm2", "YubiHSM 2",
        leave_to_token_ec=_SIGN_ONLY_EC,
        key_id_mutable=False, key_id_length=2, label_max=40,
        pin_hint="The PIN is the authentication key's id in 4 hex digits followed by its "
                 "password, e.g. 0001password.",
        notes=("Objects are immutable after creation; CKA_ID is the 16-bit object id.",),
        match=Match(library=("yubihsm", "yubico"), token=("yubihsm",),
                    module_file=("yubihsm",))),
    TokenProfile(
        "generic", "generic PKCS#11 token",
        # Only what the security promise needs goes into the template.
        leave_to_token=frozenset(CAPABILITIES_OFF), set_public_flags=False,
        notes=("Sets only what the security promise needs; name a profile with token_profile "
               "if the token is one of the known ones.",)),
)}

#: Profiles tried against the token's own manufacturer/model first: a forwarder (p11-kit)
#: passes those through, so they name the real device behind it.
_ORDER = ("softhsm", "luna", "cloudhsm", "fortanix", "yubihsm2", "tpm2-pkcs11",
          "p11-kit-client")


def profile_names() -> list[str]:
    """Valid ``token_profile`` values."""
    return sorted(PROFILES)


def get_profile(name: str, field_name: str = "token_profile") -> TokenProfile:
    """The profile called ``name``; a ConfigError naming the valid ones otherwise."""
    key = (name or "").strip().lower()
    if key not in PROFILES:
        raise ConfigError(f"Unknown token profile '{name}'; valid profiles: "
                          f"{', '.join(profile_names())}.", field=field_name)
    return PROFILES[key]


def choose_profile(*, module_path: str, library: str, token_manufacturer: str, token_model: str,
                   override: str | None = None) -> tuple[TokenProfile, str]:
    """The profile for a token and the reason it was chosen (a sentence fragment)."""
    if override:
        return get_profile(override), "set by token_profile"
    token_text = f"{token_manufacturer} {token_model}".lower()
    lib_text = library.lower()
    file_name = module_path.rsplit("/", 1)[-1].lower()
    forwarded = any(s in file_name for s in PROFILES["p11-kit-client"].match.module_file)
    for name in _ORDER:
        prof = PROFILES[name]
        hit = next((s for s in prof.match.token if s in token_text), None)
        if hit and name != "p11-kit-client":
            via = " (forwarded through p11-kit-client)" if forwarded else ""
            who = f"{token_manufacturer} {token_model}".strip()
            return prof, f"token manufacturer/model '{who}' matches '{hit}'{via}"
    for name in _ORDER:
        prof = PROFILES[name]
        hit = next((s for s in prof.match.library if s in lib_text), None)
        if hit:
            return prof, f"library '{library}' matches '{hit}'"
        hit = next((s for s in prof.match.module_file if s in file_name), None)
        if hit:
            return prof, f"module file '{file_name}' matches '{hit}'"
    return PROFILES["generic"], "no known implementation matched the module or token info"
