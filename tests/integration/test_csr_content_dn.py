"""The full DN through the CLI flags and --dn on the real token: OIDs and string types in the
CSR the token signed, as openssl and cryptography read them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from asn1crypto import csr as acsr
from cryptography import x509

from tests.integration.conftest import GROUP, Cli

_FLAGS = [("--serial-number", "HRB 12345", "2.5.4.5", 0x13),
          ("--organization-identifier", "VATDE-123456789", "2.5.4.97", 0x0C),
          ("--business-category", "Private Organization", "2.5.4.15", 0x0C),
          ("--jurisdiction-c", "DE", "1.3.6.1.4.1.311.60.2.1.3", 0x13),
          ("--jurisdiction-st", "Berlin", "1.3.6.1.4.1.311.60.2.1.2", 0x0C),
          ("--jurisdiction-l", "Berlin", "1.3.6.1.4.1.311.60.2.1.1", 0x0C),
          ("--email-address", "pki@example.com", "1.2.840.113549.1.9.1", 0x16),
          ("--uid", "u-1", "0.9.2342.19200300.100.1.1", 0x0C),
          ("--title", "Dr.", "2.5.4.12", 0x0C), ("--given-name", "Jörg", "2.5.4.42", 0x0C),
          ("--surname", "Müller", "2.5.4.4", 0x0C), ("--pseudonym", "jm", "2.5.4.65", 0x0C),
          ("--street", "Hauptstr. 1", "2.5.4.9", 0x0C),
          ("--postal-code", "10115", "2.5.4.17", 0x0C)]


def _subject_tags(pem: str) -> dict[str, tuple[int, bytes]]:
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.DER)
    name = acsr.CertificationRequest.load(der)["certification_request_info"]["subject"]
    out = {}
    for rdn in name.chosen:
        for atv in rdn:
            value = atv["value"]
            chosen = value.chosen if hasattr(value, "chosen") else value
            out[atv["type"].dotted] = (chosen.tag, chosen.contents)
    return out


def test_every_new_attribute_flag_lands_in_the_signed_csr(cli: Cli, tmp_path: Path) -> None:
    args = [a for flag, value, _oid, _tag in _FLAGS for a in (flag, value)]
    r = cli("generate", "--key-spec", "P-256", "--cn", "shop.example", "--o", "Example GmbH",
            "--c", "DE", "--dc", "example", "--dc", "com", "--group", GROUP, *args, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    csr = x509.load_pem_x509_csr(doc["csr_pem"].encode())
    assert csr.is_signature_valid
    tags = _subject_tags(doc["csr_pem"])
    for _flag, value, oid, tag in _FLAGS:
        assert tags[oid] == (tag, value.encode()), oid
        assert [a.value for a in csr.subject.get_attributes_for_oid(
            x509.ObjectIdentifier(oid))] == [value]
    path = tmp_path / "r.pem"
    path.write_text(doc["csr_pem"])
    text = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-verify", "-subject",
                           "-nameopt", "RFC2253"], capture_output=True, text=True, check=True)
    assert "verify OK" in text.stdout + text.stderr
    assert "jurisdictionC=DE" in text.stdout and "serialNumber=HRB 12345" in text.stdout
    assert cli("delete", doc["id"], "--yes").code == 0


def test_multi_valued_rdn_and_equals_in_dn_string(cli: Cli) -> None:
    r = cli("generate", "--key-spec", "P-256", "--dn", "CN=a+UID=b,O=x=y,C=DE", "--group",
            GROUP, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    csr = x509.load_pem_x509_csr(doc["csr_pem"].encode())
    rdns = list(csr.subject.rdns)
    assert len(rdns) == 3 and len(rdns[-1]) == 2
    assert csr.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "x=y"
    assert cli("delete", doc["id"], "--yes").code == 0
    r = cli("generate", "--key-spec", "P-256", "--dn", "CN=a,ST=Ohio C=US", "--group", GROUP)
    assert r.code == 2 and "a ',' may be missing before 'C'" in r.err
