"""Keys that need a login before every use (CKA_ALWAYS_AUTHENTICATE), end to end on SoftHSM: the
CSR is signed through a context-specific login with the PIN from the login's own source; a wrong
PIN there is one sentence and leaves no key behind."""

from __future__ import annotations

import json
import subprocess

import pytest

from tui_csr.core.models import Group
from tui_csr.errors import TokenError
from tui_csr.service import CsrService, GenerateParams


def _group(service: CsrService) -> None:
    service.store.add_group(Group(name="Code", policy="", description="", created_by="t"))


def test_cli_generate_always_authenticate(cli, tmp_path) -> None:
    assert cli("groups", "add", "Code").code == 0
    r = cli("generate", "--key-spec", "P-256", "--cn", "signer.example", "--group", "Code",
            "--always-authenticate", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["key_attributes"]["ALWAYS_AUTHENTICATE"] is True
    assert doc["key_attributes"]["SENSITIVE"] is True and doc["key_attributes"]["EXTRACTABLE"] is False
    csr = tmp_path / "signer.csr"
    csr.write_text(doc["csr_pem"])
    check = subprocess.run(["openssl", "req", "-in", str(csr), "-noout", "-verify"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "verify OK" in (check.stdout + check.stderr)
    text = cli("show", doc["id"], "--text")
    assert text.code == 0 and "CKA_ALWAYS_AUTHENTICATE" in text.out
    # A plain key says nothing of the kind.
    plain = cli("generate", "--key-spec", "P-256", "--cn", "plain.example", "--group", "Code",
                "--json")
    assert plain.code == 0, plain.err
    assert json.loads(plain.out)["key_attributes"].get("ALWAYS_AUTHENTICATE") is not True
    assert "CKA_ALWAYS_AUTHENTICATE" not in cli("show", json.loads(plain.out)["id"], "--text").out


async def test_wrong_pin_at_the_signature_leaves_no_key(service: CsrService) -> None:
    _group(service)
    asked: list[str] = []

    async def wrong_pin(label: str) -> str:
        asked.append(label)
        return "000000000"

    service.pin_source = wrong_pin
    before = await service.token.object_count()
    with pytest.raises(TokenError) as err:
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "x"},
                                              groups=["Code"], always_authenticate=True))
    assert asked == [service.token.label]
    assert err.value.code == "CKR_PIN_INCORRECT" and err.value.message.count(".") <= 2
    assert "\n" not in str(err.value)
    assert await service.token.object_count() == before
    assert service.store.list_requests(None) == [] and service.store.list_intents() == []


async def test_without_a_pin_source_the_key_is_refused_and_removed(service: CsrService) -> None:
    _group(service)
    service.pin_source = None
    before = await service.token.object_count()
    with pytest.raises(TokenError, match="needs the PIN again before each signature"):
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "y"},
                                              groups=["Code"], always_authenticate=True))
    assert await service.token.object_count() == before
