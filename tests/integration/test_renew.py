"""After issuance on the real token: renew (new key, same key), retire, CSRs for keys made by
other tools, chains on import, expiry listings and the audit log (issue 16)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7
from cryptography.x509.oid import NameOID

from tests.conftest import SoftHSM
from tests.integration.ca import TestCA, der, pem
from tests.integration.conftest import GROUP, Cli
from tui_csr.core.models import Status
from tui_csr.errors import InputError
from tui_csr.service import CsrService, GenerateParams
from tui_csr.services import renewal


def openssl_verify(csr_pem: str, tmp_path: Path) -> None:
    """`openssl req -verify`: the peer tool's check, not our own code."""
    path = tmp_path / "check.csr"
    path.write_text(csr_pem)
    proc = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-verify"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "verify OK" in proc.stdout + proc.stderr, proc.stderr


def csr_of(csr_pem: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(csr_pem.encode())


def spki(csr_pem: str) -> bytes:
    return csr_of(csr_pem).public_key().public_bytes(Encoding.DER,
                                                     PublicFormat.SubjectPublicKeyInfo)


def sans(csr_pem: str) -> list[str]:
    ext = csr_of(csr_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(str(v) for v in ext.value)


def token_objects(token: SoftHSM, key_id: str) -> str:
    """pkcs11-tool's listing of the objects with this CKA_ID (the peer tool's view)."""
    proc = subprocess.run(["pkcs11-tool", "--module", token.module, "--token-label",
                           token.label, "--login", "--pin", token.pin, "--list-objects",
                           ], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    blocks, current = [], []
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" ") and current:
            blocks.append("\n".join(current))
            current = []
        current.append(line)
    blocks.append("\n".join(current))
    return "\n".join(b for b in blocks if f"ID:         {key_id}" in b)


class ChainCA:
    """Root -> issuing CA; issues leaf certificates with chosen validity."""

    def __init__(self) -> None:
        self.root = TestCA("Renew Root CA")
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Renew Issuing CA")])
        self.cert = (x509.CertificateBuilder().subject_name(self.name)
                     .issuer_name(self.root.name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1))
                     .not_valid_after(now + timedelta(days=1000))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
                     .sign(self.root.key, hashes.SHA256()))

    def issue(self, csr_pem: str, days: int = 365, start_days: int = -1) -> x509.Certificate:
        csr = csr_of(csr_pem)
        now = datetime.now(UTC)
        return (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.name)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now + timedelta(days=start_days))
                .not_valid_after(now + timedelta(days=start_days + days))
                .sign(self.key, hashes.SHA256()))


# -- renew with a new key, import the successor, retire the source (the CLI end to end) ------

