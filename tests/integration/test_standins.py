"""Vendor behaviour that cannot run here, met by the real code path: the CLI (in a child process)
and the service over :mod:`tests.standins.vendors`, which wrap a real SoftHSM session and refuse
exactly what AWS CloudHSM, YubiHSM 2 and Thales Luna document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.ca import TestCA, pem
from tests.integration.conftest import GROUP, Cli, make_settings
from tests.standins import vendors
from tests.standins.cli import killed_at, standin_cli
from tui_csr.core.keyspec import parse_key_spec
from tui_csr.errors import TokenError
from tui_csr.hsm.keys import key_id_for
from tui_csr.hsm.worker import AsyncToken
from tui_csr.service import CsrService, GenerateParams
from tui_csr.store.repo import Store

YUBI_PIN_PREFIX = "0001"


def _env(cli: Cli, vendor: str) -> dict[str, str]:
    pin = cli.token.pin
    return {**cli.env, "TUI_CSR_PIN": YUBI_PIN_PREFIX + pin if vendor == "yubihsm2" else pin}


def _generate(cli: Cli, vendor: str, cn: str, *extra: str,
              env: dict[str, str] | None = None) -> dict:
    run = standin_cli(env or _env(cli, vendor), vendor, "generate", "--key-spec", "P-256",
                      "--cn", cn, "--group", GROUP, "--json", *extra)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    return json.loads(run.out)


def _list(cli: Cli, vendor: str) -> list[dict]:
    run = standin_cli(_env(cli, vendor), vendor, "list", "--json", "--all")
    assert run.code == 0, run.err
    return json.loads(run.out)


async def _objects_with_id(service: CsrService, key_id: str) -> int:
    keys = [k for k in await service.token.list_keys() if k.key_id.hex() == key_id]
    certs = await service.token.certificates(bytes.fromhex(key_id))
    return sum(k.has_private + k.has_public for k in keys) + len(certs)


@pytest.mark.parametrize("vendor", ["cloudhsm", "yubihsm2"])
async def test_generate_list_delete(cli: Cli, service: CsrService, vendor: str) -> None:
    before = await service.token.object_count()
    doc = _generate(cli, vendor, f"{vendor}.example")
    # The stand-ins refuse CKA_ID changes (CloudHSM: not modifiable; YubiHSM 2: immutable), so
    # the pair keeps the id chosen before generation instead of the SHA-1 of its public key.
    spki = x509.load_pem_x509_csr(doc["csr_pem"].encode()).public_key().public_bytes(
        *_der_spki())
    assert doc["key_id"] != key_id_for(spki).hex()
    assert len(bytes.fromhex(doc["key_id"])) == (2 if vendor == "yubihsm2" else 20)
    # Nothing but the key pair was made (CloudHSM would refuse a CKO_DATA object).
    assert await service.token.object_count() == before + 2
    assert await _objects_with_id(service, doc["key_id"]) == 2
    assert [r["id"] for r in _list(cli, vendor)] == [doc["id"]]

    run = standin_cli(_env(cli, vendor), vendor, "delete", doc["id"], "--yes")
    assert run.code == 0, run.err
    assert _list(cli, vendor) == []
    assert await service.token.object_count() == before


def _der_spki() -> tuple:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Encoding.DER, PublicFormat.SubjectPublicKeyInfo


@pytest.mark.parametrize("vendor", ["cloudhsm", "yubihsm2"])
async def test_orphan_after_a_kill_is_found_and_destroyed(cli: Cli, service: CsrService,
                                                          vendor: str) -> None:
    before = await service.token.object_count()
    killed_at(_env(cli, vendor), vendor, "after-keygen", "generate", "--key-spec", "P-256",
              "--cn", "killed.example", "--group", GROUP)
    assert await service.token.object_count() == before + 2
    run = standin_cli(_env(cli, vendor), vendor, "orphans", "list", "--json")
    assert run.code == 0, run.err
    orphans = json.loads(run.out)["keys_without_record"]
    assert len(orphans) == 1 and orphans[0]["label"].startswith("killed.example")
    run = standin_cli(_env(cli, vendor), vendor, "orphans", "destroy", orphans[0]["key_id"],
                      "--yes")
    assert run.code == 0, run.err
    assert await service.token.object_count() == before
    run = standin_cli(_env(cli, vendor), vendor, "orphans", "list", "--json")
    assert json.loads(run.out)["keys_without_record"] == []


async def test_cloudhsm_import_cert_keeps_the_certificate_in_the_store(
        cli: Cli, service: CsrService, tmp_path: Path) -> None:
    doc = _generate(cli, "cloudhsm", "cert.example")
    cert = TestCA().issue(doc["csr_pem"])
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(cert))
    before = await service.token.object_count()
    run = standin_cli(_env(cli, "cloudhsm"), "cloudhsm", "import-cert", doc["id"], str(path))
    assert run.code == 0, run.err
    assert ("warning: Token 'test' (AWS CloudHSM) cannot hold certificate objects; the "
            "certificate is kept in the store only.") in run.err
    assert await service.token.object_count() == before  # nothing was put on the token
    assert await service.token.certificates(bytes.fromhex(doc["key_id"])) == []
    stored = [r for r in _list(cli, "cloudhsm") if r["id"] == doc["id"]]
    assert stored[0]["status"] == "issued"
    assert pem(cert).decode() in stored[0]["certificate_pem"]
    run = standin_cli(_env(cli, "cloudhsm"), "cloudhsm", "delete", doc["id"], "--yes")
    assert run.code == 0, run.err


async def test_cloudhsm_refuses_certificate_objects_at_the_token(token, data_dir) -> None:
    """The token layer itself refuses (the service never gets there: it checks the profile)."""
    sync = vendors.VendorToken(token.module, token.label, vendors.CloudHSM())
    facade = AsyncToken(sync)
    await facade.open()
    await facade.login(token.pin)
    with pytest.raises(TokenError, match="cannot hold certificate objects"):
        await facade.store_certificate(b"\x01" * 20, "x", b"\x30", b"\x30", b"\x30", b"\x02")
    await facade.close()


async def test_generic_profile_on_cloudhsm_meets_the_read_only_id(
        cli: Cli, service: CsrService) -> None:
    """With the generic profile tui-csr tries the CKA_ID rewrite; the stand-in refuses it as
    CloudHSM does (CKR_ATTRIBUTE_READ_ONLY): normal, the random id stays, nothing is left."""
    before = await service.token.object_count()
    env = {**_env(cli, "cloudhsm"), "TUI_CSR_TOKEN_PROFILE": "generic"}
    doc = _generate(cli, "cloudhsm", "generic.example", env=env)
    spki = x509.load_pem_x509_csr(doc["csr_pem"].encode()).public_key().public_bytes(
        *_der_spki())
    assert doc["key_id"] != key_id_for(spki).hex()
    assert await _objects_with_id(service, doc["key_id"]) == 2
    assert await service.token.object_count() == before + 2
    run = standin_cli(env, "cloudhsm", "delete", doc["id"], "--yes")
    assert run.code == 0, run.err
    assert await service.token.object_count() == before


def test_yubihsm_pin_format_is_explained(cli: Cli) -> None:
    run = standin_cli({**cli.env, "TUI_CSR_PIN": cli.token.pin}, "yubihsm2", "generate",
                      "--key-spec", "P-256", "--cn", "pin.example", "--group", GROUP)
    assert run.code == 1
    assert run.error_line == (
        "error: Wrong PIN for token 'test'. The PIN is the authentication key's id in 4 hex "
        "digits followed by its password, e.g. 0001password. (CKR_PIN_INCORRECT)")
    assert cli.token.pin not in run.err


async def test_yubihsm_label_limit_is_refused_before_any_key(cli: Cli,
                                                             service: CsrService) -> None:
    before = await service.token.object_count()
    label = "l" * 41
    run = standin_cli(_env(cli, "yubihsm2"), "yubihsm2", "generate", "--key-spec", "P-256",
                      "--cn", "label.example", "--group", GROUP, "--label", label)
    assert run.code == 2, run.err
    assert run.error_line == ("error: The key label is 41 bytes; YubiHSM 2 holds at most 40.")
    assert await service.token.object_count() == before


async def test_luna_signs_with_the_combined_mechanism(token, data_dir) -> None:
    rules = vendors.Luna()
    sync = vendors.VendorToken(token.module, token.label, rules)
    service = CsrService(make_settings(token, data_dir), Store.open(data_dir),
                         token=AsyncToken(sync))
    info = await service.open_token()
    assert info.profile == "luna"
    await service.login(token.pin)
    for spec, hash_ in (("P-256", "SHA256"), ("P-384", "SHA384")):
        req = await service.generate(GenerateParams(key_spec=spec, hash=hash_,
                                                    fields={"CN": f"luna-{spec}"},
                                                    groups=[GROUP]))
        csr = x509.load_pem_x509_csr(req.csr_pem.encode())
        assert csr.is_signature_valid
        await service.delete_request(req.id)
    assert rules.combined_used == ["ECDSA_SHA256", "ECDSA_SHA384"]
    await service.token.close()


@pytest.mark.parametrize(("rules", "profile"), [
    (vendors.CloudHSM(), "cloudhsm"), (vendors.YubiHSM2(), "yubihsm2"),
    (vendors.Luna(), "luna"), (vendors.Rules(), "softhsm")])
async def test_profile_is_chosen_from_the_token_info(token, rules, profile: str) -> None:
    sync = vendors.VendorToken(token.module, token.label, rules)
    info = await AsyncToken(sync).open()
    assert info.profile == profile
    assert "matches" in info.profile_reason
    assert sync.profile.name == profile


async def test_yubihsm_two_byte_ids_are_what_the_token_takes(token) -> None:
    """The stand-in refuses a 20-byte CKA_ID as YubiHSM 2 does: a profile that sent one would
    fail; the yubihsm2 profile draws 2-byte ids (never zero)."""
    sync = vendors.VendorToken(token.module, token.label, vendors.YubiHSM2())
    facade = AsyncToken(sync)
    await facade.open()
    await facade.login(YUBI_PIN_PREFIX + token.pin)
    ids = {await facade.new_key_id() for _ in range(20)}
    assert all(len(i) == 2 and any(i) for i in ids)
    pair = await facade.generate_keypair(parse_key_spec("P-256"), "yubi-direct", ids.pop())
    try:
        assert await facade.set_key_id(pair.key_id, b"\x12\x34") == pair.key_id  # immutable
    finally:
        assert await facade.destroy(pair.key_id) == 2
    await facade.close()
