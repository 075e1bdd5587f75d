"""`generate --batch` takes everything a single `generate` takes (issue 15): the profile, the
requested extensions, always-authenticate and every DN attribute of the flag table, in JSON
Lines and in CSV; a line that breaks a group's profile is refused before any key exists. On the
real SoftHSM token; the CSRs are compared on their DER with those of single `generate` runs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.conftest import GROUP, Cli
from tui_csr.batch import KNOWN_FIELDS
from tui_csr.cli.commands.generate import SUBJECT_FLAGS

#: One value per DN attribute field of the flag table (lists for the repeatable ones).
_DN = {"cn": "shop.example", "o": "Example GmbH", "ou": ["IT", "PKI"], "l": "Berlin",
       "st": "Berlin", "c": "DE", "dc": ["com", "example"], "uid": "u-1",
       "serial_number": "HRB 12345", "email_address": "pki@example.com", "title": "Dr.",
       "given_name": "Jörg", "surname": "Müller", "pseudonym": "jm",
       "street": "Hauptstr. 1", "postal_code": "10115",
       "organization_identifier": "VATDE-123456789",
       "business_category": "Private Organization", "jurisdiction_c": "DE",
       "jurisdiction_st": "Berlin", "jurisdiction_l": "Berlin"}


def subject_der(pem: str) -> bytes:
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    return csr.subject.public_bytes()


def csr_der(pem: str) -> x509.CertificateSigningRequest:
    return x509.load_der_x509_csr(x509.load_pem_x509_csr(pem.encode()).public_bytes(Encoding.DER))


def flags_for(dn: dict) -> list[str]:
    out: list[str] = []
    for flag, _attr, _help, _rep in SUBJECT_FLAGS:
        value = dn[flag[2:].replace("-", "_")]
        out += [a for v in (value if isinstance(value, list) else [value]) for a in (flag, v)]
    return out


def test_the_batch_fields_are_the_generate_flags() -> None:
    assert {f[2:].replace("-", "_") for f, *_ in SUBJECT_FLAGS} == set(_DN)
    assert set(_DN) | {"profile", "key_usage", "eku", "ca", "path_len",
                       "always_authenticate"} <= set(KNOWN_FIELDS)


def test_every_field_of_a_single_generate_in_jsonl_and_csv(cli: Cli, tmp_path: Path) -> None:
    extras = {"dns": ["shop.example"], "group": GROUP, "profile": "tls-server",
              "key_usage": ["digitalSignature"], "eku": ["serverAuth", "clientAuth"],
              "always_authenticate": True}
    lines = [{"key_spec": "P-256", **_DN, **extras, "label": "batch-all"},
             # No key spec: the profile's default (P-256 for tls-server).
             {"cn": "default.example", "dns": ["default.example"], "group": GROUP,
              "profile": "tls-server", "label": "batch-default"},
             {"key_spec": "P-256", "cn": "Issuing CA", "o": "Example", "group": GROUP,
              "ca": True, "path_len": 1, "key_usage": "keyCertSign,cRLSign",
              "label": "batch-ca"}]
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines),
                    encoding="utf-8")
    r = cli("generate", "--batch", str(path), "--json")
    assert r.code == 0, r.err
    docs = {d["label"]: d for d in map(json.loads, r.out.splitlines())}

    # The same request as one `generate` with the flags: the same subject DER, extensions,
    # profile record and key flags.
    single = cli("generate", "--key-spec", "P-256", *flags_for(_DN), "--dns", "shop.example",
                 "--group", GROUP, "--profile", "tls-server", "--key-usage", "digitalSignature",
                 "--eku", "serverAuth,clientAuth", "--always-authenticate",
                 "--label", "single-all", "--json")
    assert single.code == 0, single.err
    one = json.loads(single.out)
    got = docs["batch-all"]
    assert subject_der(got["csr_pem"]) == subject_der(one["csr_pem"])
    assert got["subject"] == one["subject"]
    for key in ("extensions", "profiles", "sans", "key_spec", "signature"):
        assert got[key] == one[key], key
    assert got["extensions"]["extended_key_usage"] == ["serverAuth", "clientAuth"]
    assert got["key_attributes"]["ALWAYS_AUTHENTICATE"] is True
    csr = csr_der(got["csr_pem"])
    # Several values in the order given, which is ASN.1 order (outermost first), as the flags.
    assert [a.value for a in csr.subject.get_attributes_for_oid(
        x509.ObjectIdentifier("0.9.2342.19200300.100.1.25"))] == ["com", "example"]
    assert [a.value for a in csr.subject.get_attributes_for_oid(
        x509.NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["IT", "PKI"]
    assert got["subject"].endswith(",DC=example,DC=com")

    assert docs["batch-default"]["key_spec"] == "P-256"
    assert docs["batch-default"]["profiles"] == [
        {"name": "tls-server", "version": 1, "source": "--profile"}]
    assert docs["batch-ca"]["extensions"]["basic_constraints"] == {"ca": True, "path_len": 1}
    assert docs["batch-ca"]["extensions"]["key_usage"] == ["keyCertSign", "cRLSign"]

    # CSV: the attributes' own names as headers, `;` between several values.
    header = {"serial_number": "serialNumber", "surname": "SN",
              "jurisdiction_c": "jurisdictionC", "email_address": "emailAddress"}
    row = {header.get(k, k): (";".join(v) if isinstance(v, list) else v)
           for k, v in _DN.items()}
    row.update({"key_spec": "P-256", "dns": "shop.example", "group": GROUP,
                "profile": "tls-server", "key_usage": "digitalSignature",
                "eku": "serverAuth;clientAuth", "always_authenticate": "yes", "ca": "",
                "label": "csv-all"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    r = cli("generate", "--batch", "-", "--json", stdin=out.getvalue())
    assert r.code == 0, r.err
    from_csv = json.loads(r.out)
    assert subject_der(from_csv["csr_pem"]) == subject_der(one["csr_pem"])
    assert from_csv["extensions"] == one["extensions"]
    assert from_csv["key_attributes"]["ALWAYS_AUTHENTICATE"] is True
    for doc in (*docs.values(), one, from_csv):
        assert cli("delete", doc["id"], "--yes").code == 0


def test_a_line_breaking_a_groups_profile_refuses_the_batch_before_any_key(
        cli: Cli, tmp_path: Path) -> None:
    from tests.integration.test_csr_content import _object_count

    assert cli("groups", "add", "Code signing", "--policy", "code-signing").code == 0
    count = _object_count(cli)
    docs = [{"key_spec": "P-256", "cn": "fine", "group": GROUP, "label": "fine-1"},
            {"key_spec": "RSA2048", "cn": "b", "o": "E", "c": "DE", "group": "Code signing"},
            {"key_spec": "P-256", "cn": "x", "group": GROUP, "profile": "tls-server"},
            {"key_spec": "P-256", "cn": "z", "group": GROUP, "eku": ["serverAuth"],
             "profile": "tls-client"},
            {"cn": "w", "group": GROUP}]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    r = cli("generate", "--batch", str(path))
    assert r.code == 2, r.err
    assert r.err.splitlines() == [
        "error: line 2: key_spec: group 'Code signing' (profile code-signing) needs RSA 3072 "
        "or larger, or P-256/P-384",
        "error: line 3: san: the chosen profile tls-server needs at least 1 SAN",
        "error: line 4: eku: the chosen profile tls-client requires clientAuth",
        "error: line 5: key_spec is required (e.g. RSA3072 or P-256).",
        "error: The batch was refused: 4 of 5 requests are invalid; nothing was generated."]
    assert _object_count(cli) == count
    assert json.loads(cli("list", "--json").out) == []