def test_renew_import_and_retire_through_the_cli(cli: Cli, token: SoftHSM,
                                                 tmp_path: Path) -> None:
    made = cli("generate", "--key-spec", "P-256", "--cn", "renew.example", "--o", "Example",
               "--c", "DE", "--ou", "Ops", "--ou", "Web", "--dns", "renew.example",
               "--email", "pki@renew.example", "--group", GROUP, "--owner", "alice", "--json")
    assert made.code == 0, made.err
    source = json.loads(made.out)
    ca = TestCA()
    cert_file = tmp_path / "source.pem"
    cert_file.write_bytes(pem(ca.issue(source["csr_pem"])))
    assert cli("import-cert", source["id"], str(cert_file)).code == 0

    done = cli("renew", source["id"][:8], "--json")
    assert done.code == 0, done.err
    new = json.loads(done.out)
    assert new["renews"] == source["id"] and new["status"] == "pending"
    assert spki(new["csr_pem"]) != spki(source["csr_pem"])
    # The same subject, byte for byte; the same SANs, groups, owner, key spec and hash.
    assert (csr_of(new["csr_pem"]).subject.public_bytes()
            == csr_of(source["csr_pem"]).subject.public_bytes())
    assert sans(new["csr_pem"]) == sans(source["csr_pem"])
    assert (new["groups"], new["owner"], new["key_spec"], new["hash"]) == (
        [GROUP], "alice", "P-256", source["hash"])
    assert new["key_id"] != source["key_id"]
    openssl_verify(new["csr_pem"], tmp_path)
    shown = json.loads(cli("show", source["id"], "--json").out)
    assert shown["renewed_by"] == new["id"] and shown["status"] == "issued"
    again = cli("renew", source["id"])
    assert again.code == 2 and "already renewed by" in again.err

    # The successor's certificate, matched to its request without an ID; the source retired.
    new_cert = tmp_path / "new.pem"
    new_cert.write_bytes(pem(ca.issue(new["csr_pem"])))
    imported = cli("import-cert", str(new_cert), "--retire-old")
    assert imported.code == 0, imported.err
    assert "retired" in imported.err and "destroyed" in imported.err
    rows = {r["id"]: r for r in json.loads(cli("list", "--all", "--json").out)}
    assert rows[source["id"]]["status"] == "retired" and rows[source["id"]]["retired"]
    assert rows[new["id"]]["status"] == "issued"
    assert token_objects(token, source["key_id"]).strip() == ""  # key pair and cert gone
    assert "Private Key" in token_objects(token, new["key_id"])
    certs = json.loads(cli("certs", "list", "--json").out)
    assert [c["id"] for c in certs] == [new["id"]]  # a retired certificate is not listed
    orphans = cli("orphans", "list", "--json")
    assert orphans.code == 0 and source["id"] not in orphans.out  # its missing key is no orphan

    assert cli("show", new["id"], "--der", "--out", str(tmp_path / "new.der")).code == 0
    audit = json.loads(cli("audit", "--json").out)
    trail = [(e["action"], e["subject"]) for e in audit]
    assert ("download", new["id"]) in trail
    assert ("renew", new["id"]) in trail
    assert ("import-cert", new["id"]) in trail
    assert ("retire", source["id"]) in trail
    assert trail.index(("renew", new["id"])) < trail.index(("retire", source["id"]))
    future = cli("audit", "--since", (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
                 "--json")
    assert future.code == 0 and json.loads(future.out) == []
    assert cli("audit", "--since", "yesterday").code == 2
    human = cli("audit")
    assert human.code == 0 and "retire" in human.out
    verified = cli("audit", "--verify")
    assert verified.code == 0 and "intact" in verified.out

    for req in (new,):
        cli("delete", req["id"], "--yes")


def test_retire_old_without_a_renewal_is_refused_before_importing(cli: Cli,
                                                                   tmp_path: Path) -> None:
    made = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "lone.example",
                          "--group", GROUP, "--json").out)
    cert_file = tmp_path / "c.pem"
    cert_file.write_bytes(pem(TestCA().issue(made["csr_pem"])))
    out = cli("import-cert", str(cert_file), "--retire-old")
    assert out.code == 2 and "renews no request" in out.err
    assert json.loads(cli("show", made["id"], "--json").out)["status"] == "pending"
    assert cli("delete", made["id"], "--yes").code == 0


# -- renew with the same key ------------------------------------------------------------------

async def test_renew_same_key_then_retire_keeps_the_key(service: CsrService,
                                                        tmp_path: Path) -> None:
    source = await service.generate(GenerateParams(
        key_spec="RSA2048", pss=True, fields=[("CN", "same.example"), ("O", "Example")],
        sans=[("dns", "same.example")], groups=[GROUP], owner="bob"))
    ca = TestCA()
    await service.import_certificate(source.id, pem(ca.issue(source.csr_pem)))
    new = await service.renew(source.id, same_key=True)
    assert spki(new.csr_pem) == spki(source.csr_pem)
    assert new.key_id == source.key_id and new.label != source.label
    assert new.renews == source.id and new.scheme == "PSS" and new.owner == "bob"
    assert csr_of(new.csr_pem).subject.public_bytes() == csr_of(
        source.csr_pem).subject.public_bytes()
    assert f"id={''.join(f'%{b:02X}' for b in bytes.fromhex(source.key_id))}" in new.pkcs11_uri
    assert f"object={source.label}" in new.pkcs11_uri  # the key's own CKA_LABEL
    openssl_verify(new.csr_pem, tmp_path)
    assert (await service.get_request(source.id)).renewed_by == new.id

    with pytest.raises(InputError, match="has no certificate yet"):
        await service.retire_request(source.id)
    new_cert = ca.issue(new.csr_pem)
    result, retired = await service.import_certificate_for(None, pem(new_cert),
                                                           retire_old=True)
    assert result.request.id == new.id and retired is not None
    assert retired.request.status is Status.RETIRED and not retired.key_destroyed
    key_id = bytes.fromhex(source.key_id)
    assert await service.token.key_exists(key_id)  # the successor still signs with it
    assert await service.token.certificates(key_id) == [der(new_cert)]  # the old cert went
    report = await service.scan_orphans()
    assert source.id not in {r.id for r in report.records_without_key}
    await service.delete_request(new.id)
    assert not await service.token.key_exists(key_id)


