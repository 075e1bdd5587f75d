"""CSR content on the real SoftHSM token: each built-in profile's extensions as openssl and
cryptography read them, refusals before any key exists, Ed25519/Ed448 CSRs, the profiles CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import GROUP, Cli, make_settings
from tests.unit.test_extensions import crypto_key_usage
from tui_csr.config import current_user
from tui_csr.core.extensions import EKU_OIDS, RequestedExtensions
from tui_csr.core.models import Group
from tui_csr.core.profiles import BUILTIN_PROFILES, Profile
from tui_csr.errors import InputError, PermissionDeniedError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.store.repo import Store

#: A request each built-in profile accepts: (key spec, SANs, DN fields).
_FITS = {
    "tls-server": ("P-256", [("dns", "www.example.com")], [("CN", "www.example.com")]),
    "tls-client": ("RSA2048", [], [("CN", "client-1")]),
    "code-signing": ("P-384", [], [("CN", "Build"), ("O", "Example"), ("C", "DE")]),
    "smime": ("P-256", [("email", "alice@example.com")], [("CN", "Alice")]),
    "sub-ca": ("P-384", [], [("CN", "Issuing CA 1"), ("O", "Example")]),
    "generic": ("Ed25519", [], [("CN", "anything")]),
}


def openssl_text(pem: str, tmp_path: Path) -> str:
    path = tmp_path / "req.pem"
    path.write_text(pem)
    done = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-text", "-verify"],
                          capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


_OPENSSL_KU = {"digital_signature": "Digital Signature", "content_commitment": "Non Repudiation",
               "key_encipherment": "Key Encipherment", "data_encipherment": "Data Encipherment",
               "key_agreement": "Key Agreement", "key_cert_sign": "Certificate Sign",
               "crl_sign": "CRL Sign"}
_OPENSSL_EKU = {"1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication",
                "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
                "1.3.6.1.5.5.7.3.3": "Code Signing", "1.3.6.1.5.5.7.3.4": "E-mail Protection",
                "1.3.6.1.5.5.7.3.8": "Time Stamping", "1.3.6.1.5.5.7.3.9": "OCSP Signing"}


def openssl_extensions(text: str) -> dict[str, tuple[bool, str]]:
    """``openssl req -text``'s Requested Extensions: header -> (critical, value text)."""
    import re

    if "Requested Extensions:" not in text:
        return {}
    block = text.split("Requested Extensions:", 1)[1].split("Signature Algorithm:", 1)[0]
    out: dict[str, tuple[bool, str]] = {}
    name: str | None = None
    for line in block.splitlines():
        head = re.fullmatch(r"\s+(X509v3 [A-Za-z ]+|[0-9.]+): ?(critical)?\s*", line)
        if head:
            name = head.group(1)
            out[name] = (head.group(2) == "critical", "")
        elif name is not None and line.strip():
            critical, value = out[name]
            out[name] = (critical, (value + " " + line.strip()).strip())
    return out


def expected_openssl(csr: x509.CertificateSigningRequest) -> dict[str, tuple[bool, str]]:
    """What openssl must print for the extensions cryptography reads from ``csr``."""
    out: dict[str, tuple[bool, str]] = {}
    for ext in csr.extensions:
        v = ext.value
        if isinstance(v, x509.KeyUsage):
            bits = [label for attr, label in _OPENSSL_KU.items() if getattr(v, attr)]
            out["X509v3 Key Usage"] = (ext.critical, ", ".join(bits))
        elif isinstance(v, x509.ExtendedKeyUsage):
            out["X509v3 Extended Key Usage"] = (ext.critical, ", ".join(
                _OPENSSL_EKU.get(o.dotted_string, o.dotted_string) for o in v))
        elif isinstance(v, x509.BasicConstraints):
            text = "CA:TRUE" if v.ca else "CA:FALSE"
            if v.path_length is not None:
                text += f", pathlen:{v.path_length}"
            out["X509v3 Basic Constraints"] = (ext.critical, text)
        elif isinstance(v, x509.SubjectAlternativeName):
            kinds = {x509.DNSName: "DNS", x509.RFC822Name: "email",
                     x509.UniformResourceIdentifier: "URI", x509.IPAddress: "IP Address"}
            out["X509v3 Subject Alternative Name"] = (ext.critical, ", ".join(
                f"{kinds[type(n)]}:{n.value}" for n in v))
        elif isinstance(v, x509.SubjectKeyIdentifier):
            out["X509v3 Subject Key Identifier"] = (ext.critical,
                                                    v.digest.hex(":").upper())
        else:
            raise AssertionError(f"unexpected extension {ext.oid.dotted_string}")
    return out


@pytest.fixture
async def luna_service(token, data_dir: Path):
    """A service whose settings claim an attestation provider (so code-signing may run on
    SoftHSM; the attestation itself is fetched later and is not part of these tests)."""
    svc = CsrService.create(make_settings(token, data_dir, attestation="luna"))
    await svc.open_token()
    await svc.login(token.pin)
    yield svc


