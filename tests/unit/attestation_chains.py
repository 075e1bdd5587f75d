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


# -- vendor-shaped chains with the encodings real HSMs emit ---------------------------------------
# Built by hand (DER pieces + cryptography signatures) because no builder writes these quirks:
# an explicitly encoded critical=FALSE, NULL parameters on ECDSA algorithm identifiers, an ECDSA
# ``s`` without its leading zero, roots without basicConstraints, a CA:FALSE issuer. The SafeNet
# and Fortanix OIDs are the documented ones; every name says "Test" and no key is a vendor's.

SAFENET = "1.3.6.1.4.1.12383"
FORTANIX = "1.3.6.1.4.1.49690"
HSM_SERIAL = 521174
FIRMWARE = bytes.fromhex("54000700")  # 7.8.4 as Luna stores it


def tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV with a definite length."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    from asn1crypto import core

    return core.ObjectIdentifier(dotted).dump()


def integer(value: int) -> bytes:
    """A DER INTEGER (two's complement, minimal)."""
    size = value.bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


NULL = b"\x05\x00"
BOOL_FALSE = b"\x01\x01\x00"
BOOL_TRUE = b"\x01\x01\xff"
RSA_SHA256 = seq(oid("1.2.840.113549.1.1.11"), NULL)
ECDSA_SHA384_NULL = seq(oid("1.2.840.10045.4.3.3"), NULL)  # the NULL is the quirk
ECDSA_SHA384 = seq(oid("1.2.840.10045.4.3.3"))


def rsa_pss_sha256() -> bytes:
    from asn1crypto import algos

    return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        "salt_length": 32, "trailer_field": "trailer_field_bc"}}).dump()


def extension(ext_oid: str, value: bytes, critical: bool | None = None) -> bytes:
    """An Extension; ``critical=False`` is written out (the BER quirk), None leaves it out."""
    flag = b"" if critical is None else (BOOL_TRUE if critical else BOOL_FALSE)
    return seq(oid(ext_oid), flag, tlv(0x04, value))


def eku(role: int) -> bytes:
    """SafeNet role EKU ``1.3.6.1.4.1.12383.1.<role>``, critical as on real PKCs."""
    return extension("2.5.29.37", seq(oid(f"{SAFENET}.1.{role}")), critical=True)


def basic_constraints(ca: bool) -> bytes:
    return extension("2.5.29.19", seq(BOOL_TRUE) if ca else seq(), critical=True)


def raw_name(*pairs: tuple[str, str]) -> bytes:
    """A Name from (OID, UTF8String value) pairs, one attribute per RDN, in the given order."""
    return seq(*(tlv(0x31, seq(oid(k), tlv(0x0C, v.encode()))) for k, v in pairs))


def cn(text: str, org: str = "Test Vendor") -> bytes:
    return raw_name(("2.5.4.10", org), ("2.5.4.3", text))


def spki_of(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import PublicFormat

    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _time(when: datetime) -> bytes:
    if when.year >= 2050:
        return tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())
    return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())


