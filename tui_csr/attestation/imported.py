"""Attestation files imported for a request (``tui-csr attestation import ID FILE``).

An admin who got the file another way (``cmu getpkc``, a DSM call) attaches it to the request
after it passed every check; View CSR and "Download key attestation" then offer it even on a
token tui-csr cannot fetch it from. The file is kept as base64 in the request's ``attestation``
field; a PEM PKCS#7 is kept as its DER, so it saves as ``.p7b`` or ``.pem`` alike.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from tui_csr.attestation.base import AttestationError, AttestationResult, request_spki
from tui_csr.attestation.roots import PINNED_ROOTS, PinnedRoot

if TYPE_CHECKING:
    from tui_csr.attestation.check import AttestationReport
    from tui_csr.attestation.reader import AttCert
    from tui_csr.core.models import Request

_FORMATS = {"pkcs7": "pkcs7-der", "fortanix-json": "fortanix-json", "pem": "pem-certificates"}


def failure_error(report: AttestationReport) -> AttestationError:
    """The error naming every failed check of ``report``."""
    text = "; ".join(f"{c.name}: {c.detail.rstrip('.')}" for c in report.failures)
    return AttestationError(f"attestation check failed: {text}.")


def check_for_request(request: Request, data: bytes, *,
                      roots: tuple[PinnedRoot, ...] = PINNED_ROOTS,
                      extra_certs: list[AttCert] | None = None) -> tuple[AttestationReport, str]:
    """(report, the value to store) for ``data`` checked against ``request``'s CSR key.

    Raises :class:`AttestationError` when the file cannot be read; a failed check is in the
    report (the caller refuses to attach it).
    """
    from tui_csr.attestation.check import check_attestation
    from tui_csr.attestation.reader import unarmor_all

    report = check_attestation(data, request_spki(request), roots=roots, extra_certs=extra_certs)
    stored = data
    if report.format == "pkcs7" and data.lstrip().startswith(b"-----BEGIN"):
        stored = unarmor_all(data.lstrip())[0][1]
    return report, base64.b64encode(stored).decode("ascii")


def imported_result(request: Request) -> AttestationResult:
    """The attached attestation of ``request`` as a result to save, checked again (validity is
    judged today). AttestationError when the request has none or it no longer reads."""
    from tui_csr.attestation.check import check_attestation

    if not request.attestation:
        raise AttestationError(f"Request '{request.label}' has no imported attestation.")
    try:
        data = base64.b64decode(request.attestation, validate=True)
    except ValueError as exc:
        raise AttestationError(f"The attestation stored with request '{request.label}' is "
                               "damaged (not base64).") from exc
    report = check_attestation(data, request_spki(request))
    key = report.check("key")
    if key is not None and not key.ok:
        raise AttestationError(f"The attestation stored with request '{request.label}' "
                               f"no longer matches its CSR: {key.detail}")
    vendor = report.facts.vendor if report.facts.vendor != "unknown" else "key"
    return AttestationResult(
        provider="imported", format=_FORMATS[report.format], data=data,
        chain=[item.cert.summary(item.role) for item in reversed(report.chain)],
        attested_spki_der=report.attested_spki_der, request_id=request.id,
        key_label=request.label, description=f"Imported {vendor} attestation",
        object_id=report.facts.object_id, report=report)
