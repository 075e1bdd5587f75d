"""Vendor attestation roots, pinned by public key.

A root is recognised by the SHA-256 of its SubjectPublicKeyInfo (DER as ``cryptography``
writes it), never by the certificate's bytes: Thales re-issued the Chrysalis-ITS root with the
same key (a second certificate, with basicConstraints), and both must count. No root certificate
ships with tui-csr: the attestation file brings its root, and a chain whose self-signed top has a
pinned key is "verified to <root>". Each entry names the vendor's published certificate it was
derived from.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedRoot:
    """A vendor root: who it is, the hash of its key, and where the key was taken from."""

    name: str  # the root certificate's CN
    vendor: str
    key_type: str  # e.g. "RSA 4096"
    spki_sha256: str  # lower-case hex
    source: str = ""


PINNED_ROOTS: tuple[PinnedRoot, ...] = (
    # Thales Luna RSA root, from the root certificate Thales publishes for checking a PKC
    # ("Verifying the HSM's authenticity", thalesdocs.com Luna 7 docs; the same file is
    # tests/luna-rsa-root-certificate.pem in github.com/ThalesGroup/luna-pkc-validator):
    # CN=Chrysalis-ITS Root, O=Chrysalis-ITS Inc., valid 2002-01-01 to 2032-01-01.
    PinnedRoot(name="Chrysalis-ITS Root", vendor="Thales Luna", key_type="RSA 4096",
               spki_sha256="5d31fc462ae8a1a5327b149ff43aa6d867a28d7e17ca1cca7e7d514cf8cdc132",
               source="Thales Luna RSA root certificate (luna-rsa-root-certificate.pem)"),
    # Thales Luna ECC root, same publication (tests/luna-ecc-root-certificate.pem there):
    # CN=SafeNet ECC Manufacturer Integrity Module, O=SafeNet, Inc., 2010-08-12 to 2030-08-12.
    PinnedRoot(name="SafeNet ECC Manufacturer Integrity Module", vendor="Thales Luna",
               key_type="EC P-384",
               spki_sha256="9ce6c272050d813428e7b7a6754143690128b823151671efc5e29ca1321c6804",
               source="Thales Luna ECC root certificate (luna-ecc-root-certificate.pem)"),
    # Fortanix: the "Fortanix Attestation and Provisioning Root CA" is published at
    # https://pki.fortanix.com/Fortanix_Attestation_and_Provisioning_Root_CA.crt, which this
    # build could not reach; the root inside Fortanix's published sample response is, by
    # Fortanix's own test code, a test root. So no Fortanix root is pinned: pass the downloaded
    # certificate with `tui-csr attestation check --root FILE` (or add its hash here).
)


def spki_hash(spki_der: bytes) -> str:
    """SHA-256 (hex) of a SubjectPublicKeyInfo, normalised through ``cryptography`` when it can
    load the key (so two encodings of one key hash alike), else of the bytes as given."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
    )

    with contextlib.suppress(ValueError, TypeError, UnsupportedAlgorithm):
        spki_der = load_der_public_key(spki_der).public_bytes(Encoding.DER,
                                                              PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki_der).hexdigest()


def find_root(spki_der: bytes, roots: tuple[PinnedRoot, ...] = PINNED_ROOTS) -> PinnedRoot | None:
    """The pinned root whose key is ``spki_der``, if any."""
    digest = spki_hash(spki_der)
    return next((root for root in roots if root.spki_sha256 == digest), None)


def root_from_certificate(cert_spki_der: bytes, name: str, key_type: str,
                          source: str) -> PinnedRoot:
    """A :class:`PinnedRoot` for a root certificate the user supplies (``--root FILE``)."""
    return PinnedRoot(name=name, vendor="supplied", key_type=key_type,
                      spki_sha256=spki_hash(cert_spki_der), source=source)
