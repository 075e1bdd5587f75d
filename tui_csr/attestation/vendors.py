"""What the vendors write into their attestation certificates, read as facts a CA looks at.

Thales Luna (SafeNet arc 1.3.6.1.4.1.12383): each certificate of a PKC chain carries a role as
its extendedKeyUsage (``.1.13`` on the PKC, ``.1.12`` DAC, ``.1.8``/``.1.15`` HOC, ``.1.7`` MIC,
``.1.1`` the Chrysalis-ITS root, ``.1.14`` the ECC integrity root, as Thales' own validator lists
them); ``.2.1`` holds the HSM serial as a little-endian uint32 and ``.2.3`` the firmware version
(byte 2 the major version, byte 0 the rest: ``54 00 07 00`` is 7.8.4, printed "784" by Thales'
validator); the PKC's CN is the key's object id (CKA_OUID in hex).

Fortanix DSM (arc 1.3.6.1.4.1.49690): the statement's subject names the key's kid in attribute
``.1.2.2``; ``.2.4.1.1`` says the key was generated in DSM, ``.2.4.1.2`` that it can never be
exported; the Key Attestation Authority carries extendedKeyUsage ``.8.1`` and is no CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_csr.attestation.reader import AttCert

SAFENET = "1.3.6.1.4.1.12383"
FORTANIX = "1.3.6.1.4.1.49690"
LUNA_ROLES = {f"{SAFENET}.1.13": "PKC", f"{SAFENET}.1.12": "DAC", f"{SAFENET}.1.8": "HOC",
              f"{SAFENET}.1.15": "HOC", f"{SAFENET}.1.7": "MIC", f"{SAFENET}.1.14": "MIC",
              f"{SAFENET}.1.1": "root"}
LUNA_SERIAL = f"{SAFENET}.2.1"
LUNA_FIRMWARE = f"{SAFENET}.2.3"
FORTANIX_KID = f"{FORTANIX}.1.2.2"
FORTANIX_GENERATED = f"{FORTANIX}.2.4.1.1"
FORTANIX_NEVER_EXPORTABLE = f"{FORTANIX}.2.4.1.2"
FORTANIX_AUTHORITY_EKU = f"{FORTANIX}.8.1"


@dataclass(frozen=True)
class HsmFacts:
    """What a chain says about the HSM and the key (None: the chain does not say)."""

    vendor: str  # "Thales Luna", "Fortanix DSM" or "unknown"
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    object_id: str | None = None  # Luna: the PKC's CN (CKA_OUID); Fortanix: the kid
    key_origin: tuple[str, ...] = ()  # e.g. ("generated in DSM", "never exportable")


def is_luna(chain: list[AttCert]) -> bool:
    return any(eku.startswith(SAFENET + ".") for cert in chain for eku in cert.ekus) or any(
        oid.startswith(SAFENET + ".") for cert in chain for oid in cert.extensions)


def is_fortanix(chain: list[AttCert]) -> bool:
    from tui_csr.attestation.reader import name_attribute

    leaf = chain[0] if chain else None
    return bool(leaf and (name_attribute(leaf.tbs["subject"], FORTANIX_KID)
                          or any(FORTANIX_AUTHORITY_EKU in c.ekus for c in chain)))


def roles(chain: list[AttCert], vendor: str) -> list[str]:
    """A role per certificate of ``chain`` (leaf first)."""
    out = []
    for n, cert in enumerate(chain):
        top = n == len(chain) - 1 and cert.self_issued
        role = ""
        if vendor == "Thales Luna":
            role = next((LUNA_ROLES.get(e, f"SafeNet role {e.rsplit('.', 1)[-1]}")
                         for e in cert.ekus if e.startswith(SAFENET + ".1.")), "")
            if not role:  # a chain without role EKUs: the documented order PKC, DAC, HOC, MIC
                order = ("PKC", "DAC", "HOC", "MIC")
                role = "root" if top and n >= len(order) else order[min(n, len(order) - 1)]
        elif vendor == "Fortanix DSM":
            # The statement's issuer is the Key Attestation Authority (CA:FALSE on DSM SaaS).
            role = ("statement" if n == 0 else "root" if top
                    else "authority" if n == 1 or FORTANIX_AUTHORITY_EKU in cert.ekus
                    else "CA")
        else:
            role = "leaf" if n == 0 else "root" if top else "CA"
        out.append(role)
    return out


def luna_facts(chain: list[AttCert], role_of: list[str]) -> HsmFacts:
    """HSM serial, firmware and model, and the key's object id, from a Luna chain."""
    serial = firmware = model = None
    for cert in chain:  # the PKC first: the HSM that holds the key
        raw = cert.extension_bytes(LUNA_SERIAL)
        if serial is None and raw and len(raw) == 4:
            serial = str(int.from_bytes(raw, "little"))
        raw = cert.extension_bytes(LUNA_FIRMWARE)
        if firmware is None and raw and len(raw) == 4:
            firmware = _firmware(raw)
    for cert, role in zip(chain, role_of, strict=True):
        # The DAC is named "<model>-<serial>" (e.g. "Luna K7-521174").
        if role == "DAC" and serial and cert.common_name.endswith("-" + serial):
            model = cert.common_name[: -len(serial) - 1].strip() or None
    # Only a real PKC (role EKU .1.13) has the object id as its CN.
    pkc = chain[0] if chain and f"{SAFENET}.1.13" in chain[0].ekus else None
    return HsmFacts(vendor="Thales Luna", model=model, serial=serial, firmware=firmware,
                    object_id=pkc.common_name if pkc else None)


def fortanix_facts(chain: list[AttCert]) -> HsmFacts:
    """The kid and the key's origin flags from a Fortanix statement."""
    from tui_csr.attestation.reader import name_attribute

    leaf = chain[0]
    origin = []
    if FORTANIX_GENERATED in leaf.extensions:
        origin.append("generated in DSM")
    if FORTANIX_NEVER_EXPORTABLE in leaf.extensions:
        origin.append("never exportable")
    return HsmFacts(vendor="Fortanix DSM", object_id=name_attribute(leaf.tbs["subject"],
                                                                    FORTANIX_KID),
                    key_origin=tuple(origin))


def _firmware(raw: bytes) -> str:
    major, rest = raw[2], int.from_bytes(raw[0:2], "little")
    if rest < 100:  # Luna firmware 7.8.4 is stored as 84
        return f"{major}.{rest // 10}.{rest % 10}"
    return f"{major}.{rest}"
