"""A throwaway CA made with `cryptography`, to issue certificates for requests in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TestCA:
    """A self-signed P-256 CA that issues certificates for CSRs (or for arbitrary keys)."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str = "Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1))
                     .not_valid_after(now + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, csr_pem: str, *, days: int = 365, start_days: int = -1,
              public_key=None) -> x509.Certificate:
        """Issue a certificate for the CSR's subject and key (or ``public_key`` instead)."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = datetime.now(UTC)
        return (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.name)
                .public_key(public_key or csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + timedelta(days=start_days))
                .not_valid_after(now + timedelta(days=start_days + days))
                .sign(self.key, hashes.SHA256()))


def pem(cert: x509.Certificate) -> bytes:
    """PEM of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    """DER of ``cert``."""
    return cert.public_bytes(serialization.Encoding.DER)
