"""Repeated DN attributes on the command line (issue 12): several OUs are kept, each its own RDN
in the order given, whether typed as one DN string or as repeated --ou flags; a single-valued
option given twice is refused instead of silently keeping the last value."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

EXPECTED = [(NameOID.COUNTRY_NAME, "DE"), (NameOID.ORGANIZATION_NAME, "Example"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "PKI"),
            (NameOID.COMMON_NAME, "a")]


def _rdns(csr_pem: str) -> list[tuple[x509.ObjectIdentifier, str]]:
    subject = x509.load_pem_x509_csr(csr_pem.encode()).subject
    out = []
    for rdn in subject.rdns:  # ASN.1 order: the first RDN is the most significant (C)
        (attr,) = list(rdn)
        out.append((attr.oid, attr.value))
    return out


@pytest.mark.parametrize("subject", [
    ["--dn", "CN=a,OU=PKI,OU=IT,O=Example,C=DE"],
    ["--cn", "a", "--ou", "IT", "--ou", "PKI", "--o", "Example", "--c", "DE"],
], ids=["dn-string", "flags"])
def test_several_ous_keep_their_order(cli, subject: list[str]) -> None:
    r = cli("generate", "--key-spec", "P-256", *subject, "--group", "Web", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert _rdns(doc["csr_pem"]) == EXPECTED
    assert doc["subject"] == "CN=a,OU=PKI,OU=IT,O=Example,C=DE"


@pytest.mark.parametrize("flag", ["--cn", "--o", "--c", "--key-spec", "--label", "--owner"])
def test_a_single_valued_option_given_twice_is_refused(cli, flag: str) -> None:
    values = {"--c": ("DE", "FR"), "--key-spec": ("P-256", "P-384")}.get(flag, ("x1", "x2"))
    args = ["generate", "--key-spec", "P-256", "--cn", "b", "--group", "Web"]
    args += [flag, values[0], flag, values[1]]
    r = cli(*args)
    assert r.code == 2
    assert r.err.startswith("error: ") and flag in r.err and "more than once" in r.err
    assert len(r.err.strip().splitlines()) == 1
