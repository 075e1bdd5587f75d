"""Request lifecycle on the real token: view, edit, import a certificate, orphans."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.ca import TestCA, der, pem
from tests.integration.conftest import GROUP, Cli
from tui_csr.core.models import Status
from tui_csr.errors import InputError
from tui_csr.service import CsrService, GenerateParams


async def _make(service: CsrService, cn: str = "life.example", **kw):
    return await service.generate(GenerateParams(key_spec=kw.pop("spec", "P-256"),
                                                 fields={"CN": cn}, groups=[GROUP], **kw))


async def test_view_decodes_and_reverifies(service: CsrService) -> None:
    req = await _make(service, sans=[("email", "a@example.com")], owner="alice")
    view = await service.view_request(req.id[:6])
    assert view.request.id == req.id
    assert view.csr.subject == "CN=life.example"
    assert view.csr.sans == [("email", "a@example.com")]
    assert view.csr.key == "EC P-256" and view.csr.signature == "SHA256withECDSA"
    assert view.csr.signature_valid
    assert len(view.csr.csr_sha256.split(":")) == 32
    await service.delete_request(req.id)


async def test_import_certificate_moves_request_to_certificates(service: CsrService) -> None:
    req = await _make(service)
    ca = TestCA()
    cert = ca.issue(req.csr_pem)
    before = await service.token.object_count()
    result = await service.import_certificate(req.id, der(cert))
    assert result.warnings == []
    assert result.request.status is Status.ISSUED
    # A certificate object with the key's CKA_ID is on the token.
    on_token = await service.token.certificates(bytes.fromhex(req.key_id))
    assert on_token == [der(cert)]
    assert await service.token.object_count() == before + 1
    assert [r.id for r in await service.list_requests()] == []
    certs = await service.list_certificates()
    assert [(r.id, c.serial) for r, c in certs] == [(req.id, f"{cert.serial_number:X}")]
    assert certs[0][1].issuer == "CN=Test CA" and certs[0][0].groups == [GROUP]
    with pytest.raises(InputError, match="already has a certificate"):
        await service.import_certificate(req.id, pem(cert))
    actions = [e.action for e in service.store.list_audit()]
    assert "import-cert" in actions


async def test_certificate_for_another_key_is_refused(service: CsrService) -> None:
    req = await _make(service)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = TestCA().issue(req.csr_pem, public_key=other)
    before = await service.token.object_count()
    with pytest.raises(InputError, match="for another key"):
        await service.import_certificate(req.id, pem(cert))
    assert await service.token.object_count() == before
    assert (await service.get_request(req.id)).status is Status.PENDING
    await service.delete_request(req.id)


async def test_expired_certificate_imports_with_a_warning(service: CsrService) -> None:
    req = await _make(service)
    cert = TestCA().issue(req.csr_pem, start_days=-30, days=10)
    result = await service.import_certificate(req.id, pem(cert))
    assert result.warnings and "expired" in result.warnings[0]


async def test_garbage_is_not_a_certificate(service: CsrService) -> None:
    req = await _make(service)
    with pytest.raises(InputError, match="not an X.509 certificate"):
        await service.import_certificate(req.id, b"hello")
    await service.delete_request(req.id)


async def test_edit_groups_and_owner(service: CsrService) -> None:
    # A policy naming no profile: joining it checks nothing (profiles: test_edit_profiles.py).
    await service.add_group("Mail", policy="mail-policy")
    req = await _make(service)
    changed = await service.set_groups(req.id, ["mail", "Web"], "bob", change_owner=True)
    assert changed.groups == ["Mail", "Web"] and changed.owner == "bob"
    with pytest.raises(InputError, match="at least one"):
        await service.set_groups(req.id, [])
    assert (await service.get_request(req.id)).groups == ["Mail", "Web"]
    assert any(e.action == "edit-groups" for e in service.store.list_audit())
    await service.delete_request(req.id)


async def test_orphans_found_adopted_and_destroyed(service: CsrService) -> None:
    from tests.integration.test_intents import make_orphan
    from tui_csr.core.keyspec import parse_key_spec

    # Keys made by tui-csr whose record never got written (the process was killed): an open
    # intent names each.
    pair = SimpleNamespace(key_id=await make_orphan(service, "P-384", "orphan-a"))
    pair2 = SimpleNamespace(key_id=await make_orphan(service, "P-256", "orphan-b"))
    # A key no intent of this data folder names (another folder's, another tool's): not ours.
    foreign = await service.token.generate_keypair(parse_key_spec("P-256"), "foreign",
                                                   await service.token.new_key_id())
    # A record whose key is gone.
    gone = await _make(service, cn="gone")
    await service.token.destroy(bytes.fromhex(gone.key_id))
    report = await service.scan_orphans()
    stray = {k.key_id for k in report.keys_without_record}
    assert stray == {pair.key_id, pair2.key_id}
    assert foreign.key_id not in stray
    assert [r.id for r in report.records_without_key] == [gone.id]
    adopted = await service.adopt_orphan(pair.key_id.hex(), GenerateParams(
        key_spec="", fields={"CN": "adopted"}, groups=[GROUP]))
    assert adopted.key_spec == "P-384" and adopted.label == "orphan-a"
    csr = x509.load_pem_x509_csr(adopted.csr_pem.encode())
    assert csr.is_signature_valid
    assert await service.destroy_orphan(pair2.key_id.hex()) == 2
    with pytest.raises(InputError, match="belongs to a request"):
        await service.destroy_orphan(pair.key_id.hex())
    report = await service.scan_orphans()
    assert pair.key_id not in {k.key_id for k in report.keys_without_record}
    assert pair2.key_id not in {k.key_id for k in report.keys_without_record}
    await service.delete_request(adopted.id)
    with pytest.raises(InputError, match="not a tui-csr key"):
        await service.destroy_orphan(foreign.key_id.hex())
    await service.token.destroy(foreign.key_id)
    # Deleting a record whose key is already gone is not an error.
    await service.delete_request(gone.id)
    assert await service.list_requests() == []


def test_cli_import_and_certs_list(cli: Cli, tmp_path: Path) -> None:
    doc = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "cli-cert", "--group",
                         GROUP, "--json").out)
    cert_path = tmp_path / "c.pem"
    cert_path.write_bytes(pem(TestCA().issue(doc["csr_pem"])))
    r = cli("import-cert", doc["id"], str(cert_path))
    assert r.code == 0, r.err
    assert "imported certificate serial" in r.err
    certs = json.loads(cli("certs", "list", "--json").out)
    assert [c["id"] for c in certs] == [doc["id"]]
    assert certs[0]["certificate"]["issuer"] == "CN=Test CA"
    assert json.loads(cli("list", "--json").out) == []


def test_cli_import_refuses_other_key(cli: Cli, tmp_path: Path) -> None:
    doc = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP,
                         "--json").out)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert_path = tmp_path / "c.der"
    cert_path.write_bytes(der(TestCA().issue(doc["csr_pem"], public_key=other)))
    r = cli("import-cert", doc["id"], str(cert_path))
    assert r.code == 2 and "for another key" in r.err


def test_cli_edit_and_orphans(cli: Cli) -> None:
    assert cli("groups", "add", "Ops").code == 0
    doc = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "e", "--group", GROUP,
                         "--json").out)
    r = cli("edit", doc["id"], "--group", "Ops", "--owner", "carol")
    assert r.code == 0, r.err
    shown = json.loads(cli("show", doc["id"], "--json").out)
    assert shown["groups"] == ["Ops"] and shown["owner"] == "carol"
    r = cli("orphans", "list", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["records_without_key"] == []
