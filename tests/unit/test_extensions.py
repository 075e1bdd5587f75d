"""Requested extensions: names as RFC 5280/openssl spell them, DER that cryptography and openssl
read back exactly (critical flags included), and the rules between them."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_csr.core.csr import assemble, build_tbs, signature_algorithm, summarize, to_pem, verify
from tui_csr.core.dn import DistinguishedName
from tui_csr.core.extensions import (
    EKU_OIDS,
    KEY_USAGES,
    RequestedExtensions,
    basic_constraints_value,
    eku_value,
    key_usage_value,
    oid_der,
    parse_eku,
    parse_key_usage,
)
from tui_csr.core.keyspec import KEY_SPECS, HashAlg, KeyType, Scheme
from tui_csr.errors import InputError

_CRYPTO_KU = {"digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
              "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
              "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign",
              "cRLSign": "crl_sign", "encipherOnly": "encipher_only",
              "decipherOnly": "decipher_only"}


def crypto_key_usage(names: tuple[str, ...]) -> x509.KeyUsage:
    flags = {v: k in names for k, v in _CRYPTO_KU.items()}
    return x509.KeyUsage(**flags)


# -- parsing ------------------------------------------------------------------------------------

def test_key_usage_names_are_case_insensitive_and_come_back_in_bit_order() -> None:
    assert parse_key_usage("keycertsign, DIGITALSIGNATURE,cRLSign") == (
        "digitalSignature", "keyCertSign", "cRLSign")
    assert parse_key_usage("contentCommitment") == ("nonRepudiation",)
    assert parse_key_usage("none") == ()
    assert parse_key_usage(["digitalSignature", "keyAgreement"]) == (
        "digitalSignature", "keyAgreement")


@pytest.mark.parametrize(("text", "needle"), [
    ("digitalSignature,bogus", "Key usage 'bogus' is not known"),
    ("digitalSignature,digitalsignature", "given twice"),
])
def test_bad_key_usage_is_refused_naming_it(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle) as info:
        parse_key_usage(text)
    assert info.value.field == "key_usage"


def test_eku_takes_names_and_dotted_oids() -> None:
    assert parse_eku("serverauth,1.3.6.1.5.5.7.3.3,1.2.3.4") == (
        "serverAuth", "codeSigning", "1.2.3.4")
    assert parse_eku("OCSPSigning,timeStamping") == ("OCSPSigning", "timeStamping")
    for bad in ("webServer", "1.2.", "1", "3.1.2", "01.2.3"):
        with pytest.raises(InputError, match=r"is neither a known purpose \(serverAuth, .*\) nor a dotted OID"):
            parse_eku(bad)
    with pytest.raises(InputError, match="given twice"):
        parse_eku("serverAuth,1.3.6.1.5.5.7.3.1")


def test_rules_between_extensions() -> None:
    with pytest.raises(InputError, match="keyCertSign needs a CA request"):
        RequestedExtensions(key_usage=("keyCertSign",))
    with pytest.raises(InputError, match="path length applies to a CA request only"):
        RequestedExtensions(path_len=1)
    with pytest.raises(InputError, match="need keyAgreement"):
        RequestedExtensions(key_usage=("digitalSignature", "encipherOnly"))
    ext = RequestedExtensions(key_usage=("keyEncipherment",))
    with pytest.raises(InputError, match="keyEncipherment does not apply to P-256 keys"):
        ext.check_key("EC", "P-256")
    with pytest.raises(InputError, match="keyEncipherment does not apply to Ed25519"):
        ext.check_key("EdDSA", "Ed25519")
    ext.check_key("RSA", "RSA2048")


def test_record_form_round_trips() -> None:
    ext = RequestedExtensions(("digitalSignature", "keyCertSign"), ("1.2.3.4",), True, 3, True)
    assert RequestedExtensions.from_doc(ext.to_doc()) == ext
    assert RequestedExtensions.from_doc(None) == RequestedExtensions()


# -- DER, against cryptography's own encodings -------------------------------------------------

@given(st.sets(st.sampled_from(KEY_USAGES), min_size=1))
def test_key_usage_der_is_cryptographys(names: set[str]) -> None:
    ordered = tuple(n for n in KEY_USAGES if n in names)
    if {"encipherOnly", "decipherOnly"} & names and "keyAgreement" not in names:
        return  # cryptography refuses these too
    assert key_usage_value(ordered) == crypto_key_usage(ordered).public_bytes()


@given(st.lists(st.sampled_from(sorted(EKU_OIDS.values()) + ["1.2.3.4", "2.999.1"]),
                min_size=1, unique=True))
def test_eku_der_is_cryptographys(oids: list[str]) -> None:
    expected = x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in oids]).public_bytes()
    assert eku_value(oids) == expected


@pytest.mark.parametrize(("ca", "path_len"), [(False, None), (True, None), (True, 0),
                                              (True, 127), (True, 128), (True, 255)])
def test_basic_constraints_der_is_cryptographys(ca: bool, path_len: int | None) -> None:
    expected = x509.BasicConstraints(ca=ca, path_length=path_len).public_bytes()
    assert basic_constraints_value(ca, path_len) == expected


def test_oid_der_of_large_arcs() -> None:
    from asn1crypto import core

    for dotted in ("2.5.29.37.0", "1.3.6.1.4.1.311.60.2.1.3", "2.999.1", "1.2.840.113549.1.9.14"):
        assert core.ObjectIdentifier.load(oid_der(dotted)).dotted == dotted


# -- whole CSRs with software keys ---------------------------------------------------------------

_KEYS = {"P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
         "RSA2048": lambda: rsa.generate_private_key(65537, 2048),
         "Ed25519": ed25519.Ed25519PrivateKey.generate,
         "Ed448": ed448.Ed448PrivateKey.generate}
_PRIVATE = {name: make() for name, make in _KEYS.items()}


def software_csr(spec_name: str, ext: RequestedExtensions, sans=()) -> bytes:
    """A CSR built as the service builds it, signed by a software key."""
    key = _PRIVATE[spec_name]
    spec = KEY_SPECS[spec_name]
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs = build_tbs(DistinguishedName.from_pairs([("CN", "x.example"), ("C", "DE")]), spki,
                    sans, ext)
    if spec.key_type is KeyType.EDDSA:
        sig, scheme = key.sign(tbs.dump()), Scheme.EDDSA
    elif spec.key_type is KeyType.EC:
        sig, scheme = key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256())), Scheme.ECDSA
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        sig = key.sign(tbs.dump(), padding.PKCS1v15(), hashes.SHA256())
        scheme = Scheme.PKCS1V15
    der = assemble(tbs, signature_algorithm(spec, HashAlg.SHA256, scheme), sig)
    verify(der)
    return der


def read_back(der: bytes) -> dict[str, tuple[bool, object]]:
    req = x509.load_der_x509_csr(der)
    assert req.is_signature_valid
    return {e.oid.dotted_string: (e.critical, e.value) for e in req.extensions}


usages = st.sets(st.sampled_from(("digitalSignature", "nonRepudiation", "keyCertSign",
                                  "cRLSign")))
purposes = st.lists(st.sampled_from(sorted(EKU_OIDS) + ["1.2.3.4.5"]), unique=True)


@settings(max_examples=40, deadline=None)
@given(ku=usages, eku=purposes, ca=st.sampled_from([None, False, True]),
       path_len=st.one_of(st.none(), st.integers(0, 255)), ski=st.booleans(),
       spec=st.sampled_from(sorted(_KEYS)))
def test_requested_extensions_read_back_exactly(ku, eku, ca, path_len, ski, spec) -> None:
    if ca is not True:
        ku.discard("keyCertSign")
        path_len = None
    ext = RequestedExtensions(tuple(n for n in KEY_USAGES if n in ku), tuple(eku), ca, path_len,
                              ski)
    got = read_back(software_csr(spec, ext))
    want = set()
    if ca is not None:
        want.add("2.5.29.19")
        critical, value = got["2.5.29.19"]
        assert critical and value == x509.BasicConstraints(ca=ca, path_length=path_len)
    if ext.key_usage:
        want.add("2.5.29.15")
        critical, value = got["2.5.29.15"]
        assert critical and value == crypto_key_usage(ext.key_usage)
    if eku:
        want.add("2.5.29.37")
        critical, value = got["2.5.29.37"]
        assert not critical
        assert [o.dotted_string for o in value] == [EKU_OIDS.get(p, p) for p in eku]
    if ski:
        want.add("2.5.29.14")
        critical, value = got["2.5.29.14"]
        req = x509.load_der_x509_csr(software_csr(spec, ext))
        assert not critical
        assert value == x509.SubjectKeyIdentifier.from_public_key(req.public_key())
    assert set(got) == want


def test_openssl_reads_the_extensions_and_verifies(tmp_path) -> None:
    ext = RequestedExtensions(("digitalSignature", "keyCertSign", "cRLSign"),
                              ("serverAuth", "1.2.3.4"), True, 2, True)
    from tui_csr.core.san import SanEntry, SanKind

    pem = to_pem(software_csr("P-256", ext, [SanEntry(SanKind.DNS, "x.example")]))
    path = tmp_path / "x.pem"
    path.write_text(pem)
    out = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-text", "-verify"],
                         capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    assert "verify OK" in text
    assert "X509v3 Basic Constraints: critical\n                    CA:TRUE, pathlen:2" in text
    assert ("X509v3 Key Usage: critical\n                    Digital Signature, Certificate "
            "Sign, CRL Sign") in text
    assert ("X509v3 Extended Key Usage: \n                    TLS Web Server Authentication, "
            "1.2.3.4") in text
    assert "X509v3 Subject Key Identifier:" in text
    assert "DNS:x.example" in text


def test_summary_lists_the_requested_extensions() -> None:
    ext = RequestedExtensions(("digitalSignature",), ("codeSigning",), False, None, False)
    s = summarize(software_csr("Ed25519", ext))
    assert s.key == "Ed25519" and s.signature == "Ed25519" and s.signature_valid
    assert [(e.name, e.critical, e.values) for e in s.extensions] == [
        ("basicConstraints", True, ["CA:FALSE"]), ("keyUsage", True, ["digitalSignature"]),
        ("extendedKeyUsage", False, ["codeSigning"])]


def test_eku_oid_constants_match_cryptography() -> None:
    assert EKU_OIDS["codeSigning"] == ExtendedKeyUsageOID.CODE_SIGNING.dotted_string
    assert EKU_OIDS["OCSPSigning"] == ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string
    assert EKU_OIDS["timeStamping"] == ExtendedKeyUsageOID.TIME_STAMPING.dotted_string
