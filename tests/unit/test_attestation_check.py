"""The tolerant attestation checker against chains shaped like what real HSMs emit.

Every fixture is built here (tests/unit/attestation_chains.py) with the quirks seen in Thales'
and Fortanix's published samples: certs-only bags leaf first, 3- and 5-certificate chains,
explicit critical=FALSE, NULL parameters on ECDSA, an ECDSA ``s`` without its leading zero,
roots without basicConstraints, a CA:FALSE issuer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import algos
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.attestation_chains import (
    HSM_SERIAL,
    certs_only_bag,
    flip_signature,
    fortanix_response,
    luna_ecc_chain,
    luna_rsa_chain,
    new_key,
    spki_of,
)
from tui_csr.attestation import AttestationError
from tui_csr.attestation.check import check_attestation
from tui_csr.attestation.reader import AttCert, read_csr_spki
from tui_csr.attestation.roots import PINNED_ROOTS, PinnedRoot, find_root, spki_hash


def pin(der: bytes, name: str = "Test root") -> PinnedRoot:
    """A pinned root for a fixture root certificate (by its key, as the real ones are)."""
    return PinnedRoot(name=name, vendor="Test", key_type="test",
                      spki_sha256=spki_hash(AttCert.load(der).spki_der))


@pytest.fixture(scope="module")
def rsa_case():
    key = new_key("RSA")
    return key, luna_rsa_chain(key)


@pytest.fixture(scope="module")
def ecc_case():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, luna_ecc_chain(key)


def test_rsa_bag_of_five_leaf_first_verifies_to_its_pinned_root(rsa_case) -> None:
    key, chain = rsa_case
    report = check_attestation(certs_only_bag(chain), spki_of(key.public_key()),
                               roots=(pin(chain[-1], "Test Chrysalis-ITS Root"),))
    assert report.ok, report.check_lines()
    assert [c.role for c in report.chain] == ["PKC", "DAC", "HOC", "MIC", "root"]
    assert report.root is not None and report.root.name == "Test Chrysalis-ITS Root"
    assert report.check("root").detail.startswith("verified to Test Chrysalis-ITS Root")
    facts = report.facts
    assert (facts.vendor, facts.model, facts.serial, facts.firmware) == (
        "Thales Luna", "Luna K7", str(HSM_SERIAL), "7.8.4")
    assert facts.object_id == "41000000ae000002d6f30700"
    assert report.leaf.key_description == "RSA 2048"
    text = "\n".join(report.lines())
    assert "HSM: model Luna K7, serial 521174, firmware 7.8.4" in text
    assert "object id 41000000ae000002d6f30700" in text


def test_the_quirks_are_really_in_the_fixtures(rsa_case, ecc_case) -> None:
    """The strict reader refuses them, so the checker above is what reads them."""
    _key, rsa = rsa_case
    _key, ecc = ecc_case
    for der in (rsa[0], ecc[0]):
        with pytest.raises(ValueError):
            x509.load_der_x509_certificate(der)
    # explicit critical=FALSE on the SafeNet serial extension
    assert bytes.fromhex("0101000404") in rsa[0]
    # ECDSA algorithm identifier with NULL parameters
    assert bytes.fromhex("06082a8648ce3d0403030500") in ecc[0]
    # the PKC's s reads as negative in DER (no leading zero)
    sig = algos.DSASignature.load(ax.Certificate.load(ecc[0])["signature_value"].native)
    assert sig["s"].native < 0
    # roots without basicConstraints
    assert AttCert.load(rsa[-1]).is_ca is None and AttCert.load(ecc[-1]).is_ca is None


def test_ecc_bag_of_three_without_dac(ecc_case) -> None:
    key, chain = ecc_case
    report = check_attestation(certs_only_bag(chain), spki_of(key.public_key()),
                               roots=(pin(chain[-1]),))
    assert report.ok, report.check_lines()
    assert [c.role for c in report.chain] == ["PKC", "HOC", "MIC"]
    assert report.facts.serial == str(HSM_SERIAL) and report.facts.model is None
    assert report.leaf.key_description == "EC P-256"
    assert report.chain[2].cert.common_name == "Test ECC Manufacturer Integrity Module"


def test_any_order_in_the_bag_builds_the_same_chain(rsa_case) -> None:
    key, chain = rsa_case
    shuffled = [chain[2], chain[4], chain[0], chain[3], chain[1]]
    report = check_attestation(certs_only_bag(shuffled), spki_of(key.public_key()),
                               roots=(pin(chain[-1]),))
    assert report.ok
    assert [c.cert.der for c in report.chain] == chain


def test_pem_bag_and_pem_certificates_are_read(ecc_case) -> None:
    from asn1crypto import pem

    key, chain = ecc_case
    spki, roots = spki_of(key.public_key()), (pin(chain[-1]),)
    armored = pem.armor("PKCS7", certs_only_bag(chain))
    assert check_attestation(armored, spki, roots=roots).format == "pkcs7"
    loose = b"".join(pem.armor("CERTIFICATE", der) for der in reversed(chain))
    report = check_attestation(loose, spki, roots=roots)
    assert report.format == "pem" and report.ok


@pytest.mark.parametrize("link", [0, 1, 2, 3, 4])
def test_one_altered_signature_names_that_link(rsa_case, link: int) -> None:
    key, chain = rsa_case
    damaged = chain[:]
    damaged[link] = flip_signature(chain[link])
    report = check_attestation(certs_only_bag(damaged), spki_of(key.public_key()),
                               roots=(pin(chain[-1]),))
    assert not report.ok
    assert [c.name for c in report.failures] == ["chain"]
    role = ["PKC", "DAC", "HOC", "MIC", "root"][link]
    cn = AttCert.load(chain[link]).common_name
    detail = report.check("chain").detail
    if link == 4:
        assert f"the self-signature of root '{cn}'" in detail
    else:
        assert f"the signature on {role} '{cn}' by" in detail
    assert "does not verify" in detail


def test_altered_ecc_signature_with_unsigned_s(ecc_case) -> None:
    key, chain = ecc_case
    report = check_attestation(certs_only_bag([flip_signature(chain[0]), *chain[1:]]),
                               spki_of(key.public_key()), roots=(pin(chain[-1]),))
    assert report.check("chain").detail.startswith(
        "link fails: the signature on PKC '43000000ae000002d6f30700' by HOC '521174'")


def test_rsa_pss_link_verifies_and_fails_when_altered() -> None:
    key = new_key("RSA")
    chain = luna_rsa_chain(key, pss_link=True)
    assert AttCert.load(chain[0]).asn1["signature_algorithm"].signature_algo == "rsassa_pss"
    roots = (pin(chain[-1]),)
    assert check_attestation(certs_only_bag(chain), spki_of(key.public_key()), roots=roots).ok
    bad = check_attestation(certs_only_bag([flip_signature(chain[0]), *chain[1:]]),
                            spki_of(key.public_key()), roots=roots)
    assert "the signature on PKC" in bad.check("chain").detail


def test_unknown_root_is_said_so(rsa_case) -> None:
    key, chain = rsa_case
    report = check_attestation(certs_only_bag(chain), spki_of(key.public_key()))
    assert [c.name for c in report.failures] == ["root"]
    assert "the root is unknown: root 'Test Chrysalis-ITS Root'" in report.check("root").detail
    assert report.root is None


def test_chain_without_its_root_is_unknown(rsa_case) -> None:
    key, chain = rsa_case
    report = check_attestation(certs_only_bag(chain[:-1]), spki_of(key.public_key()),
                               roots=(pin(chain[-1]),))
    assert "is not in the file: the root is unknown" in report.check("root").detail
    # ... and supplying the root completes it.
    full = check_attestation(certs_only_bag(chain[:-1]), spki_of(key.public_key()),
                             roots=(pin(chain[-1]),), extra_certs=[AttCert.load(chain[-1])])
    assert full.ok


def test_key_mismatch_is_named(rsa_case, ecc_case) -> None:
    _rsa_key, chain = rsa_case
    ecc_key, _ = ecc_case
    report = check_attestation(certs_only_bag(chain), spki_of(ecc_key.public_key()),
                               roots=(pin(chain[-1]),))
    assert [c.name for c in report.failures] == ["key"]
    assert report.check("key").detail.startswith(
        "key mismatch: PKC '41000000ae000002d6f30700' attests another key than the CSR's")


def test_expired_and_not_yet_valid_are_named(rsa_case) -> None:
    key, chain = rsa_case
    cert = AttCert.load(chain[0])
    late = check_attestation(certs_only_bag(chain), spki_of(key.public_key()),
                             roots=(pin(chain[-1]),), at=cert.not_after + timedelta(days=1))
    assert late.check("validity").detail == (
        f"PKC '41000000ae000002d6f30700' expired on {cert.not_after:%Y-%m-%d}.")
    early = check_attestation(certs_only_bag(chain), spki_of(key.public_key()),
                              roots=(pin(chain[-1]),), at=cert.not_before - timedelta(days=1))
    assert "is not valid before" in early.check("validity").detail


def test_fortanix_response_with_ca_false_authority() -> None:
    key = new_key("EC")
    body, root = fortanix_response(key, kid="1234-kid")
    doc = json.loads(body)
    assert len(doc["authority_chain"]) == 3  # issuer first, root last
    report = check_attestation(body, spki_of(key.public_key()), roots=(pin(root),))
    assert report.ok, report.check_lines()
    assert [c.role for c in report.chain] == ["statement", "authority", "CA", "root"]
    assert report.chain[1].cert.is_ca is False  # the issuer of the statement is no CA
    assert report.facts.object_id == "1234-kid"
    assert report.facts.key_origin == ("generated in DSM", "never exportable")
    assert "kid 1234-kid" in "\n".join(report.lines())


def test_fortanix_expired_authority_and_unpinned_root_are_both_named() -> None:
    key = new_key("EC")
    body, _root = fortanix_response(key, authority_not_after=datetime(2023, 10, 1,
                                                                      tzinfo=UTC))
    report = check_attestation(body, spki_of(key.public_key()))
    assert [c.name for c in report.failures] == ["root", "validity"]
    assert report.check("validity").detail == (
        "authority 'Test DSM Key Attestation Authority' expired on 2023-10-01.")
    assert "is not a pinned vendor root" in report.check("root").detail


def test_reissued_root_with_the_same_key_is_recognised(rsa_case) -> None:
    """A root is pinned by its key: a second certificate for the same key counts too."""
    from tests.unit.attestation_chains import basic_constraints, cn, eku, hand_cert, luna_cas

    key, chain = rsa_case
    root_key = luna_cas().rsa["root"]
    name = cn("Test Chrysalis-ITS Root")
    reissued = hand_cert(name, root_key.public_key(), name, root_key, serial=99,
                         exts=[eku(1), basic_constraints(True)])
    assert reissued != chain[-1]
    assert find_root(AttCert.load(reissued).spki_der, (pin(chain[-1]),)) is not None
    report = check_attestation(certs_only_bag([*chain[:-1], reissued]),
                               spki_of(key.public_key()), roots=(pin(chain[-1]),))
    assert report.ok


def test_unreadable_files_raise_one_sentence() -> None:
    for data, words in [(b"junk", "neither a PKCS#7"), (b"\x30\x03\x02\x01\x05junk", "not a "
                        "PKCS#7 certificate chain"), (b"{}", "lacks attestation_statement"),
                        (b"{", "not valid JSON"), (b"-----BEGIN X-----\nAA==\n-----END X-----\n",
                                                   "PEM blocks of type X")]:
        with pytest.raises(AttestationError, match=words):
            check_attestation(data)


def test_pinned_vendor_roots_are_keys_not_certificates() -> None:
    names = {r.name for r in PINNED_ROOTS}
    assert names == {"Chrysalis-ITS Root", "SafeNet ECC Manufacturer Integrity Module"}
    for root in PINNED_ROOTS:
        assert len(bytes.fromhex(root.spki_sha256)) == 32 and root.source


def test_csr_reader_tolerates_null_parameters() -> None:
    """Luna's ``cmu requestcertificate`` writes ECDSA with NULL parameters: read its key."""
    from tests.unit.attestation_chains import ECDSA_SHA384_NULL, seq, tlv

    key = ec.generate_private_key(ec.SECP256R1())
    info = seq(b"\x02\x01\x00", seq(), spki_of(key.public_key()), tlv(0xA0, b""))
    from cryptography.hazmat.primitives import hashes

    der = seq(info, ECDSA_SHA384_NULL, tlv(0x03, b"\x00" + key.sign(info, ec.ECDSA(
        hashes.SHA384()))))
    with pytest.raises(ValueError):
        x509.load_der_x509_csr(der)
    assert read_csr_spki(der) == spki_of(key.public_key())
    with pytest.raises(AttestationError, match="not a PKCS#10"):
        read_csr_spki(b"\x30\x00")
