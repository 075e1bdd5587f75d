"""Build, assemble, verify and describe PKCS#10 CSRs. No I/O: the token signs what we build here.

Flow: :func:`build_tbs` makes the CertificationRequestInfo from the subject, the public key and
the SANs; the token signs its DER; :func:`assemble` wraps the three; :func:`verify` checks the
signature in software with ``cryptography`` before anything is stored.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import algos, csr, keys, pem, x509

from tui_csr.core.dn import DistinguishedName, to_asn1_name
from tui_csr.core.keyspec import HashAlg, KeySpec, KeyType, Scheme
from tui_csr.core.san import SanEntry, to_general_names
from tui_csr.errors import InputError, TuiCsrError


def build_tbs(dn: DistinguishedName, spki_der: bytes,
              sans: Sequence[SanEntry] = ()) -> csr.CertificationRequestInfo:
    """The CertificationRequestInfo: version 0, subject, SubjectPublicKeyInfo, and an
    extensionRequest attribute holding the SAN extension when there are SANs."""
    attributes = []
    if sans:
        ext = x509.Extension({
            "extn_id": "subject_alt_name", "critical": False,
            "extn_value": to_general_names(sans),
        })
        attributes.append({"type": "extension_request",
                           "values": [x509.Extensions([ext])]})
    return csr.CertificationRequestInfo({
        "version": "v1",
        "subject": to_asn1_name(dn),
        "subject_pk_info": keys.PublicKeyInfo.load(spki_der),
        "attributes": attributes,
    })


def signature_algorithm(spec: KeySpec, hash_alg: HashAlg,
                        scheme: Scheme) -> algos.SignedDigestAlgorithm:
    """The AlgorithmIdentifier for the signature; PSS parameters match what the token signs
    with (MGF1 with the same hash, salt length = hash length, trailer field 1)."""
    h = hash_alg.asn1_name
    if scheme is Scheme.PSS:
        return algos.SignedDigestAlgorithm({
            "algorithm": "rsassa_pss",
            "parameters": algos.RSASSAPSSParams({
                "hash_algorithm": {"algorithm": h},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": h}},
                "salt_length": hash_alg.octets,
                "trailer_field": "trailer_field_bc",
            }),
        })
    if spec.key_type is KeyType.EC:
        return algos.SignedDigestAlgorithm({"algorithm": f"{h}_ecdsa"})
    return algos.SignedDigestAlgorithm({"algorithm": f"{h}_rsa"})


def assemble(tbs: csr.CertificationRequestInfo, sig_alg: algos.SignedDigestAlgorithm,
             signature: bytes) -> bytes:
    """DER of the CertificationRequest."""
    return csr.CertificationRequest({
        "certification_request_info": tbs,
        "signature_algorithm": sig_alg,
        "signature": signature,
    }).dump()


def verify(der: bytes) -> None:
    """Check the CSR's self-signature in software; raise TuiCsrError when it does not verify.

    This catches a token that signed with other parameters than the CSR states (e.g. PSS)."""
    from cryptography import x509 as cx509

    try:
        req = cx509.load_der_x509_csr(der)
        ok = req.is_signature_valid
    except ValueError as exc:
        raise TuiCsrError(f"The CSR is not well-formed: {exc}.") from exc
    if not ok:
        raise TuiCsrError("The CSR signature made by the token does not verify; nothing was "
                          "stored.", field="token")


def spec_of_spki(spki_der: bytes) -> KeySpec:
    """The :class:`KeySpec` of a SubjectPublicKeyInfo (for keys made before their record)."""
    from tui_csr.core.keyspec import KEY_SPECS

    info = keys.PublicKeyInfo.load(spki_der)
    if info.algorithm == "rsa":
        name = f"RSA{info.bit_size}"
    elif info.algorithm == "ec":
        name = _CURVES.get(info.curve[1], info.curve[1])
    else:
        name = info.algorithm
    if name not in KEY_SPECS:
        raise InputError(f"Key type {name} is not supported by tui-csr.", field="key_spec")
    return KEY_SPECS[name]


def to_pem(der: bytes) -> str:
    """PEM text (``-----BEGIN CERTIFICATE REQUEST-----``)."""
    return pem.armor("CERTIFICATE REQUEST", der).decode("ascii")


def from_pem_or_der(data: bytes | str) -> bytes:
    """DER of a CSR given as PEM or DER; InputError when it is neither."""
    raw = data.encode() if isinstance(data, str) else data
    if pem.detect(raw):
        try:
            _type, _hdr, der = pem.unarmor(raw)
        except ValueError as exc:
            raise InputError(f"The PEM text is damaged: {exc}.", field="csr") from exc
        return der
    return raw


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint, colon-separated upper-case hex."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


@dataclass(frozen=True)
class CsrSummary:
    """What a CSR says, decoded: for View CSR and ``show --text``."""

    subject: str
    sans: list[tuple[str, str]]
    key: str  # RSA 3072 / EC P-384
    signature: str  # SHA256withRSA / RSASSA-PSS (SHA-256, MGF1, salt 32)
    signature_valid: bool
    csr_sha256: str
    spki_sha256: str
    spki_der: bytes


_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def summarize(der: bytes) -> CsrSummary:
    """Decode ``der`` (a CSR) into a :class:`CsrSummary`, re-verifying its signature."""
    from cryptography import x509 as cx509

    req = csr.CertificationRequest.load(der)
    info = req["certification_request_info"]
    spki = info["subject_pk_info"]
    if spki.algorithm == "rsa":
        key = f"RSA {spki.bit_size}"
    else:
        curve = spki.curve[1] if spki.algorithm == "ec" else spki.algorithm
        key = f"EC {_CURVES.get(curve, curve)}"
    sig_alg = req["signature_algorithm"]
    if sig_alg.signature_algo == "rsassa_pss":
        params = sig_alg["parameters"]
        h = params["hash_algorithm"]["algorithm"].native.upper()
        signature = (f"RSASSA-PSS ({h[:3]}-{h[3:]}, MGF1, salt {params['salt_length'].native})")
    else:
        h = sig_alg.hash_algo.upper()
        signature = f"{h}with{'ECDSA' if sig_alg.signature_algo == 'ecdsa' else 'RSA'}"
    sans: list[tuple[str, str]] = []
    for attr in info["attributes"]:
        if attr["type"].native != "extension_request":
            continue
        for exts in attr["values"]:
            for ext in exts:
                if ext["extn_id"].native == "subject_alt_name":
                    sans += [_general_name(gn) for gn in ext["extn_value"].parsed]
    creq = cx509.load_der_x509_csr(der)
    spki_der = spki.dump()
    return CsrSummary(
        subject=creq.subject.rfc4514_string(), sans=sans, key=key, signature=signature,
        signature_valid=creq.is_signature_valid, csr_sha256=fingerprint(der),
        spki_sha256=fingerprint(spki_der), spki_der=spki_der)


def _general_name(gn: x509.GeneralName) -> tuple[str, str]:
    kind = {"rfc822_name": "email", "dns_name": "dns", "ip_address": "ip",
            "uniform_resource_identifier": "uri"}.get(gn.name, gn.name)
    return kind, str(gn.native)


def describe(der: bytes) -> str:
    """A text view like ``openssl req -text``, from what the CSR itself says."""
    s = summarize(der)
    lines = [
        "Certificate Request:",
        f"    Subject: {s.subject}",
        f"    Public Key: {s.key}",
        f"    Signature Algorithm: {s.signature}",
        f"    Signature: {'valid' if s.signature_valid else 'INVALID'}",
    ]
    if s.sans:
        lines.append("    Subject Alternative Names:")
        lines += [f"        {kind}: {value}" for kind, value in s.sans]
    lines += [
        f"    SHA-256 (CSR): {s.csr_sha256}",
        f"    SHA-256 (public key): {s.spki_sha256}",
    ]
    return "\n".join(lines) + "\n"


def der_b64(der: bytes) -> str:
    """Base64 of ``der`` without line breaks (for JSON output)."""
    return base64.b64encode(der).decode("ascii")
