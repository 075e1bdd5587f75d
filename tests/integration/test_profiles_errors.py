"""Token errors that name their step, clean-ups that are never swallowed, no python-pkcs11
finaliser traceback, and ``tui-csr tokens`` on the real SoftHSM module."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pkcs11 import Attribute
from pkcs11 import exceptions as px

from tests.conftest import SoftHSM
from tests.integration.conftest import Cli
from tests.reliability.conftest import run_python
from tests.standins import vendors
from tui_csr.core.keyspec import parse_key_spec
from tui_csr.errors import TokenError
from tui_csr.hsm.worker import AsyncToken, list_tokens


async def _facade(token: SoftHSM, rules: vendors.Rules, profile: str | None = None
                  ) -> AsyncToken:
    facade = AsyncToken(vendors.VendorToken(token.module, token.label, rules, profile=profile))
    await facade.open()
    await facade.login(token.pin)
    return facade


class _RefusesTemplates(vendors.Rules):
    """A token whose policy refuses the key template (CKR_TEMPLATE_INCONSISTENT)."""

    def key_template(self, template: dict[Any, Any]) -> None:
        raise px.TemplateInconsistent()


async def test_refused_template_names_the_step_attributes_and_override(token: SoftHSM) -> None:
    facade = await _facade(token, _RefusesTemplates())
    before = await facade.object_count()
    with pytest.raises(TokenError) as err:
        await facade.generate_keypair(parse_key_spec("P-256"), "refused",
                                      await facade.new_key_id())
    message = err.value.message
    assert message.startswith("While creating the EC P-256 key pair on token 'test': the "
                              "token refused the key template (vendor policy); tokens may "
                              "refuse CKA_ENCRYPT, CKA_DECRYPT")
    assert "(profile in use: softhsm)" in message and "set token_profile" in message
    assert err.value.code == "CKR_TEMPLATE_INCONSISTENT"
    assert await facade.object_count() == before
    await facade.close()


class _BadPointUndestroyable(vendors.Rules):
    """Returns a malformed CKA_EC_POINT (as tpm2-pkcs11 does for P-521) and cannot destroy."""

    def __init__(self) -> None:
        self.broken = True

    def attribute_values(self, values: dict[Any, Any]) -> dict[Any, Any]:
        if Attribute.EC_POINT in values:
            point = bytes(values[Attribute.EC_POINT])
            values = {**values, Attribute.EC_POINT: b"\x04\x85" + point[3:]}
        return values

    def destroy(self) -> None:
        if self.broken:
            raise px.FunctionFailed()


async def test_refused_public_key_whose_pair_cannot_be_removed_names_orphans(
        token: SoftHSM) -> None:
    rules = _BadPointUndestroyable()
    facade = await _facade(token, rules)
    before = await facade.object_count()
    key_id = await facade.new_key_id()
    with pytest.raises(TokenError) as err:
        await facade.generate_keypair(parse_key_spec("P-521"), "bad-point", key_id)
    message = err.value.message
    assert message.startswith("Token 'test' returned a public key that is not a valid P-521 "
                              "key: its CKA_EC_POINT (135 bytes, starting 04 85 04 ")
    assert message.endswith(") is neither a DER OCTET STRING holding a point nor a raw point; "
                            "the key pair could not be removed from token 'test' "
                            "(CKR_FUNCTION_FAILED): run `tui-csr orphans` to find and destroy "
                            "it.")
    assert await facade.object_count() == before + 2  # it is there, and the sentence says so
    rules.broken = False
    assert await facade.destroy(key_id) == 2
    assert await facade.object_count() == before
    await facade.close()


async def test_refused_public_key_is_destroyed(token: SoftHSM) -> None:
    rules = _BadPointUndestroyable()
    rules.broken = False
    facade = await _facade(token, rules)
    before = await facade.object_count()
    with pytest.raises(TokenError, match="not a valid P-384 key.*; the key pair was destroyed"):
        await facade.generate_keypair(parse_key_spec("P-384"), "bad-point-2",
                                      await facade.new_key_id())
    assert await facade.object_count() == before
    await facade.close()


_DEAD_SESSION = """
import gc, os, sys
from tui_csr.errors import TokenError
from tui_csr.hsm.token import Pkcs11Token
raw = sys.argv[1] == "raw"
if raw:  # python-pkcs11's own objects (tui-csr's loader is not used in this process)
    import pkcs11
    token = pkcs11.lib(os.environ["TUI_CSR_MODULE"]).get_token(
        token_label=os.environ["TUI_CSR_TOKEN"])
    live = token.open(user_pin=os.environ["TUI_CSR_PIN"], rw=True)
    dead = token.open(rw=True)