async def test_same_key_refused_where_a_policy_forbids_reuse(service: CsrService,
                                                             monkeypatch) -> None:
    def no_reuse(request, groups):
        if any(g.policy == "web-policy" for g in groups):
            return "group 'Web' requires a new key pair for every certificate"
        return None

    monkeypatch.setattr(renewal, "KEY_REUSE_CHECKS", [no_reuse])
    source = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "p.example"},
                                                   groups=[GROUP]))
    count = await service.token.object_count()
    with pytest.raises(InputError, match="cannot be renewed with the same key: group 'Web' "
                       "requires a new key pair") as exc:
        await service.renew(source.id, same_key=True)
    assert exc.value.exit_code == 2
    assert await service.token.object_count() == count
    assert (await service.get_request(source.id)).renewed_by is None
    await service.delete_request(source.id)


async def test_renew_keeps_an_escaped_utf8_subject_byte_for_byte(service: CsrService) -> None:
    source = await service.generate(GenerateParams(
        key_spec="P-256", dn=r"CN=Jörg Müller\, Jr.,OU=R\+D,OU=Ops,O=Example,C=DE",
        groups=[GROUP]))
    new = await service.renew(source.id)
    assert csr_of(new.csr_pem).subject.public_bytes() == csr_of(
        source.csr_pem).subject.public_bytes()
    # PSS follows the source only while the key stays RSA.
    rsa_like = type(source)(**{**source.__dict__, "key_spec": "RSA2048", "scheme": "PSS"})
    assert service.renewal.params_for(rsa_like, renewal.RenewOverrides()).pss is True
    assert service.renewal.params_for(
        rsa_like, renewal.RenewOverrides(key_spec="P-256")).pss is False
    for req in (new, source):
        await service.delete_request(req.id)


async def test_renew_overrides(service: CsrService) -> None:
    source = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "o.example"},
                                                   sans=[("dns", "o.example")], groups=[GROUP],
                                                   owner="carol"))
    new = await service.renew(source.id, renewal.RenewOverrides(
        key_spec="P-384", sans=[("dns", "o2.example")], owner="dave", label="o-next"))
    assert (new.key_spec, new.sans, new.owner, new.label) == (
        "P-384", [("dns", "o2.example")], "dave", "o-next")
    assert new.subject == source.subject
    for req in (new, source):
        await service.delete_request(req.id)


# -- a CSR for a key pair another tool made -----------------------------------------------------

