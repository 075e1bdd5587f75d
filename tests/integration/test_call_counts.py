"""The PKCS#11 calls a CSR costs, counted with OpenSC's pkcs11-spy on SoftHSM (issue 14).

Against a network HSM every call is a round trip, so the count is the latency; a count is
deterministic, so these are exact assertions, not timings. Each run gets a token of its own
(two slots: the token and SoftHSM's free one), so no other test's objects are in the count.

When a deliberate change alters a count (a new safety check, a call saved): run this file, read
the per-function counts the failing assertion prints, check each added or removed call is
intended (``PKCS11SPY_OUTPUT`` logs show every call with its arguments), update the table here
and say why in the commit. The bench's figure 7 (``bench/fig_calls.py``) prints the same counts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tui_csr.config import current_user
from tui_csr.core.models import Group
from tui_csr.hsm import softhsm
from tui_csr.store.repo import Store

SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
PIN, SO_PIN = "246810", "13579135"

pytestmark = pytest.mark.skipif(not os.path.exists(SPY),
                                reason="pkcs11-spy.so (Debian package opensc) is not installed")

#: Each request of a batch: the key pair, one read of each key (the security promise and the
#: public key checks), the CKA_ID rewrite to the public key's SHA-1 (two objects), the signature.
PER_REQUEST = {"C_GenerateKeyPair": 1, "C_GetAttributeValue": 2, "C_SetAttributeValue": 2,
               "C_SignInit": 1, "C_Sign": 1}

#: A fresh ``tui-csr generate`` P-256: the module loaded and its slots listed by tui-csr's own
#: loader (tui_csr/hsm/native.py: one C_GetFunctionList, one C_GetSlotList into a buffer, no
#: C_GetInterface, no C_GetSlotInfo; C_GetTokenInfo per slot, since the labels choose the
#: token), the session, the mechanism list read once (no C_GetMechanismInfo: an EC curve's size
#: is asked only when the token refuses the key pair), one label search, then the request as
#: above, and C_Finalize, which ends the session (no C_CloseSession or C_Logout before it).
FRESH_GENERATE = {
    "C_GetFunctionList": 1, "C_Initialize": 1, "C_GetInfo": 1, "C_GetSlotList": 1,
    "C_GetTokenInfo": 2, "C_OpenSession": 1, "C_Login": 1, "C_GetMechanismList": 1,
    "C_FindObjectsInit": 1, "C_FindObjects": 1, "C_FindObjectsFinal": 1,
    **PER_REQUEST, "C_Finalize": 1,
}


def calls(log: Path) -> Counter[str]:
    """PKCS#11 calls by function in a pkcs11-spy log (each call is a line ``N: C_Name``)."""
    return Counter(re.findall(r"^\d+: (C_\w+)", log.read_text(errors="replace"), re.M))


