"""Certificate chains on import: read from PEM and PKCS#7, put in order, checked link by link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID

from tui_csr.errors import InputError
from tui_csr.services.chain import (
    bundle_pem,
    leaf_and_chain,
    load_certificates,
    spki_of,
    split_bundle,
)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, key, signer, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
            .sign(signer, hashes.SHA256()))


@pytest.fixture(scope="module")
def pki():
    """Root -> Issuing CA 1 -> Issuing CA 2 -> leaf, and the leaf's key."""
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("root", "i1", "i2", "leaf")}
    root = _cert("Root CA", "Root CA", keys["root"], keys["root"], ca=True)
    i1 = _cert("Issuing CA 1", "Root CA", keys["i1"], keys["root"], ca=True)
    i2 = _cert("Issuing CA 2", "Issuing CA 1", keys["i2"], keys["i1"], ca=True)
    leaf = _cert("www.example.com", "Issuing CA 2", keys["leaf"], keys["i2"], ca=False)
    return {"root": root, "i1": i1, "i2": i2, "leaf": leaf, "keys": keys}


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def test_pem_bundle_out_of_order_is_put_in_issuing_order(pki) -> None:
    data = _pem(pki["i1"], pki["root"], pki["leaf"], pki["i2"])
    leaf, chain = leaf_and_chain(data, spki_of(pki["leaf"]), "www")
    assert leaf == pki["leaf"]
    assert chain == [pki["i2"], pki["i1"], pki["root"]]
    # The stored bundle reads back in the same order, leaf first.
    assert split_bundle(bundle_pem([leaf, *chain])) == (pki["leaf"],
                                                        [pki["i2"], pki["i1"], pki["root"]])


@pytest.mark.parametrize("encoding", [Encoding.DER, Encoding.PEM])
def test_pkcs7_out_of_order_is_put_in_order(pki, encoding) -> None:
    data = pkcs7.serialize_certificates([pki["root"], pki["leaf"], pki["i1"], pki["i2"]],
                                        encoding)
    leaf, chain = leaf_and_chain(data, spki_of(pki["leaf"]), "www")
    assert leaf == pki["leaf"] and chain == [pki["i2"], pki["i1"], pki["root"]]


def test_chain_without_root_is_accepted(pki) -> None:
    _leaf, chain = leaf_and_chain(_pem(pki["i1"], pki["leaf"], pki["i2"]),
                                  spki_of(pki["leaf"]), "www")
    assert chain == [pki["i2"], pki["i1"]]


def test_missing_link_is_refused_naming_the_break(pki) -> None:
    with pytest.raises(InputError) as exc:
        leaf_and_chain(_pem(pki["leaf"], pki["i1"], pki["root"]), spki_of(pki["leaf"]), "www")
    message = exc.value.message
    assert "breaks at 'CN=www.example.com'" in message
    assert "'CN=Issuing CA 2' is not in the file" in message
    assert "'CN=Issuing CA 1'" in message and "'CN=Root CA'" in message
    assert exc.value.field == "certificate"


def test_impostor_with_the_issuers_name_is_refused(pki) -> None:
    # Same subject as the real issuing CA, another key: the name links, the signature doesn't.
    other = ec.generate_private_key(ec.SECP256R1())
    fake = _cert("Issuing CA 2", "Issuing CA 1", other, pki["keys"]["i1"], ca=True)
    with pytest.raises(InputError, match="breaks at 'CN=www.example.com'.*'CN=Issuing CA 2' "
                       "has its issuer's name but did not sign it"):
        leaf_and_chain(_pem(fake, pki["leaf"]), spki_of(pki["leaf"]), "www")


def test_unrelated_certificate_left_over_after_the_root_is_refused(pki) -> None:
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert("Stranger", "Stranger", stranger_key, stranger_key, ca=True)
    with pytest.raises(InputError, match="ends at the self-signed 'CN=Root CA', but "
                       "'CN=Stranger' is left"):
        leaf_and_chain(_pem(pki["leaf"], stranger, pki["i2"], pki["i1"], pki["root"]),
                       spki_of(pki["leaf"]), "www")


def test_no_certificate_for_the_key(pki) -> None:
    with pytest.raises(InputError, match="No certificate in the file is for the key of "
                       "request 'www'"):
        leaf_and_chain(_pem(pki["i2"], pki["i1"]), spki_of(pki["leaf"]), "www")


def test_duplicates_are_dropped_and_other_pem_blocks_refused(pki) -> None:
    assert load_certificates(_pem(pki["leaf"], pki["leaf"])) == [pki["leaf"]]
    with pytest.raises(InputError, match="PEM block 'PRIVATE KEY'"):
        load_certificates(_pem(pki["leaf"]) + b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
                          b"-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError, match="neither PEM text, a DER certificate nor a DER "
                       "PKCS#7"):
        load_certificates(b"\x30\x03\x02\x01\x01")
    assert load_certificates(pki["leaf"].public_bytes(Encoding.DER)) == [pki["leaf"]]
