"""Key attestation on the real SoftHSM2 token: SoftHSM has none, and says so plainly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import GROUP, Cli
from tui_csr.attestation import AttestationUnsupportedError
from tui_csr.attestation.luna import CKA_PKC_ECC, CKA_PKC_TCTRUST
from tui_csr.service import CsrService, GenerateParams

CKA_ID = 0x102


def _generate(cli: Cli) -> dict:
    r = cli("generate", "--key-spec", "P-256", "--cn", "att.example.com", "--group", GROUP,
            "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_cli_on_softhsm_exits_2_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    doc = _generate(cli)
    out = tmp_path / "att.p7b"
    r = cli("attestation", doc["id"], "--out", str(out))
    assert r.code == 2, r.err
    assert r.err.startswith("error: This token does not support key attestation "
                            '(attestation = "none").')
    assert "Traceback" not in r.err and r.out == ""
    assert not out.exists()


def test_cli_with_luna_configured_on_softhsm_says_not_supported(cli: Cli,
                                                                tmp_path: Path) -> None:
    doc = _generate(cli)
    config = tmp_path / "config.toml"
    config.write_text('attestation = "luna"\n')
    out = tmp_path / "att.p7b"
    r = cli("attestation", doc["label"], "--out", str(out),
            extra_env={"TUI_CSR_CONFIG": str(config)})
    assert r.code == 2, r.err
    assert r.err.startswith("error: Token 'test' does not support key attestation (no Public "
                            "Key Confirmation attribute). (CKR_ATTRIBUTE_TYPE_INVALID)")
    assert not out.exists()


def test_cli_refuses_to_overwrite_before_any_work(cli: Cli, tmp_path: Path) -> None:
    doc = _generate(cli)
    out = tmp_path / "att.p7b"
    out.write_bytes(b"keep")
    r = cli("attestation", doc["id"], "--out", str(out))
    assert r.code == 2 and "already exists; use --force" in r.err
    assert out.read_bytes() == b"keep"


async def test_vendor_attribute_read_on_the_real_token(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "v"},
                                                groups=[GROUP]))
    key_id = bytes.fromhex(req.key_id)
    token = service.token
    # An attribute read by number comes back raw, from either object of the pair ...
    assert await token.read_vendor_attribute(key_id, CKA_ID, "private") == key_id
    assert await token.read_vendor_attribute(key_id, CKA_ID, "public") == key_id
    # ... and one SoftHSM does not know is None (CKR_ATTRIBUTE_TYPE_INVALID), not an error.
    for attr in (CKA_PKC_ECC, CKA_PKC_TCTRUST):
        assert await token.read_vendor_attribute(key_id, attr, "private") is None
    # The main session is untouched: the token still signs and lists.
    assert any(k.key_id == key_id for k in await service.token_keys())


async def test_luna_provider_on_softhsm_is_not_supported(service: CsrService) -> None:
    req = await service.generate(GenerateParams(key_spec="RSA2048", fields={"CN": "l"},
                                                groups=[GROUP]))
    assert "attestation = \"none\"" in (service.attestation_available() or "")
    service.settings.attestation = "luna"
    assert service.attestation_available() is None
    with pytest.raises(AttestationUnsupportedError, match="Token 'test' does not support key "
                       r"attestation \(no Public Key Confirmation attribute\)"):
        await service.attestation(req.id)