@pytest.mark.parametrize("name", list(BUILTIN_PROFILES))
async def test_each_builtin_profile_makes_a_csr_that_openssl_and_cryptography_read_back(
        luna_service: CsrService, name: str, tmp_path: Path) -> None:
    spec, sans, fields = _FITS[name]
    req = await luna_service.generate(GenerateParams(
        key_spec=spec, fields=fields, sans=sans, groups=[GROUP], profile=name,
        label=f"profile-{name}"))
    try:
        csr = x509.load_pem_x509_csr(req.csr_pem.encode())
        assert csr.is_signature_valid
        ext = RequestedExtensions.from_doc(req.extensions)
        assert req.profiles == [{"name": name, "version": 1, "source": "--profile"}]
        got = {e.oid.dotted_string: e for e in csr.extensions}
        if sans:
            assert not got.pop("2.5.29.17").critical
        if ext.ca is not None:
            bc = got.pop("2.5.29.19")
            assert bc.critical and bc.value == x509.BasicConstraints(ext.ca, ext.path_len)
        if ext.key_usage:
            ku = got.pop("2.5.29.15")
            assert ku.critical and ku.value == crypto_key_usage(ext.key_usage)
        if ext.eku:
            eku = got.pop("2.5.29.37")
            assert not eku.critical
            assert [o.dotted_string for o in eku.value] == [EKU_OIDS[e] for e in ext.eku]
        if ext.ski:
            ski = got.pop("2.5.29.14")
            assert ski.value == x509.SubjectKeyIdentifier.from_public_key(csr.public_key())
        assert got == {}
        # What the profile says is what the CSR carries.
        profile = BUILTIN_PROFILES[name]
        assert set(profile.eku_required) <= set(ext.eku)
        assert set(profile.key_usage_required) <= set(ext.key_usage)
        text = openssl_text(req.csr_pem, tmp_path)
        assert "Certificate request self-signature verify OK" in text
        # openssl reads exactly the extensions cryptography reads: the same set, the same
        # critical flags, the same values.
        assert list(openssl_extensions(text).items()) == list(expected_openssl(csr).items())
        assert ("X509v3 Basic Constraints: critical" in text) == (ext.ca is not None)
        assert ("X509v3 Key Usage: critical" in text) == bool(ext.key_usage)
        assert ("X509v3 Extended Key Usage: \n" in text) == bool(ext.eku)
        if name == "code-signing":
            assert "Code Signing" in text
        if name == "sub-ca":
            assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
    finally:
        await luna_service.delete_request(req.id)


async def test_code_signing_is_refused_on_a_token_without_attestation(
        service: CsrService) -> None:
    await service.add_group("Code signing", policy="code-signing")
    before = await service.token.object_count()
    with pytest.raises(InputError) as info:
        await service.generate(GenerateParams(
            key_spec="P-256", fields=[("CN", "b"), ("O", "E"), ("C", "DE")],
            groups=["Code signing"]))
    assert info.value.message.startswith("attestation: group 'Code signing' (profile "
                                         "code-signing) needs a key attestation, and this token")
    assert await service.token.object_count() == before


def test_breaking_a_groups_profile_exits_2_before_any_key_exists(
        cli: Cli, data_dir: Path) -> None:
    Store.open(data_dir).add_group(Group("Code signing", policy="code-signing",
                                         created_by=current_user()))
    count = _object_count(cli)
    r = cli("generate", "--key-spec", "RSA2048", "--cn", "b", "--o", "E", "--c", "DE",
            "--group", "Code signing")
    assert r.code == 2, r.err
    assert r.err == ("error: key_spec: group 'Code signing' (profile code-signing) needs RSA "
                     "3072 or larger, or P-256/P-384\n")
    r = cli("generate", "--key-spec", "P-256", "--cn", "b", "--group", GROUP, "--group",
            "Code signing", "--profile", "tls-server", "--dns", "b.example")
    assert r.code == 2
    assert "the chosen profile tls-server and group 'Code signing' (profile code-signing) " \
           "contradict each other" in r.err
    assert _object_count(cli) == count


def _object_count(cli: Cli) -> int:
    import asyncio

    async def count() -> int:
        svc = CsrService.create(make_settings(cli.token, cli.data_dir))
        await svc.open_token()
        await svc.login(cli.token.pin)
        return await svc.token.object_count()

    return asyncio.run(count())