def _run(tmp_path: Path, name: str, *args: str, stdin: str | None = None) -> Counter[str]:
    """Run ``tui-csr ARGS`` through the spy on a new token of its own; its calls."""
    folder = tmp_path / name
    conf = softhsm.write_conf(folder / "softhsm")
    softhsm.init_token(conf, "calls", PIN, SO_PIN)
    data = folder / "data"
    Store.open(data).add_group(Group("Web", policy="web", created_by=current_user()))
    log = folder / "spy.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUI_CSR_", "PKCS11SPY"))}
    env.update({"SOFTHSM2_CONF": str(conf), "TUI_CSR_MODULE": SPY, "TUI_CSR_TOKEN": "calls",
                "TUI_CSR_DATA_DIR": str(data), "TUI_CSR_PIN": PIN,
                "TUI_CSR_ADMINS": current_user(), "PKCS11SPY": softhsm.find_softhsm_module(),
                "PKCS11SPY_OUTPUT": str(log)})
    proc = subprocess.run([sys.executable, "-m", "tui_csr", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return calls(log)


def _batch(n: int) -> str:
    return "".join(json.dumps({"key_spec": "P-256", "cn": f"host{i}.example.com",
                               "dns": f"host{i}.example.com", "group": "Web"}) + "\n"
                   for i in range(n))


def test_fresh_generate_makes_the_pinned_calls(tmp_path: Path) -> None:
    got = _run(tmp_path, "one", "generate", "--key-spec", "P-256", "--cn", "one.example.com",
               "--group", "Web")
    assert dict(got) == FRESH_GENERATE, dict(got)
    assert sum(got.values()) == 20  # issue 14: at most 20
    assert "C_CreateObject" not in got  # nothing on the token but the key pair


def test_each_request_of_a_batch_costs_the_pinned_calls(tmp_path: Path) -> None:
    n = 3
    small = _run(tmp_path, "n", "generate", "--batch", "-", stdin=_batch(n))
    large = _run(tmp_path, "2n", "generate", "--batch", "-", stdin=_batch(2 * n))
    per_request = {name: (large[name] - small[name]) / n for name in large | small
                   if large[name] != small[name]}
    assert per_request == PER_REQUEST, (per_request, dict(small), dict(large))
    assert sum(PER_REQUEST.values()) == 7
    # The batch's own calls do not grow with it: one label scan of the token, not one per line.
    assert small["C_FindObjectsInit"] == large["C_FindObjectsInit"] == 1
    assert "C_CreateObject" not in large


def test_the_function_table_is_python_pkcs11s_own(tmp_path: Path) -> None:
    """tui_csr.hsm.raw reads python-pkcs11's CK_FUNCTION_LIST pointer from its session object
    (0.10.1's layout); on SoftHSM that is the table C_GetFunctionList returns, so a python-pkcs11
    whose layout moved is caught here (raw.function_list_address then must return None)."""
    conf = softhsm.write_conf(tmp_path / "softhsm")
    softhsm.init_token(conf, "layout", PIN, SO_PIN)
    code = (
        "import ctypes, sys, pkcs11\n"
        "from tui_csr.hsm.raw import function_list_address\n"
        "lib = pkcs11.lib(sys.argv[1])\n"
        "token = lib.get_token(token_label='layout')\n"
        "session = token.open(user_pin=sys.argv[2])\n"
        "ptr = ctypes.c_void_p()\n"
        "assert ctypes.CDLL(sys.argv[1]).C_GetFunctionList(ctypes.byref(ptr)) == 0\n"
        "print(function_list_address(session) == ptr.value, function_list_address(object()))\n"
        "session.close()\n")
    proc = subprocess.run([sys.executable, "-c", code, softhsm.find_softhsm_module(), PIN],
                          env={**os.environ, "SOFTHSM2_CONF": str(conf)}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.stdout.split() == ["True", "None"], proc.stderr


async def test_the_one_read_back_still_refuses_a_key_made_extractable(
        service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-back that the one-call path makes is the guard: a private key the token made
    extractable (here: SoftHSM asked for CKA_EXTRACTABLE=true, which it honours) is destroyed
    and the request refused, with nothing left on the token or in the store."""
    from pkcs11 import Attribute

    from tui_csr.errors import TokenError
    from tui_csr.hsm import generation, raw
    from tui_csr.service import GenerateParams

    real = generation.key_templates

    def careless(*args, **kwargs):
        public, private, left = real(*args, **kwargs)
        return public, {**private, Attribute.EXTRACTABLE: True}, left

    monkeypatch.setattr(generation, "key_templates", careless)
    made: list[int] = []
    real_generate = raw.RawModule.generate_keypair

    def counted(self, *args, **kwargs):
        made.append(1)
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(raw.RawModule, "generate_keypair", counted)
    before = await service.token.object_count()
    with pytest.raises(TokenError) as refused:
        await service.generate(GenerateParams(key_spec="P-256", fields={"CN": "x.example"},
                                              groups=["Web"]))
    assert "did not make the private key as asked" in refused.value.message
    assert "EXTRACTABLE=True" in refused.value.message
    assert made == [1]  # the key was made (and read back) through the one-call path
    assert await service.token.object_count() == before
    assert await service.list_requests() == []


_ONE_MODULE = """
import asyncio, ctypes, json, sys
first, module, pin = sys.argv[1:4]
import pkcs11
from tui_csr.core.keyspec import parse_key_spec
from tui_csr.hsm.token import Pkcs11Token
from tui_csr.hsm.worker import AsyncToken, shutdown_token_thread
if first == "python-pkcs11":  # python-pkcs11 loads (and initialises) the module first
    theirs = pkcs11.lib(module)

async def run():
    token = AsyncToken(Pkcs11Token(module, "layout"))
    await token.open()
    await token.login(pin)
    pair = await token.generate_keypair(parse_key_spec("P-256"), "one-module")
    kinds = sorted(k.label for k in await token.list_keys())
    gone = await token.destroy(pair.key_id)
    return kinds, gone

kinds, gone = asyncio.run(run())
same = type(pkcs11.lib(module)).__name__  # what python-pkcs11 hands out afterwards
shutdown_token_thread()
print(json.dumps({"keys": kinds, "destroyed": gone, "lib": same,
                  "initialised": [lib.initialized for lib in pkcs11._loaded.values()]}))
"""


@pytest.mark.parametrize("first", ["tui-csr", "python-pkcs11"])
def test_one_initialised_module_whoever_loads_it_first(tmp_path: Path, first: str) -> None:
    """tui-csr's loader (tui_csr/hsm/native.py) and python-pkcs11 in one process share one
    C_Initialize: after tui-csr loaded the module, ``pkcs11.lib(path)`` gets tui-csr's instance;
    when python-pkcs11 loaded it first, tui-csr uses its function table. Either way the module
    is initialised once and finalised at the end (counted by the spy)."""
    conf = softhsm.write_conf(tmp_path / "softhsm")
    softhsm.init_token(conf, "layout", PIN, SO_PIN)
    log = tmp_path / "spy.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PKCS11SPY")},
           "SOFTHSM2_CONF": str(conf), "PKCS11SPY": softhsm.find_softhsm_module(),
           "PKCS11SPY_OUTPUT": str(log)}
    proc = subprocess.run([sys.executable, "-c", _ONE_MODULE, first, SPY, PIN], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["keys"] == ["one-module"] and doc["destroyed"] == 2
    assert doc["lib"] == ("NativeLib" if first == "tui-csr" else "lib")
    assert doc["initialised"] == [False]  # finalised by the shutdown
    made = calls(log)
    assert made["C_Initialize"] == 1 and made["C_Finalize"] == 1, dict(made)


async def test_an_ec_curve_the_token_refuses_is_explained_by_its_mechanism_info(
        service, monkeypatch: pytest.MonkeyPatch) -> None:
    """No C_GetMechanismInfo before an EC key pair (a call saved on every first key): when the
    token refuses the curve, its EC key sizes are read then, for the sentence. Here the slot
    says EC keys stop at 256 bits and the module refuses P-384's domain parameters."""
    from pkcs11 import Mechanism
    from pkcs11 import exceptions as px
    from pkcs11.types import MechanismInfo

    from tui_csr.errors import TokenError
    from tui_csr.hsm import native, raw
    from tui_csr.service import GenerateParams

    asked: list[object] = []
    real_info = native.NativeSlot.get_mechanism_info

    def info(self, mech):
        asked.append(mech)
        if mech == Mechanism.EC_KEY_PAIR_GEN:
            return MechanismInfo(self, mech, ulMinKeySize=256, ulMaxKeySize=256, flags=0)
        return real_info(self, mech)

    def refuse(self, *args, **kwargs):
        raise px.DomainParamsInvalid()

    monkeypatch.setattr(native.NativeSlot, "get_mechanism_info", info)
    monkeypatch.setattr(raw.RawModule, "generate_keypair", refuse)
    before = await service.token.object_count()
    with pytest.raises(TokenError) as refused:
        await service.generate(GenerateParams(key_spec="P-384", fields={"CN": "x.example"},
                                              groups=["Web"]))
    assert refused.value.message == ("Token 'test' supports EC curves of 256 to 256 bits, "
                                     "not P-384.")
    assert asked == [Mechanism.EC_KEY_PAIR_GEN]  # asked once, after the refusal
    assert await service.token.object_count() == before
    assert await service.list_requests() == []
