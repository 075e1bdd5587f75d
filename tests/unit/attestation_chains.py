"""Throwaway attestation material built in software for the provider tests.

A Luna-like chain MIC (self-signed) -> HOC -> DAC -> PKC, and a Fortanix-like chain root ->
CA -> authority -> statement, where the last certificate certifies a given public key. Nothing
here claims to be vendor data: names only mimic the documented shapes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tui_csr.core.models import Request, utcnow

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def new_key(kind: str = "EC"):
    """A software private key (P-256 or RSA-2048)."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Vendor"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject: str, public_key, issuer: str, issuer_key, *, ca: bool,
         serial: int) -> x509.Certificate:
    """One certificate ``subject`` signed by ``issuer_key``."""
    return (x509.CertificateBuilder()
            .subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(public_key).serial_number(serial)
            .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def chain_for(public_key, names: tuple[str, str, str, str]) -> list[x509.Certificate]:
    """Top-down chain of four certificates; the last one certifies ``public_key``."""
    k1, k2, k3 = new_key(), new_key(), new_key()
    top = cert(names[0], k1.public_key(), names[0], k1, ca=True, serial=0x1001)
    mid = cert(names[1], k2.public_key(), names[0], k1, ca=True, serial=0x1002)
    low = cert(names[2], k3.public_key(), names[1], k2, ca=True, serial=0x1003)
    leaf = cert(names[3], public_key, names[2], k3, ca=False, serial=0x1004)
    return [top, mid, low, leaf]


LUNA_NAMES = ("Test MIC", "Test HOC", "Test DAC", "Test PKC")
FORTANIX_NAMES = ("Test Attestation Root CA", "Test Key Attestation CA",
                  "Test DSM Key Attestation Authority", "Test DSM Key Attestation")


def pkcs7_der(certs: list[x509.Certificate]) -> bytes:
    """A degenerate PKCS#7 SignedData holding just ``certs`` (as Luna's PKC file is)."""
    from asn1crypto import cms
    from asn1crypto import x509 as ax

    choices = [cms.CertificateChoices(name="certificate",
                                      value=ax.Certificate.load(c.public_bytes(Encoding.DER)))
               for c in certs]
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [],
        "encap_content_info": {"content_type": "data"},
        "certificates": choices, "signer_infos": [],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def request_for(key, *, label: str = "web-2026-01-01", token_label: str = "luna-part",
                key_spec: str | None = None, key_id: bytes = b"\x01\x02\x03") -> Request:
    """A stored-request record whose CSR (signed by ``key``, in software) carries ``key``."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(name("www.example.com")).sign(key, hashes.SHA256()))
    spec = key_spec or ("RSA2048" if isinstance(key, rsa.RSAPrivateKey) else "P-256")
    return Request(
        id=uuid.uuid4().hex, label=label, subject="CN=www.example.com,O=Test Vendor",
        subject_fields={"CN": "www.example.com", "O": "Test Vendor"}, sans=[], key_spec=spec,
        hash="SHA256", scheme="ECDSA" if spec.startswith("P-") else "PKCS1v15",
        token_label=token_label, key_id=key_id.hex(),
        pkcs11_uri=f"pkcs11:token={token_label};object={label};type=private",
        csr_pem=csr.public_bytes(Encoding.PEM).decode(), groups=["Web"], owner=None,
        created=utcnow(), created_by="tester")
