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

from tui_csr.core.dn import DistinguishedName, name_der
from tui_csr.core.extensions import (
    ExtensionView,
    RequestedExtensions,
    extensions_der,
    read_extensions,
    tlv,
)
from tui_csr.core.keyspec import HashAlg, KeySpec, KeyType, Scheme
from tui_csr.core.san import SanEntry, validate_sans
from tui_csr.errors import InputError, TuiCsrError

# asn1crypto re-encodes any structure whose DER header ends in 0x80 from its Python values, on
# every dump: it takes a length of 128 + 256k for the indefinite form. That re-encoding is lossy
# for SAN strings (URIs go through its normaliser, domains through IDNA 2003, which raises on
# 'ß'), and when it hits the whole request the CSR carried other bytes than the token signed.
# So the parts we build are encoded here, by hand, once; asn1crypto only parses them.
_EXTENSION_REQUEST = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e"  # 1.2.840.113549.1.9.14
_SUBJECT_ALT_NAME = b"\x06\x03\x55\x1d\x11"  # 2.5.29.17
_SAN_TAGS = {"email": 0x81, "dns": 0x82, "uri": 0x86, "ip": 0x87}  # [1] [2] [6] [7] IMPLICIT

def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    return tlv(tag, content)


def _name_der(dn: DistinguishedName) -> bytes:
    """The subject (see :func:`tui_csr.core.dn.name_der`: C first, each RDN a DER SET, each
    value in its type's string type)."""
    return name_der(dn)


def _san_extension_der(sans: Sequence[SanEntry]) -> bytes:
    import ipaddress

    names = b"".join(
        _tlv(_SAN_TAGS[e.kind.value], ipaddress.ip_address(e.value).packed
             if e.kind.value == "ip" else e.value.encode("ascii"))
        for e in sans)
    return _tlv(0x30, _SUBJECT_ALT_NAME + _tlv(0x04, _tlv(0x30, names)))


class _ExactRequestInfo(csr.CertificationRequestInfo):
    """A parsed CertificationRequestInfo whose ``dump()`` is exactly the bytes it came from."""

    _exact: bytes = b""

    def dump(self, force: bool = False) -> bytes:
        return self._exact


def build_tbs(dn: DistinguishedName, spki_der: bytes, sans: Sequence[SanEntry] = (),
              extensions: RequestedExtensions | None = None) -> csr.CertificationRequestInfo:
    """The CertificationRequestInfo: version 0, subject, SubjectPublicKeyInfo, and an
    extensionRequest attribute holding the SAN extension (when there are SANs) followed by
    the requested ``extensions`` (basicConstraints, keyUsage, extendedKeyUsage,
    subjectKeyIdentifier).

    Its ``dump()`` is the exact DER the token signs (see the note above ``_tlv``)."""
    sans = validate_sans(sans)  # what goes into a CSR is checked again, whatever the caller did
    keys.PublicKeyInfo.load(spki_der)  # raises on a malformed public key
    parts = [_san_extension_der(sans)] if sans else []
    if extensions is not None:
        parts += extensions_der(extensions, spki_der)
    attributes = b""
    if parts:
        attributes = _tlv(0x30, _EXTENSION_REQUEST + _tlv(0x31, _tlv(0x30, b"".join(parts))))
    der = _tlv(0x30, b"\x02\x01\x00" + _name_der(dn) + spki_der + _tlv(0xA0, attributes))
    tbs = _ExactRequestInfo.load(der)
    tbs._exact = der
    return tbs