def _keypairgen(token: SoftHSM, key_id: str, label: str, *extra: str) -> None:
    proc = subprocess.run(["pkcs11-tool", "--module", token.module, "--token-label",
                           token.label, "--login", "--pin", token.pin, "--keypairgen",
                           "--key-type", "EC:prime256v1", "--id", key_id, "--label", label,
                           *extra], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _public_key(token: SoftHSM, key_id: str) -> bytes:
    proc = subprocess.run(["pkcs11-tool", "--module", token.module, "--token-label",
                           token.label, "--read-object", "--type", "pubkey", "--id", key_id],
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _delete_keys(token: SoftHSM, key_id: str) -> None:
    for kind in ("privkey", "pubkey"):
        subprocess.run(["pkcs11-tool", "--module", token.module, "--token-label", token.label,
                        "--login", "--pin", token.pin, "--delete-object", "--type", kind,
                        "--id", key_id], capture_output=True, check=False)


def test_generate_for_a_key_made_by_pkcs11_tool(cli: Cli, token: SoftHSM,
                                                tmp_path: Path) -> None:
    _keypairgen(token, "7e57c0de01", "ceremony key")
    uri = f"pkcs11:token={token.label};object=ceremony%20key;id=%7E%57%C0%DE%01;type=private"
    out = cli("generate", "--key", uri, "--cn", "ceremony.example", "--group", GROUP, "--json")
    assert out.code == 0, out.err
    req = json.loads(out.out)
    assert spki(req["csr_pem"]) == _public_key(token, "7e57c0de01")
    assert req["key_id"] == "7e57c0de01" and req["key_spec"] == "P-256"
    openssl_verify(req["csr_pem"], tmp_path)
    # The key has a request now: a second CSR for it is refused, naming that request.
    again = cli("generate", "--key", "7e57c0de01", "--cn", "x.example", "--group", GROUP)
    assert again.code == 2 and req["label"] in again.err and "belongs to request" in again.err
    wrong_spec = cli("generate", "--key", "label:nothing-here", "--cn", "x", "--group", GROUP)
    assert wrong_spec.code == 2 and "No private key with label 'nothing-here'" in wrong_spec.err
    other = cli("generate", "--key", "pkcs11:token=elsewhere;id=%01", "--cn", "x",
                "--group", GROUP)
    assert other.code == 2 and "elsewhere" in other.err
    assert cli("delete", req["id"], "--yes").code == 0
    assert "Private Key" not in token_objects(token, "7e57c0de01")


def test_generate_for_an_extractable_key_is_refused(cli: Cli, token: SoftHSM) -> None:
    _keypairgen(token, "7e57c0de02", "exportable", "--extractable")
    try:
        out = cli("generate", "--key", "pkcs11:id=%7e%57%c0%de%02", "--cn", "x.example",
                  "--group", GROUP)
        assert out.code == 2
        assert "CKA_EXTRACTABLE is true" in out.err and "Traceback" not in out.err
        assert json.loads(cli("list", "--json").out) == []
    finally:
        _delete_keys(token, "7e57c0de02")


# -- chains -------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["pem", "p7b-der", "p7b-pem"])
async def test_chain_out_of_order_is_stored_in_order(service: CsrService, cli: Cli,
                                                     tmp_path: Path, form: str) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "chain.ex"},
                                                groups=[GROUP]))
    ca = ChainCA()
    leaf = ca.issue(req.csr_pem)
    shuffled = [ca.root.cert, leaf, ca.cert]
    data = {"pem": b"".join(pem(c) for c in shuffled),
            "p7b-der": pkcs7.serialize_certificates(shuffled, Encoding.DER),
            "p7b-pem": pkcs7.serialize_certificates(shuffled, Encoding.PEM)}[form]
    await service.import_certificate(req.id, data)
    stored = x509.load_pem_x509_certificates(
        (await service.get_request(req.id)).certificate_pem.encode())
    assert stored == [leaf, ca.cert, ca.root.cert]
    chain_file = tmp_path / "chain.pem"
    out = cli("certs", "export", req.id, "--chain", "--out", str(chain_file))
    assert out.code == 0, out.err
    assert x509.load_pem_x509_certificates(chain_file.read_bytes()) == [ca.cert, ca.root.cert]
    leaf_out = cli("certs", "export", req.id)
    assert x509.load_pem_x509_certificates(leaf_out.out.encode()) == [leaf]
    bundle = cli("certs", "export", req.id, "--bundle")
    assert x509.load_pem_x509_certificates(bundle.out.encode()) == stored
    downloads = [e for e in service.store.list_audit() if e.action == "download"]
    assert {e.detail.split()[1] for e in downloads} == {"chain", "leaf", "bundle"}
    await service.delete_request(req.id)


async def test_broken_chain_is_refused_and_nothing_imported(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "broken.ex"},
                                                groups=[GROUP]))
    ca = ChainCA()
    count = await service.token.object_count()
    with pytest.raises(InputError, match="breaks at 'CN=broken.ex': its issuer "
                       "'CN=Renew Issuing CA' is not in the file.*'CN=Renew Root CA'"):
        await service.import_certificate(req.id, pem(ca.issue(req.csr_pem)) + pem(ca.root.cert))
    assert (await service.get_request(req.id)).status is Status.PENDING
    assert await service.token.object_count() == count
    await service.delete_request(req.id)


