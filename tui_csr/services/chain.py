"""A certificate with its chain: read from PEM bundles and PKCS#7, put in order, checked.

``import-cert`` accepts the leaf with the certificates that issued it, in any order, as a PEM
bundle (``CERTIFICATE`` and ``PKCS7`` blocks), one DER certificate or a DER PKCS#7 (``.p7b`` /
``.p7c``). The leaf is the certificate whose public key is the request's; the others are put in
issuing order (the leaf's issuer first, up to the root when it is there) and each link is checked:
the issuer's subject equals the issued certificate's issuer name and the issuer's key verifies its
signature (``cryptography``'s ``verify_directly_issued_by``). A certificate that does not fit
anywhere is refused with the place where the chain breaks. The store keeps the bundle as one PEM
text, leaf first (:func:`bundle_pem`); :func:`split_bundle` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tui_csr.errors import InputError

if TYPE_CHECKING:
    from cryptography import x509

_FIELD = "certificate"


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Every certificate in ``data``: PEM (``CERTIFICATE`` and ``PKCS7`` blocks, in the order
    given), a DER certificate or a DER PKCS#7. Duplicates are dropped. InputError (field
    ``certificate``) for anything else."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    raw = data.encode() if isinstance(data, str) else data
    certs: list[x509.Certificate] = []
    if b"-----BEGIN" in raw:
        for label, block in _pem_blocks(raw):
            try:
                if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
                    certs.append(x509.load_pem_x509_certificate(block))
                elif label in ("PKCS7", "CMS"):
                    certs += pkcs7.load_pem_pkcs7_certificates(block)
                else:
                    raise InputError(f"The file holds a PEM block '{label}'; give the "
                                     "certificate and its chain only (CERTIFICATE or PKCS7 "
                                     "blocks).", field=_FIELD)
            except ValueError as exc:
                raise InputError(f"A PEM block '{label}' in the file is damaged or not what it "
                                 "says.", field=_FIELD) from exc
    else:
        try:
            certs = [x509.load_der_x509_certificate(raw)]
        except ValueError:
            try:
                certs = list(pkcs7.load_der_pkcs7_certificates(raw))
            except ValueError as exc:
                raise InputError("This is not an X.509 certificate: the file is neither PEM "
                                 "text, a DER certificate nor a DER PKCS#7 (.p7b) holding "
                                 "certificates.", field=_FIELD) from exc
    unique: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for cert in certs:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    if not unique:
        raise InputError("The file holds no certificate.", field=_FIELD)
    return unique


def _pem_blocks(raw: bytes) -> list[tuple[str, bytes]]:
    """``(label, the whole block)`` for each PEM block, text between blocks ignored."""
    import re

    out = []
    pattern = rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----"
    for match in re.finditer(pattern, raw, re.DOTALL):
        out.append((match.group(1).decode("ascii"), match.group(0)))
    if not out:
        raise InputError("The PEM text has a BEGIN line without its END line (cut short?).",
                         field=_FIELD)
    return out


def spki_of(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo, DER."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def leaf_for_key(certs: Sequence[x509.Certificate],
                 spki_der: bytes) -> x509.Certificate | None:
    """The certificate in ``certs`` whose public key is ``spki_der`` (the request's)."""
    for cert in certs:
        if spki_of(cert) == spki_der:
            return cert
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def order_chain(leaf: x509.Certificate,
                others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``others`` in issuing order above ``leaf`` (its issuer first). InputError naming the
    break when a certificate is left that does not link, or a name matches but the signature
    does not verify."""
    remaining = [c for c in others if c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while remaining:
        if current.subject == current.issuer and _issued_by(current, current):
            break  # a self-signed root: nothing can be above it
        named = [c for c in remaining if c.subject == current.issuer]
        signer = next((c for c in named if _issued_by(current, c)), None)
        if signer is None:
            left = ", ".join(f"'{_name(c)}'" for c in remaining)
            if named:
                raise InputError(
                    f"The chain breaks at '{_name(current)}': the file's certificate "
                    f"'{_name(named[0])}' has its issuer's name but did not sign it (the "
                    "signature does not verify with its key); nothing was imported.",
                    field=_FIELD)
            issuer = current.issuer.rfc4514_string()
            raise InputError(
                f"The chain breaks at '{_name(current)}': its issuer '{issuer}' is not in the "
                f"file, so {left} {'does' if len(remaining) == 1 else 'do'} not link up to the "
                "certificate; nothing was imported.", field=_FIELD)
        ordered.append(signer)
        remaining.remove(signer)
        current = signer
    if remaining:
        left = ", ".join(f"'{_name(c)}'" for c in remaining)
        raise InputError(f"The chain ends at the self-signed '{_name(current)}', but {left} "
                         f"{'is' if len(remaining) == 1 else 'are'} left that "
                         "does not link to it; nothing was imported.", field=_FIELD)
    return ordered


def leaf_and_chain(data: bytes | str, spki_der: bytes,
                   request_label: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The leaf for the key ``spki_der`` and its chain in order, from the file's ``data``.
    InputError when no certificate in it is for that key, or the chain breaks."""
    certs = load_certificates(data)
    leaf = leaf_for_key(certs, spki_der)
    if leaf is None:
        if len(certs) == 1:
            raise InputError(f"This certificate is for another key than request "
                             f"'{request_label}'; nothing was imported.", field=_FIELD)
        raise InputError(f"No certificate in the file is for the key of request "
                         f"'{request_label}'; nothing was imported.", field=_FIELD)
    return leaf, order_chain(leaf, certs)


def bundle_pem(certs: Sequence[x509.Certificate]) -> str:
    """The certificates as one PEM text, in the order given."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def split_bundle(pem: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """A stored bundle (:func:`bundle_pem`, leaf first) as the leaf and its chain."""
    from cryptography import x509

    certs = x509.load_pem_x509_certificates(pem.encode())
    return certs[0], certs[1:]
