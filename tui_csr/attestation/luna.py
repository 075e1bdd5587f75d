"""Thales Luna / DPoD: the key's Public Key Confirmation (PKC), read through vendor attributes.

A PKC is a DER PKCS#7 SignedData holding the chain MIC -> HOC -> DAC -> PKC, where the PKC is the
certificate of the key itself (Luna's ``cmu getpkc`` writes the same bytes). Luna's
``cryptoki_v2.h`` names the attributes: CKA_PKC_TCTRUST (RSA keys, "TC-Trust Center" format),
CKA_PKC_CITS (RSA keys, "Chrysalis-ITS" format), CKA_PKC_ECC (EC keys), and CKA_OUID, the
object id DPoD's tools address objects by. The read runs on the token thread, through
:meth:`AsyncToken.call` and ``Pkcs11Token.read_vendor_attribute``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_csr.attestation.base import (
    AttestationError,
    AttestationResult,
    AttestationUnsupportedError,
    check_same_spki,
    request_spki,
)
from tui_csr.errors import InputError, TokenError

if TYPE_CHECKING:
    from tui_csr.core.models import Request
    from tui_csr.hsm.worker import AsyncToken

CKA_VENDOR_DEFINED = 0x80000000
CKA_PKC_TCTRUST = CKA_VENDOR_DEFINED | 0x0003
CKA_PKC_CITS = CKA_VENDOR_DEFINED | 0x0004
CKA_OUID = CKA_VENDOR_DEFINED | 0x0005
CKA_PKC_ECC = CKA_VENDOR_DEFINED | 0x0007

#: Which attributes may hold the PKC, per key type, in the order they are tried.
PKC_ATTRIBUTES: dict[str, tuple[int, ...]] = {
    "RSA": (CKA_PKC_TCTRUST, CKA_PKC_CITS),
    "EC": (CKA_PKC_ECC,),
}
#: ``cmu getpkc`` is given the private key's handle; the public object is a fallback.
OBJECT_CLASSES = ("private", "public")


class LunaProvider:
    """Key attestation from a Thales Luna HSM or a DPoD Luna Cloud HSM partition."""

    name = "luna"
    needs_token = True

    async def attest(self, request: Request, token: AsyncToken | None) -> AttestationResult:
        """Read the PKC of ``request``'s key, parse it and check it certifies the CSR's key."""
        from tui_csr.core.keyspec import KEY_SPECS

        if token is None:
            raise TokenError("No token is open.", field="token")
        if request.token_label and token.label and request.token_label != token.label:
            raise InputError(f"Request '{request.label}' lives on token '{request.token_label}', "
                             f"not on '{token.label}'; open that token to fetch its attestation.",
                             field="token")
        key_id = bytes.fromhex(request.key_id)
        key_type = KEY_SPECS[request.key_spec].key_type.value
        der = await _read_pkc(token, key_id, PKC_ATTRIBUTES[key_type])
        if der is None:
            raise AttestationUnsupportedError(
                f"Token '{token.label}' does not support key attestation (no Public Key "
                "Confirmation attribute).", code="CKR_ATTRIBUTE_TYPE_INVALID")
        report = check_pkc(der, request_spki(request))
        spki = check_same_spki(report.attested_spki_der, request,
                               "The Public Key Confirmation certificate")
        ouid = await _read_ouid(token, key_id) or report.facts.object_id
        return AttestationResult(
            provider=self.name, format="pkcs7-der", data=der,
            chain=[item.cert.summary(item.role) for item in reversed(report.chain)],
            attested_spki_der=spki, request_id=request.id, key_label=request.label,
            description="Thales Luna Public Key Confirmation (PKCS#7)", object_id=ouid,
            report=report)


async def _read_pkc(token: AsyncToken, key_id: bytes, attributes: tuple[int, ...]) -> bytes | None:
    for attr in attributes:
        for object_class in OBJECT_CLASSES:
            data = await token.read_vendor_attribute(key_id, attr, object_class)
            if data:
                return bytes(data)
    return None


async def _read_ouid(token: AsyncToken, key_id: bytes) -> str | None:
    # Only an identifier for the summary: a token without it is no reason to fail.
    try:
        raw = await token.read_vendor_attribute(key_id, CKA_OUID, "private")
    except TokenError:
        return None
    return bytes(raw).hex() if raw else None


def check_pkc(der: bytes, csr_spki: bytes):  # -> AttestationReport
    """Read a PKC (DER or PEM PKCS#7, BER tolerated) and run every check on it."""
    from tui_csr.attestation.check import check_attestation

    return check_attestation(_as_pkcs7(der), csr_spki, vendor="Thales Luna")


def _as_pkcs7(der: bytes) -> bytes:
    from tui_csr.attestation.reader import read_pkcs7, unarmor_all

    if der.lstrip().startswith(b"-----BEGIN"):
        blocks = unarmor_all(der.lstrip())
        if len(blocks) != 1:
            raise AttestationError("The Public Key Confirmation holds "
                                   f"{len(blocks)} PEM blocks; expected one PKCS7.")
        der = blocks[0][1]
    # Named for what it is when it is not a chain (the checker would say "attestation file").
    read_pkcs7(der, "The Public Key Confirmation read from the token")
    return der