# -- expiry -------------------------------------------------------------------------------------

def test_certs_expiring_lists_exactly_those_within_the_days(cli: Cli, tmp_path: Path) -> None:
    ca = TestCA()

    # (valid for, starting) in days: ends in 10, 29, 31 and 90 days, and 2 days ago.
    for name, days, start in (("d10", 11, -1), ("d29", 30, -1), ("d31", 32, -1),
                              ("d90", 91, -1), ("gone", 38, -40)):
        req = json.loads(cli("generate", "--key-spec", "P-256", "--cn", f"{name}.example",
                             "--group", GROUP, "--label", name, "--json").out)
        path = tmp_path / f"{name}.pem"
        path.write_bytes(pem(ca.issue(req["csr_pem"], days=days, start_days=start)))
        assert cli("import-cert", str(path)).code == 0
    out = cli("certs", "list", "--expiring", "30", "--json")
    assert out.code == 0, out.err
    rows = json.loads(out.out)
    assert {r["label"]: (r["days_left"], r["expiry"]) for r in rows} == {
        "gone": (-2, "expired"), "d10": (9, "expiring"), "d29": (28, "expiring")}
    for row in rows:
        assert datetime.fromisoformat(row["not_after"]) == datetime.fromisoformat(
            row["certificate"]["not_after"])
    every = json.loads(cli("certs", "list", "--json").out)
    assert [r["label"] for r in every] == ["gone", "d10", "d29", "d31", "d90"]
    assert {r["label"]: r["expiry"] for r in every}["d31"] == "valid"
    # The threshold from the environment (expiry_warning_days) when DAYS is left out.
    narrow = cli("certs", "list", "--expiring", "--json",
                 extra_env={"TUI_CSR_EXPIRY_WARNING_DAYS": "15"})
    assert [r["label"] for r in json.loads(narrow.out)] == ["gone", "d10"]
    human = cli("certs", "list", "--expiring", "30")
    labels = [line.split()[1] for line in human.out.splitlines() if line.strip()]
    assert human.code == 0 and "EXPIRED" in human.out and labels == ["gone", "d10", "d29"]
    assert cli("certs", "list", "--expiring", "-3").code == 2


async def test_expiry_uses_the_injected_clock(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "clock.ex"},
                                                groups=[GROUP]))
    cert = TestCA().issue(req.csr_pem, days=100, start_days=-1)
    await service.import_certificate(req.id, pem(cert))
    end = cert.not_valid_after_utc
    service.now = lambda: end - timedelta(days=40, hours=1)
    assert await service.certificate_expiry(30) == []
    service.now = lambda: end - timedelta(days=20, hours=1)
    [entry] = await service.certificate_expiry(30)
    assert (entry.days_left, entry.state) == (20, "expiring")
    service.now = lambda: end + timedelta(hours=1)
    [entry] = await service.certificate_expiry(0)
    assert (entry.days_left, entry.state) == (0, "expired")
    service.now = lambda: end + timedelta(days=3, hours=1)
    [entry] = await service.certificate_expiry(0)
    assert (entry.days_left, entry.state) == (-3, "expired")
    await service.delete_request(req.id)


def test_audit_verify_names_an_altered_entry(cli: Cli) -> None:
    made = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "audit.example",
                          "--group", GROUP, "--json").out)
    assert cli("audit", "--verify").code == 0
    path = cli.data_dir / "tui-csr.json"
    doc = json.loads(path.read_text())
    entry = next(e for e in doc["audit"].values() if e.get("subject") == made["id"])
    entry["user"] = "mallory"
    path.write_text(json.dumps(doc))
    out = cli("audit", "--verify")
    assert out.code == 1 and "altered" in out.err and "generate" in out.err


