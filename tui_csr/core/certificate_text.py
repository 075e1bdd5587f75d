"""An imported certificate (and its chain) decoded for people, in the spirit of
``openssl x509 -text -fingerprint``: pure, no I/O; every text from the certificate is written
with control characters escaped, so the result can go to a screen or a terminal as it is."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import datetime

from tui_csr.errors import InputError, printable


@dataclass(frozen=True)
class CertificateFiles:
    """The forms a certificate is saved in: its PEM, its DER, and the chain as PEM."""

    pem: str
    der: bytes
    chain_pem: str  # the certificate followed by the chain imported with it ('' for none)
    chain_length: int  # certificates after the first


def _load(pem_bundle: str) -> list:  # -> list[cryptography.x509.Certificate]
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem_bundle.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InputError("The stored certificate cannot be read; import it again.",
                         field="certificate") from exc
    return certs


def certificate_files(pem_bundle: str) -> CertificateFiles:
    """The certificate of ``pem_bundle`` (leaf first, then the chain) as PEM, DER and chain."""
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = _load(pem_bundle)
    leaf = certs[0]
    chain = "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)
    return CertificateFiles(pem=leaf.public_bytes(Encoding.PEM).decode("ascii"),
                            der=leaf.public_bytes(Encoding.DER),
                            chain_pem=chain if len(certs) > 1 else "",
                            chain_length=len(certs) - 1)


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days from ``now`` until ``not_after`` (negative once expired)."""
    return (not_after - now).days


def _hex(data: bytes, sep: str = ":") -> str:
    return binascii.hexlify(data, sep).decode("ascii").upper()


def _wrap_hex(data: bytes, indent: str, per_line: int = 18) -> list[str]:
    return [indent + _hex(data[i:i + per_line]) + (":" if i + per_line < len(data) else "")
            for i in range(0, len(data), per_line)]


def _name(name) -> str:  # cryptography.x509.Name
    return printable(name.rfc4514_string())


def _key_lines(cert) -> list[str]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return ["Public Key Algorithm: rsaEncryption",
                f"    Public-Key: ({key.key_size} bit)",
                f"    Exponent: {numbers.e} (0x{numbers.e:x})"]
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ["Public Key Algorithm: id-ecPublicKey",
                f"    Public-Key: ({key.key_size} bit)",
                f"    NIST CURVE: {key.curve.name}"]
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return [f"Public Key Algorithm: {type(key).__name__.removesuffix('PublicKey')}"]
    return [f"Public Key Algorithm: {type(key).__name__}"]


def _extension_lines(cert) -> list[str]:
    from cryptography import x509

    lines: list[str] = []
    for ext in cert.extensions:
        name = getattr(ext.oid, "_name", None) or ext.oid.dotted_string
        lines.append(f"    {name}:{' critical' if ext.critical else ''}")
        value = ext.value
        if isinstance(value, x509.SubjectAlternativeName):
            parts = ([f"email:{v}" for v in value.get_values_for_type(x509.RFC822Name)]
                     + [f"DNS:{v}" for v in value.get_values_for_type(x509.DNSName)]
                     + [f"IP Address:{v}" for v in value.get_values_for_type(x509.IPAddress)]
                     + [f"URI:{v}" for v in
                        value.get_values_for_type(x509.UniformResourceIdentifier)])
            text = ", ".join(parts)
        elif isinstance(value, x509.BasicConstraints):
            text = f"CA:{'TRUE' if value.ca else 'FALSE'}" + (
                f", pathlen:{value.path_length}" if value.path_length is not None else "")
        elif isinstance(value, x509.KeyUsage):
            flags = ["digital_signature", "content_commitment", "key_encipherment",
                     "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]
            on = [f for f in flags if getattr(value, f)]
            if value.key_agreement:
                on += [f for f in ("encipher_only", "decipher_only") if getattr(value, f)]
            text = ", ".join(on)
        elif isinstance(value, x509.ExtendedKeyUsage):
            text = ", ".join(getattr(o, "_name", None) or o.dotted_string for o in value)
        elif isinstance(value, x509.SubjectKeyIdentifier):
            text = _hex(value.digest)
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            text = _hex(value.key_identifier) if value.key_identifier else "-"
        else:
            text = _hex(ext.value.public_bytes()) if hasattr(ext.value, "public_bytes") \
                else str(value)
        lines.append(f"        {printable(text)}")
    return lines or ["    none"]


def _one(cert) -> list[str]:
    from cryptography.hazmat.primitives import hashes

    algorithm = cert.signature_algorithm_oid
    algorithm_name = getattr(algorithm, "_name", None) or algorithm.dotted_string
    lines = [
        "Certificate:",
        f"    Version: {cert.version.value + 1} (0x{cert.version.value:x})",
        f"    Serial Number: {_hex(cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, 'big'))}",  # noqa: E501
        f"    Signature Algorithm: {algorithm_name}",
        f"    Issuer: {_name(cert.issuer)}",
        "    Validity",
        f"        Not Before: {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC",
        f"        Not After : {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC",
        f"    Subject: {_name(cert.subject)}",
        *("    " + line for line in _key_lines(cert)),
        "    X509v3 extensions:",
        *("    " + line for line in _extension_lines(cert)),
        "    Fingerprints:",
        f"        SHA-256: {_hex(cert.fingerprint(hashes.SHA256()))}",
        f"        SHA-1:   {_hex(cert.fingerprint(hashes.SHA1()))}",  # noqa: S303 - shown, as CAs do
        "    Signature Value:",
        *_wrap_hex(cert.signature, "        "),
    ]
    return lines


def describe_certificate(pem_bundle: str) -> str:
    """The certificate of ``pem_bundle`` decoded (like ``openssl x509 -text``) with its SHA-256
    and SHA-1 fingerprints, followed by every certificate of the chain imported with it."""
    certs = _load(pem_bundle)
    lines = _one(certs[0])
    for number, cert in enumerate(certs[1:], start=1):
        lines += ["", f"Chain certificate {number} of {len(certs) - 1}:", *_one(cert)]
    if len(certs) == 1:
        lines += ["", "No chain was imported with this certificate."]
    return "\n".join(lines) + "\n"
