"""Generate on the real SoftHSM2 token: every key spec x hash, PSS, subjects and SANs read back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from tests.integration.conftest import GROUP
from tui_csr.core.csr import from_pem_or_der, summarize
from tui_csr.core.keyspec import HashAlg
from tui_csr.service import CsrService, GenerateParams

SPECS = ["RSA2048", "RSA3072", "RSA4096", "P-256", "P-384", "P-521"]
HASHES = ["SHA256", "SHA384", "SHA512"]


def openssl_verify(pem: str, tmp_path: Path) -> str:
    """`openssl req -verify`: the peer tool admins trust, not our own code."""
    path = tmp_path / "req.pem"
    path.write_text(pem)
    proc = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-verify", "-text"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "verify OK" in (proc.stdout + proc.stderr)
    return proc.stdout


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("hash_name", HASHES)
async def test_every_spec_and_hash_verifies(service: CsrService, spec: str, hash_name: str,
                                            tmp_path: Path) -> None:
    req = await service.generate(GenerateParams(
        key_spec=spec, hash=hash_name, fields={"CN": f"{spec}-{hash_name}.example"},
        groups=[GROUP]))
    text = openssl_verify(req.csr_pem, tmp_path)
    csr = x509.load_pem_x509_csr(req.csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.signature_hash_algorithm.name == hash_name.lower()
    key = csr.public_key()
    if spec.startswith("RSA"):
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == int(spec[3:])
        assert f"{hash_name.lower()}WithRSAEncryption" in text
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == {"P-256": "secp256r1", "P-384": "secp384r1",
                                  "P-521": "secp521r1"}[spec]
        assert f"ecdsa-with-{hash_name}" in text
    await service.delete_request(req.id)


@pytest.mark.parametrize("hash_name", HASHES)
async def test_pss_parameters_match_the_signature(service: CsrService, hash_name: str,
                                                  tmp_path: Path) -> None:
    req = await service.generate(GenerateParams(
        key_spec="RSA2048", hash=hash_name, pss=True, fields={"CN": f"pss-{hash_name}"},
        groups=[GROUP]))
    text = openssl_verify(req.csr_pem, tmp_path)
    assert "rsassaPss" in text
    h = HashAlg(hash_name)
    csr = x509.load_pem_x509_csr(req.csr_pem.encode())
    # Verify with explicit PSS parameters: salt = hash length, MGF1 with the same hash.
    hash_cls = {"SHA256": "SHA256", "SHA384": "SHA384", "SHA512": "SHA512"}[hash_name]
    from cryptography.hazmat.primitives import hashes

    algo = getattr(hashes, hash_cls)()
    csr.public_key().verify(csr.signature, csr.tbs_certrequest_bytes,
                            padding.PSS(padding.MGF1(algo), h.octets), algo)
    assert summarize(from_pem_or_der(req.csr_pem)).signature.startswith("RSASSA-PSS")
    await service.delete_request(req.id)


async def test_subject_and_sans_exactly_as_given(service: CsrService, tmp_path: Path) -> None:
    dn = r'CN=Jörg Müller\, Jr.,OU=R\+D \"Labs\",O=Bücher \5C Co,L=Zürich,ST=ZH,C=ch'
    req = await service.generate(GenerateParams(
        key_spec="P-256", dn=dn, groups=[GROUP],
        sans=[("email", "joerg@bücher.example"), ("email", '"john doe"@example.com'),
              ("dns", "*.bücher.example"), ("ip", "2001:db8::1"), ("ip", "192.0.2.7"),
              ("uri", "https://pki.example/a?b=c")]))
    text = openssl_verify(req.csr_pem, tmp_path)
    assert "email:joerg@xn--bcher-kva.example" in text
    csr = x509.load_pem_x509_csr(req.csr_pem.encode())
    attrs = {a.oid: a.value for a in csr.subject}
    assert attrs == {
        NameOID.COMMON_NAME: "Jörg Müller, Jr.",
        NameOID.ORGANIZATIONAL_UNIT_NAME: 'R+D "Labs"',
        NameOID.ORGANIZATION_NAME: "Bücher \\ Co",
        NameOID.LOCALITY_NAME: "Zürich",
        NameOID.STATE_OR_PROVINCE_NAME: "ZH",
        NameOID.COUNTRY_NAME: "CH",
    }
    # RFC 4514 order (CN first) is the reverse of the ASN.1 order (C first).
    assert [a.oid for a in csr.subject] == [
        NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
        NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME]
    # DirectoryString values as UTF8String, C as PrintableString.
    tags = {a.oid: a._type.name for a in csr.subject}
    assert tags[NameOID.COMMON_NAME] == "UTF8String"
    assert tags[NameOID.COUNTRY_NAME] == "PrintableString"
    san = csr.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert san.get_values_for_type(x509.RFC822Name) == [
        "joerg@xn--bcher-kva.example", '"john doe"@example.com']
    assert san.get_values_for_type(x509.DNSName) == ["*.xn--bcher-kva.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "2001:db8::1", "192.0.2.7"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "https://pki.example/a?b=c"]
    # The stored record keeps the same subject string.
    stored = await service.get_request(req.id)
    assert stored.subject_fields["CN"] == "Jörg Müller, Jr."
    await service.delete_request(req.id)


async def test_private_key_is_sensitive_non_extractable_sign_only(
        service: CsrService, token) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "attrs"},
                                                groups=[GROUP]))
    attrs = await service.token.key_attributes(bytes.fromhex(req.key_id))
    assert attrs["SENSITIVE"] is True
    assert attrs["EXTRACTABLE"] is False
    assert attrs["ALWAYS_SENSITIVE"] is True
    assert attrs["NEVER_EXTRACTABLE"] is True
    assert attrs["SIGN"] is True
    assert attrs["DECRYPT"] is False and attrs["UNWRAP"] is False and attrs["DERIVE"] is False
    # The peer tool agrees (pkcs11-tool reads the PIN from its argument: a test token's PIN).
    out = subprocess.run(  # noqa: ASYNC221 - a test; nothing else runs on this loop
        ["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
         "--pin", token.pin, "--list-objects", "--type", "privkey", "--label", req.label],
        capture_output=True, text=True, check=True, env={"SOFTHSM2_CONF": str(token.conf),
                                                          "PATH": "/usr/bin:/bin"}).stdout
    assert "Access:     sensitive, always sensitive, never extractable, local" in out
    assert "Usage:      sign" in out and "decrypt" not in out.split("Usage:")[1].splitlines()[0]
    await service.delete_request(req.id)


async def test_key_id_is_sha1_of_public_key_and_uri_names_it(service: CsrService) -> None:
    import hashlib

    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "uri test"},
                                                groups=[GROUP], label="uri test;1"))
    csr = x509.load_pem_x509_csr(req.csr_pem.encode())
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ski = x509.SubjectKeyIdentifier.from_public_key(csr.public_key()).digest
    assert req.key_id == ski.hex() == hashlib.sha1(
        spki[-65:]).hexdigest()  # P-256: the last 65 bytes are the point
    pct_id = "".join(f"%{b:02X}" for b in bytes.fromhex(req.key_id))
    assert req.pkcs11_uri == f"pkcs11:token=test;object=uri%20test%3B1;id={pct_id};type=private"
    await service.delete_request(req.id)