def test_expiry_warning_days_setting(tmp_path: Path) -> None:
    from tui_csr.config import load_settings
    from tui_csr.errors import ConfigError

    assert load_settings(env={}).expiry_warning_days == 30
    conf = tmp_path / "c.toml"
    conf.write_text("expiry_warning_days = 45\n")
    assert load_settings(config=conf, env={}).expiry_warning_days == 45
    assert load_settings(config=conf, env={"TUI_CSR_EXPIRY_WARNING_DAYS": "7"}
                         ).expiry_warning_days == 7
    with pytest.raises(ConfigError, match="not a whole number of days"):
        load_settings(env={"TUI_CSR_EXPIRY_WARNING_DAYS": "soon"})
    conf.write_text("expiry_warning_days = -1\n")
    with pytest.raises(ConfigError, match="outside 0..3650"):
        load_settings(config=conf, env={})


def test_existing_key_attributes_are_read_in_one_call_per_object(cli: Cli, token: SoftHSM,
                                                                 tmp_path: Path) -> None:
    """Counted with OpenSC's pkcs11-spy between tui-csr and SoftHSM: the private key's flags
    are read in one C_GetAttributeValue template, in one call (buffers sized ahead, where
    python-pkcs11 made it two: sizes, then values), never one attribute at a time; the public
    key's point likewise."""
    spy = Path("/usr/lib/x86_64-linux-gnu/pkcs11-spy.so")
    if not spy.exists():
        pytest.skip("OpenSC's pkcs11-spy.so is not installed")
    _keypairgen(token, "7e57c0de03", "spied key")
    log = tmp_path / "spy.log"
    out = cli("generate", "--key", "id:7e57c0de03", "--cn", "spy.example", "--group", GROUP,
              "--json", extra_env={"TUI_CSR_MODULE": str(spy), "PKCS11SPY": token.module,
                                   "PKCS11SPY_OUTPUT": str(log)})
    assert out.code == 0, out.err
    templates: list[list[str]] = []
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("[in] pTemplate[") and "C_GetAttributeValue" in "".join(
                lines[max(0, i - 4):i]):
            size = int(line.split("[")[2].split("]")[0])
            templates.append([lines[i + 1 + k].split()[0] for k in range(size)])
    flags = [t for t in templates if "CKA_NEVER_EXTRACTABLE" in t]
    assert flags and all({"CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_ALWAYS_SENSITIVE",
                          "CKA_SIGN", "CKA_ID", "CKA_LABEL"} <= set(t) for t in flags)
    assert len(flags) == 1  # one template, one call (tui_csr/hsm/native.py)
    points = [t for t in templates if "CKA_EC_POINT" in t]
    assert len(points) == 1 and all("CKA_EC_PARAMS" in t for t in points)
    assert cli("delete", json.loads(out.out)["id"], "--yes").code == 0


async def test_two_processes_cannot_both_claim_an_existing_key(service: CsrService,
                                                               token: SoftHSM) -> None:
    import hashlib

    from tui_csr.core.p11uri import parse_key_selector

    _keypairgen(token, "7e57c0de04", "contended")
    try:
        lease_id = hashlib.sha256(f"existing-key\0{token.label}\0{'7e57c0de04'}".encode()
                                  ).hexdigest()
        params = GenerateParams(key_spec="", fields={"CN": "c.example"}, groups=[GROUP])
        held = service.store.intent_lease(lease_id)  # as another process's claim would
        try:
            with pytest.raises(InputError, match="another tui-csr process"):
                await service.generate_for_key(parse_key_selector("7e57c0de04"), params)
        finally:
            held.release()
        req = await service.generate_for_key(parse_key_selector("7e57c0de04"), params)
        assert req.label == "contended" and req.key_id == "7e57c0de04"
        await service.delete_request(req.id)
    finally:
        _delete_keys(token, "7e57c0de04")


async def test_renew_takes_changed_extensions_and_keeps_the_rest(service: CsrService) -> None:
    """What the wizard changes on the way (here the EKU and a keyUsage) reaches the renewal;
    what it leaves alone (None) is the profiles' as before."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    source = await service.generate(GenerateParams(
        key_spec="P-256", fields={"CN": "ext-renew.example"}, groups=[GROUP],
        eku="serverAuth"))
    new = await service.renew(source.id, renewal.RenewOverrides(
        eku="serverAuth,clientAuth", key_usage="digitalSignature"))
    exts = csr_of(new.csr_pem).extensions
    eku = exts.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = exts.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