def hand_cert(subject: bytes, public_key, issuer: bytes, issuer_key, *, serial: int,
              exts: list[bytes], alg: bytes | None = None, unsigned_s: bool = False,
              not_before: datetime = NOW - timedelta(days=365),
              not_after: datetime = NOW + timedelta(days=3650)) -> bytes:
    """A DER certificate assembled by hand and signed by ``issuer_key``.

    ``alg`` defaults to RSA-SHA256 for RSA issuers and ECDSA-SHA384 with NULL parameters for EC
    issuers. ``unsigned_s``: sign until ``s`` has its top bit set, then write it without the
    leading zero DER needs (a DER reader sees a negative number; Luna's ECC PKC is like that).
    """
    from asn1crypto import algos
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    is_ec = isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    alg = alg or (ECDSA_SHA384_NULL if is_ec else RSA_SHA256)
    tbs = seq(tlv(0xA0, integer(2)), integer(serial), alg, issuer,
              seq(_time(not_before), _time(not_after)), subject, spki_of(public_key),
              tlv(0xA3, seq(*exts)) if exts else b"")
    name_ = algos.SignedDigestAlgorithm.load(alg).signature_algo
    if name_ == "ecdsa":
        while True:
            r, s = decode_dss_signature(issuer_key.sign(tbs, ec.ECDSA(hashes.SHA384())))
            top = s.bit_length() % 8 == 0  # the minimal big-endian form starts with bit 1
            if top or not unsigned_s:
                break
        s_der = tlv(0x02, s.to_bytes((s.bit_length() + 7) // 8, "big")) if unsigned_s \
            else integer(s)
        signature = seq(integer(r), s_der)
    elif name_ == "rsassa_pss":
        signature = issuer_key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                                    hashes.SHA256())
    else:
        signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return seq(tbs, alg, tlv(0x03, b"\x00" + signature))


def certs_only_bag(ders: list[bytes]) -> bytes:
    """A certs-only PKCS#7 SignedData (no signer infos) holding ``ders`` in exactly this order
    (assembled by hand: a DER encoder would sort the SET OF)."""
    signed = seq(integer(1), tlv(0x31, b""), seq(oid("1.2.840.113549.1.7.1")),
                 tlv(0xA0, b"".join(ders)), tlv(0x31, b""))
    return seq(oid("1.2.840.113549.1.7.2"), tlv(0xA0, signed))


def flip_signature(der: bytes) -> bytes:
    """``der`` with the last byte of its signature changed (the TBS is untouched)."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


class LunaCAs:
    """Throwaway keys for the Luna-shaped chains (RSA: DAC, HOC, MIC, root; ECC: HOC, root)."""

    def __init__(self) -> None:
        self.rsa = {role: new_key("RSA") for role in ("DAC", "HOC", "MIC", "root")}
        self.ecc = {role: ec.generate_private_key(ec.SECP384R1()) for role in ("HOC", "root")}


_CAS: LunaCAs | None = None


def luna_cas() -> LunaCAs:
    """One set of CA keys per test session (RSA key generation is the slow part)."""
    global _CAS
    if _CAS is None:
        _CAS = LunaCAs()
    return _CAS


def _safenet(serial: int = HSM_SERIAL, firmware: bool = True) -> list[bytes]:
    out = [extension(f"{SAFENET}.2.1", serial.to_bytes(4, "little"), critical=False)]
    if firmware:
        out.append(extension(f"{SAFENET}.2.3", FIRMWARE, critical=False))
    return out


def luna_rsa_chain(pkc_key, *, object_id: str = "41000000ae000002d6f30700",
                   cas: LunaCAs | None = None, pss_link: bool = False) -> list[bytes]:
    """Leaf first: PKC, DAC, HOC, MIC, root (self-signed, no basicConstraints), like a Luna
    RSA PKC. ``pss_link``: the DAC signs the PKC with RSA-PSS."""
    k = (cas or luna_cas()).rsa
    root_n, mic_n = cn("Test Chrysalis-ITS Root"), cn("Test Luna Mfg Integrity")
    hoc_n, dac_n = cn("Test Hardware Origin Certificate"), cn(f"Luna K7-{HSM_SERIAL}")
    pkc_n = raw_name(("2.5.4.11", "Test Proof of Origin"), ("2.5.4.3", object_id))
    usage = extension("2.5.29.15", bytes.fromhex("03020106"), critical=True)
    root = hand_cert(root_n, k["root"].public_key(), root_n, k["root"], serial=1,
                     exts=[eku(1)])
    mic = hand_cert(mic_n, k["MIC"].public_key(), root_n, k["root"], serial=2,
                    exts=[eku(7), usage, basic_constraints(True)])
    hoc = hand_cert(hoc_n, k["HOC"].public_key(), mic_n, k["MIC"], serial=3,
                    exts=[eku(8), usage, basic_constraints(True)])
    dac = hand_cert(dac_n, k["DAC"].public_key(), hoc_n, k["HOC"], serial=4,
                    exts=[eku(12), usage, *_safenet(), basic_constraints(True)])
    pkc = hand_cert(pkc_n, pkc_key.public_key(), dac_n, k["DAC"], serial=5,
                    exts=[eku(13), *_safenet()], alg=rsa_pss_sha256() if pss_link else None)
    return [pkc, dac, hoc, mic, root]


def luna_ecc_chain(pkc_key, *, object_id: str = "43000000ae000002d6f30700",
                   cas: LunaCAs | None = None) -> list[bytes]:
    """Leaf first: PKC, HOC, root (no DAC), ECDSA with NULL parameters, the PKC's ``s``
    without its leading zero, the root without basicConstraints."""
    k = (cas or luna_cas()).ecc
    root_n = cn("Test ECC Manufacturer Integrity Module ")  # the trailing blank is real too
    hoc_n = cn(str(HSM_SERIAL))
    pkc_n = raw_name(("2.5.4.11", "Luna Module"), ("2.5.4.3", object_id))
    root = hand_cert(root_n, k["root"].public_key(), root_n, k["root"], serial=1,
                     exts=[eku(14), extension("2.5.29.15", bytes.fromhex("03020186"), True)])
    hoc = hand_cert(hoc_n, k["HOC"].public_key(), root_n, k["root"], serial=2,
                    exts=[eku(15), basic_constraints(True)])
    pkc = hand_cert(pkc_n, pkc_key.public_key(), hoc_n, k["HOC"], serial=3,
                    exts=[eku(13), *_safenet(firmware=False)], unsigned_s=True)
    return [pkc, hoc, root]


def fortanix_response(statement_key, *, kid: str = "b2b87f84-80d2-4c4c-ba41-7fa12fb4eff5",
                      authority_not_after: datetime | None = None) -> tuple[bytes, bytes]:
    """(DSM-shaped JSON response, root certificate DER): statement issued by a CA:FALSE Key
    Attestation Authority, authority_chain issuer first, root last."""
    import base64
    import json

    k = luna_cas().rsa  # any throwaway keys will do
    authority_not_after = authority_not_after or datetime.now(UTC) + timedelta(days=30)
    root_n, ca_n = cn("Test Attestation Root CA"), cn("Test Key Attestation CA")
    auth_n = raw_name(("2.5.4.3", "Test DSM Key Attestation Authority"))
    stmt_n = raw_name(("2.5.4.3", "Test DSM Key Attestation"), (f"{FORTANIX}.1.2.2", kid))
    root = hand_cert(root_n, k["root"].public_key(), root_n, k["root"], serial=1,
                     exts=[basic_constraints(True)])
    ca = hand_cert(ca_n, k["MIC"].public_key(), root_n, k["root"], serial=2,
                   exts=[basic_constraints(True)])
    auth = hand_cert(auth_n, k["HOC"].public_key(), ca_n, k["MIC"], serial=3,
                     exts=[basic_constraints(False),
                           extension("2.5.29.37", seq(oid(f"{FORTANIX}.8.1")))],
                     not_after=authority_not_after)
    stmt = hand_cert(stmt_n, statement_key.public_key(), auth_n, k["HOC"], serial=4,
                     exts=[extension(f"{FORTANIX}.2.4.1.1", seq()),
                           extension(f"{FORTANIX}.2.4.1.2", seq())],
                     not_after=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    doc = {"authority_chain": [base64.b64encode(c).decode() for c in (auth, ca, root)],
           "attestation_statement": {"format": "x509_certificate",
                                     "statement": base64.b64encode(stmt).decode()}}
    return json.dumps(doc, indent=2).encode(), root


def csr_pem(key) -> bytes:
    """A CSR (PEM) for ``key``, signed in software."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(name("www.example.com")).sign(key, hashes.SHA256()))
    return csr.public_bytes(Encoding.PEM)