def signature_algorithm(spec: KeySpec, hash_alg: HashAlg,
                        scheme: Scheme) -> algos.SignedDigestAlgorithm:
    """The AlgorithmIdentifier for the signature; PSS parameters match what the token signs
    with (MGF1 with the same hash, salt length = hash length, trailer field 1)."""
    if spec.key_type is KeyType.EDDSA:
        # RFC 8410 3: the parameters MUST be absent; PureEdDSA has no separate hash.
        return algos.SignedDigestAlgorithm({"algorithm": spec.curve})
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
    """DER of the CertificationRequest: exactly the signed bytes of ``tbs``, the algorithm and
    the signature (encoded by hand, see the note above ``_tlv``)."""
    return _tlv(0x30, tbs.dump() + sig_alg.dump() + _tlv(0x03, b"\x00" + signature))


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
    elif info.algorithm in ("ed25519", "ed448"):
        name = {"ed25519": "Ed25519", "ed448": "Ed448"}[info.algorithm]
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
    #: The requested extensions other than the SAN, decoded.
    extensions: tuple[ExtensionView, ...] = ()


_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def summarize(der: bytes) -> CsrSummary:
    """Decode ``der`` (a CSR) into a :class:`CsrSummary`, re-verifying its signature."""
    from cryptography import x509 as cx509

    req = csr.CertificationRequest.load(der)
    info = req["certification_request_info"]
    spki = info["subject_pk_info"]
    if spki.algorithm == "rsa":
        key = f"RSA {spki.bit_size}"
    elif spki.algorithm in ("ed25519", "ed448"):
        key = {"ed25519": "Ed25519", "ed448": "Ed448"}[spki.algorithm]
    else:
        curve = spki.curve[1] if spki.algorithm == "ec" else spki.algorithm
        key = f"EC {_CURVES.get(curve, curve)}"
    sig_alg = req["signature_algorithm"]
    if sig_alg["algorithm"].native in ("ed25519", "ed448"):
        signature = {"ed25519": "Ed25519", "ed448": "Ed448"}[sig_alg["algorithm"].native]
    elif sig_alg.signature_algo == "rsassa_pss":
        params = sig_alg["parameters"]
        h = params["hash_algorithm"]["algorithm"].native.upper()
        signature = (f"RSASSA-PSS ({h[:3]}-{h[3:]}, MGF1, salt {params['salt_length'].native})")
    else:
        h = sig_alg.hash_algo.upper()
        signature = f"{h}with{'ECDSA' if sig_alg.signature_algo == 'ecdsa' else 'RSA'}"
    sans: list[tuple[str, str]] = []
    requested: list[ExtensionView] = []
    for attr in info["attributes"]:
        if attr["type"].native != "extension_request":
            continue
        for exts in attr["values"]:
            for ext in exts:
                if ext["extn_id"].native == "subject_alt_name":
                    sans += [_general_name(gn) for gn in ext["extn_value"].parsed]
            requested += read_extensions(exts)
    creq = cx509.load_der_x509_csr(der)
    spki_der = spki.dump()
    return CsrSummary(
        subject=creq.subject.rfc4514_string(), sans=sans, key=key, signature=signature,
        signature_valid=creq.is_signature_valid, csr_sha256=fingerprint(der),
        spki_sha256=fingerprint(spki_der), spki_der=spki_der, extensions=tuple(requested))


def _general_name(gn: x509.GeneralName) -> tuple[str, str]:
    kind = {"rfc822_name": "email", "dns_name": "dns", "ip_address": "ip",
            "uniform_resource_identifier": "uri"}.get(gn.name, gn.name)
    if kind in ("email", "dns", "uri"):
        # The bytes as written: asn1crypto's .native decodes IDNA 2003 (raises on 'ß') and
        # normalises URIs, so it would show something else than the CSR carries.
        return kind, gn.chosen.contents.decode("ascii", "backslashreplace")
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
    if s.extensions:
        lines.append("    Requested Extensions:")
        lines += [f"        {e.name}{' (critical)' if e.critical else ''}: {', '.join(e.values)}"
                  for e in s.extensions]
    lines += [
        f"    SHA-256 (CSR): {s.csr_sha256}",
        f"    SHA-256 (public key): {s.spki_sha256}",
    ]
    return "\n".join(lines) + "\n"


def der_b64(der: bytes) -> str:
    """Base64 of ``der`` without line breaks (for JSON output)."""
    return base64.b64encode(der).decode("ascii")