@pytest.mark.parametrize("spec", ["Ed25519", "Ed448"])
def test_eddsa_csr_from_softhsm_passes_openssl_verify(cli: Cli, spec: str,
                                                      tmp_path: Path) -> None:
    r = cli("generate", "--key-spec", spec, "--cn", f"{spec.lower()}.example", "--group", GROUP,
            "--key-usage", "digitalSignature", "--eku", "clientAuth,1.3.6.1.4.1.99999.1",
            "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["key_spec"] == spec and doc["signature"] == spec
    text = openssl_text(doc["csr_pem"], tmp_path)
    assert "Certificate request self-signature verify OK" in text
    assert f"Public Key Algorithm: {spec.upper()}" in text
    assert "1.3.6.1.4.1.99999.1" in text
    assert doc["extensions"]["key_usage"] == ["digitalSignature"]
    shown = cli("show", doc["id"], "--text")
    assert shown.code == 0
    assert "keyUsage (critical): digitalSignature" in shown.out
    assert "extendedKeyUsage: clientAuth, 1.3.6.1.4.1.99999.1" in shown.out
    assert cli("delete", doc["id"], "--yes").code == 0


def test_generate_flags_and_show(cli: Cli, tmp_path: Path) -> None:
    r = cli("generate", "--key-spec", "P-256", "--cn", "ca.example", "--o", "Example",
            "--group", GROUP, "--ca", "--path-len", "1", "--key-usage", "keyCertSign,cRLSign",
            "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["extensions"]["basic_constraints"] == {"ca": True, "path_len": 1}
    assert "CA:TRUE, pathlen:1" in openssl_text(doc["csr_pem"], tmp_path)
    shown = json.loads(cli("show", doc["id"], "--json").out)
    assert shown["extensions"] == doc["extensions"] and shown["profiles"] is None
    assert cli("delete", doc["id"], "--yes").code == 0
    for args, needle in [
        (["--key-usage", "keyCertSign"], "keyCertSign needs a CA request: RFC 5280"),
        (["--path-len", "2"], "A path length applies to a CA request only"),
        (["--eku", "serverAuth", "--eku", "clientAuth"], "--eku is given more than once"),
        (["--profile", "nope"], "Profile 'nope' does not exist"),
        (["--key-usage", "keyEncipherment"], "keyEncipherment does not apply to P-256 keys"),
    ]:
        r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP, *args)
        assert r.code == 2 and needle in r.err, (args, r.err)


def test_profiles_cli(cli: Cli) -> None:
    listed = json.loads(cli("profiles", "list", "--json").out)
    assert [p["name"] for p in listed] == list(BUILTIN_PROFILES)
    shown = cli("profiles", "show", "code-signing")
    assert shown.code == 0 and "attestation required: yes" in shown.out
    r = cli("profiles", "add", "web-ev", "--from", "tls-server", "--dn-required", "O,C",
            "--key-specs", "P-256,P-384", "--dn-default", "O=Example", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["version"] == 1 and doc["key_specs"] == ["P-256", "P-384"]
    assert doc["dn_defaults"] == [["O", "Example"]] and doc["eku_required"] == ["serverAuth"]
    r = cli("profiles", "edit", "web-ev", "--default-key-spec", "P-384", "--json")
    assert r.code == 0 and json.loads(r.out)["version"] == 2
    assert cli("profiles", "edit", "tls-server", "--ski", "yes").code == 2
    assert cli("profiles", "add", "bad", "--key-specs", "RSA1024").code == 2
    # A group whose policy names it: generation gets the defaults and the constraints.
    assert cli("groups", "add", "EV", "--policy", "web-ev").code == 0
    r = cli("generate", "--cn", "ev.example", "--c", "DE", "--group", "EV", "--dns",
            "ev.example", "--json")
    assert r.code == 0, r.err
    made = json.loads(r.out)
    assert made["key_spec"] == "P-384" and made["subject"] == "CN=ev.example,O=Example,C=DE"
    assert made["profiles"] == [{"name": "web-ev", "version": 2, "source": "group:EV"}]
    r = cli("profiles", "remove", "web-ev")
    assert r.code == 2 and "is the policy of group 'EV'" in r.err
    other = {"TUI_CSR_ADMINS": "someone-else"}
    for args in (("add", "x2"), ("edit", "web-ev", "--ski", "yes"), ("remove", "web-ev")):
        r = cli("profiles", *args, extra_env=other)
        assert r.code == 1 and "Only an administrator" in r.err and "someone-else" in r.err
    assert cli("profiles", "list", extra_env=other).code == 0
    groups = {g["name"]: g for g in json.loads(cli("groups", "list", "--json").out)}
    assert groups["EV"]["policy_problem"] is None
    assert groups[GROUP]["policy_problem"] == ("'web-policy' names no profile: a label "
                                               "without constraints")
    assert cli("delete", made["id"], "--yes").code == 0
    audit = [e.action for e in Store.open(cli.data_dir).list_audit()]
    assert {"profile-add", "profile-edit"} <= set(audit)


async def test_non_admins_are_refused_with_the_admins_named(service: CsrService) -> None:
    other = CsrService(dataclasses.replace(service.settings, admins=["alice", "bob"]),
                       service.store, user="mallory")
    with pytest.raises(PermissionDeniedError) as info:
        await other.add_profile(Profile("mine"))
    assert "'mallory' is not one (administrators: alice, bob)" in info.value.message
    assert await other.list_profiles()