else:
    token = Pkcs11Token(os.environ["TUI_CSR_MODULE"], os.environ["TUI_CSR_TOKEN"])
    token.open()
    token.login(os.environ["TUI_CSR_PIN"])
    dead = token._token.open(rw=True)
dead.close()  # a session handle the module no longer knows: every call on it fails
if raw:  # python-pkcs11's own search, for comparison
    try:
        list(dead.get_objects({}))
    except Exception as exc:
        print(type(exc).__name__)
else:
    token._session = dead
    for call in (token.list_keys, lambda: token.label_in_use("x"),
                 lambda: token.key_exists(b"1" * 20), lambda: token.destroy(b"1" * 20)):
        try:
            call()
        except TokenError as exc:
            print(exc.code)
gc.collect()
print("done")
"""


def test_no_finaliser_traceback_when_the_session_dies(cli: Cli) -> None:
    """A search whose C_FindObjectsInit fails leaves python-pkcs11's search active; its
    finaliser then prints ``Exception ignored in: ...OperationContext.__del__`` with a
    traceback. tui-csr's searches finish it themselves."""
    env = {**cli.env, "TUI_CSR_PIN": cli.token.pin}
    control = run_python(_DEAD_SESSION, env, "raw")
    assert control.code == 0, control.err
    assert "Exception ignored in: 'pkcs11._pkcs11.OperationContext.__del__'" in control.err
    run = run_python(_DEAD_SESSION, env, "tui-csr")
    assert run.code == 0, run.err
    assert run.out.split() == ["CKR_SESSION_HANDLE_INVALID"] * 4 + ["done"]
    assert run.err == ""


async def test_tokens_describes_the_softhsm_module(token: SoftHSM) -> None:
    desc = await list_tokens(token.module)
    assert desc.library == "SoftHSM Implementation of PKCS11"
    by_label = {t.label: t for t in desc.tokens}
    assert set(by_label) == {"test", "other"}
    test = by_label["test"]
    assert (test.manufacturer, test.model) == ("SoftHSM project", "SoftHSM v2")
    assert test.login_required and not test.protected_auth_path and not test.pin_locked
    assert test.profile == "softhsm" and "matches 'softhsm'" in test.profile_reason
    assert all(why is None for why in test.key_specs.values())
    assert "SHA256_RSA_PKCS_PSS" in test.combined_mechanisms
    assert not any(m.startswith("ECDSA_") for m in test.combined_mechanisms)  # none in 2.6
    assert desc.empty_slots and not any(s.token_present and s.slot_description == ""
                                        for s in desc.empty_slots)
    generic = await list_tokens(token.module, "generic")
    assert {t.profile for t in generic.tokens} == {"generic"}


def test_tokens_command(cli: Cli) -> None:
    run = cli("tokens", "--json", pin=None)
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["module"] == cli.token.module
    assert sorted(t["label"] for t in doc["tokens"]) == ["other", "test"]
    assert {t["profile"] for t in doc["tokens"]} == {"softhsm"}
    human = cli("tokens", pin=None)
    assert human.code == 0, human.err
    assert "Token 'test' (serial " in human.out and "profile:   softhsm" in human.out
    assert "key specs: RSA2048, RSA3072, RSA4096, P-256, P-384, P-521" in human.out
    bad = cli("tokens", extra_env={"TUI_CSR_TOKEN_PROFILE": "acme"}, pin=None)
    assert bad.code == 2 and bad.err.startswith("error: TUI_CSR_TOKEN_PROFILE: unknown token "
                                                "profile 'acme'; valid profiles: cloudhsm")


def test_every_search_goes_through_find_objects() -> None:
    """python-pkcs11's ``get_objects`` leaves a failed search for its finaliser to report on
    the terminal; tui-csr's one search helper finishes it (see the test above)."""
    from pathlib import Path

    import tui_csr

    root = Path(tui_csr.__file__).parent
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if ".get_objects(" in p.read_text(encoding="utf-8"))
    assert callers == ["hsm/keys.py"]
