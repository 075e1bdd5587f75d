"""Key attestation: proof from the HSM vendor that a request's key was made in the HSM and
cannot leave it.

Providers: Thales Luna / DPoD (Public Key Confirmation, PKCS#7, read through the token) and
Fortanix DSM (REST). Every result is checked against the request's CSR key before it can be
saved. Headless: no Textual import here or below.
"""

from __future__ import annotations

from tui_csr.attestation.base import (
    AttestationError,
    AttestationProvider,
    AttestationResult,
    AttestationUnsupportedError,
    CertSummary,
)
from tui_csr.attestation.files import (
    default_file_name,
    planned_problem,
    save_attestation,
    target_problem,
)
from tui_csr.attestation.support import (
    UNSUPPORTED,
    attestation_support,
    make_provider,
    suggest_provider,
)

__all__ = [
    "UNSUPPORTED",
    "AttestationError",
    "AttestationProvider",
    "AttestationResult",
    "AttestationUnsupportedError",
    "CertSummary",
    "attestation_support",
    "default_file_name",
    "make_provider",
    "planned_problem",
    "save_attestation",
    "suggest_provider",
    "target_problem",
]
