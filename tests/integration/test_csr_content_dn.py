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


# -- acceptance (issue 15): both views to the same DER, bounds, literal display ------------------

#: Every attribute of the flag table with a value that exercises it: RFC 4514 specials, non-ASCII
#: text and a bidi override where the string type allows them.
_ALL = [("--cn", "shop.example"), ("--o", 'Müller, Söhne + "Co" = <1>;'), ("--ou", "IT"),
        ("--ou", "PKI"), ("--l", "Berlin"), ("--st", "Berlin"), ("--c", "DE"),
        ("--dc", "com"), ("--dc", "example"), *((f, v) for f, v, _o, _t in _FLAGS)]
_ALL = [(f, "Dr.\u202e rtl") if f == "--title" else (f, v) for f, v in _ALL]
_TAGS = {"2.5.4.3": 0x0C, "2.5.4.10": 0x0C, "2.5.4.11": 0x0C, "2.5.4.7": 0x0C,
         "2.5.4.8": 0x0C, "2.5.4.6": 0x13, "0.9.2342.19200300.100.1.25": 0x16,
         **{oid: tag for _f, _v, oid, tag in _FLAGS}}


def _subject_der(pem: str) -> bytes:
    return x509.load_pem_x509_csr(pem.encode()).subject.public_bytes()


def _atvs(pem: str) -> list[tuple[str, int, bytes]]:
    """(OID, string tag, value bytes) of every attribute, in DER order."""
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.DER)
    name = acsr.CertificationRequest.load(der)["certification_request_info"]["subject"]
    out = []
    for rdn in name.chosen:
        for atv in rdn:
            value = atv["value"]
            chosen = value.chosen if hasattr(value, "chosen") else value
            out.append((atv["type"].dotted, chosen.tag, chosen.contents))
    return out


def test_flags_and_dn_string_give_the_same_der_and_show_prints_it_literally(
        cli: Cli, tmp_path: Path) -> None:
    from tests.reliability.strategies import unsafe_characters

    args = [a for pair in _ALL for a in pair]
    r = cli("generate", "--key-spec", "P-256", "--group", GROUP, *args, "--json")
    assert r.code == 0, r.err
    by_flags = json.loads(r.out)
    atvs = _atvs(by_flags["csr_pem"])
    # Every attribute under its OID, in its string type, with exactly the bytes given.
    want = sorted((oid, _TAGS[oid], v.encode()) for f, v in _ALL
                  for oid in [_oid_of(f)])
    assert sorted(atvs) == want
    # The string view: the subject as printed, and again with the EV and eIDAS types as dotted
    # OIDs, gives the same DER.
    subject = by_flags["subject"]
    dotted = (subject.replace("jurisdictionC=", "1.3.6.1.4.1.311.60.2.1.3=")
              .replace("jurisdictionST=", "1.3.6.1.4.1.311.60.2.1.2=")
              .replace("jurisdictionL=", "1.3.6.1.4.1.311.60.2.1.1=")
              .replace("organizationIdentifier=", "2.5.4.97="))
    assert dotted != subject
    made = [by_flags]
    for text in (subject, dotted):
        r = cli("generate", "--key-spec", "P-256", "--group", GROUP, "--dn", text, "--json")
        assert r.code == 0, r.err
        doc = json.loads(r.out)
        made.append(doc)
        assert _subject_der(doc["csr_pem"]) == _subject_der(by_flags["csr_pem"])
        assert doc["subject"] == subject
    # `show --json`: the values literally (parsed back), the bidi override escaped as JSON does.
    shown = cli("show", by_flags["id"], "--json")
    assert shown.code == 0 and shown.out.count("\n") == 1
    assert not unsafe_characters(shown.out.rstrip("\n")), shown.out
    assert "Dr.\\u202e rtl" in shown.out
    doc = json.loads(shown.out)
    assert doc["subject"] == subject
    for flag, value in _ALL:
        attr = _attr_of(flag)
        assert value in doc["subject_fields"][attr], (attr, doc["subject_fields"])
    # `show --text`: the values as text, control and bidi characters escaped.
    text = cli("show", by_flags["id"], "--text")
    assert text.code == 0 and not any(unsafe_characters(line) for line in text.out.splitlines())
    assert "Dr.\\u202e rtl" in text.out and "HRB 12345" in text.out
    assert "VATDE-123456789" in text.out and "Private Organization" in text.out
    for doc in made:
        assert cli("delete", doc["id"], "--yes").code == 0


def _attr_of(flag: str) -> str:
    from tui_csr.cli.commands.generate import SUBJECT_FLAGS

    return next(attr for f, attr, _h, _r in SUBJECT_FLAGS if f == flag)


def _oid_of(flag: str) -> str:
    from tui_csr.core.dn import TYPE_OIDS

    return TYPE_OIDS[_attr_of(flag)]


def test_upper_bounds_refused_in_one_sentence_before_any_key(cli: Cli) -> None:
    from tests.integration.test_csr_content import _object_count
    from tui_csr.cli.commands.generate import SUBJECT_FLAGS
    from tui_csr.core.dn import MAX_LENGTH

    count = _object_count(cli)
    for flag, attr, _help, _rep in SUBJECT_FLAGS:
        bound = MAX_LENGTH[attr]
        value = "DEU" if attr in ("C", "jurisdictionC") else "a" * (bound + 1)
        for how in (["--cn", "x", flag, value] if attr != "CN" else [flag, value],
                    ["--dn", f"CN=x,{attr}={value}" if attr != "CN" else f"CN={value}"]):
            r = cli("generate", "--key-spec", "P-256", "--group", GROUP, *how)
            assert r.code == 2, (attr, r.err)
            lines = r.err.splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: {attr} "), (attr, r.err)
            assert (f"the maximum is {bound}." in lines[0]
                    or "is not an ISO 3166-1 country code" in lines[0]), lines[0]
    assert _object_count(cli) == count
    assert json.loads(cli("list", "--json").out) == []
