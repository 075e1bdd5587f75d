"""Token faults through the command line: each one is a single ``error:`` sentence (with the
CKR name where the token gave one), exit 1 or 2, no traceback, and nothing half-done left on
the token or in the store.

Faults that need a token in a particular state (a fresh login counter, a token folder that is
removed) use a SoftHSM token made for the test; the rest use the session token from child
processes. SoftHSM 2.6 never locks a user PIN (proved below), so CKR_PIN_LOCKED comes from a
stand-in for python-pkcs11's token object, behind the real Pkcs11Token and AsyncToken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import GROUP, Cli, Result
from tests.reliability.conftest import (
    CLI_MAIN,
    PrivateToken,
    Run,
    elf_library,
    make_private_token,
)
from tui_csr.service import CsrService

GENERATE = ("generate", "--key-spec", "P-256", "--cn", "fault.example", "--group", GROUP)

_COUNT_OBJECTS = """
import os, pkcs11
lib = pkcs11.lib(os.environ["TUI_CSR_MODULE"])
token = lib.get_token(token_label=os.environ["TUI_CSR_TOKEN"])
with token.open(user_pin=os.environ["TUI_CSR_PIN"]) as session:
    print(sum(1 for _ in session.get_objects()))
"""


def object_count(tok: PrivateToken) -> int:
    """Objects on a private token, counted by a child process (never loaded in this one)."""
    run = tok.python(_COUNT_OBJECTS, pin=tok.token.pin)
    assert run.code == 0, run.err
    return int(run.out)


def one_sentence(run: Run | Result, code: int, *needles: str) -> str:
    """Exit ``code``, one ``error:`` line holding every needle, no traceback."""
    assert run.code == code, (run.code, run.err)
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    line = lines[0]
    print(f"\n[exit {run.code}] {line}")  # shown with -s: the table in SECURITY.md
    for needle in needles:
        assert needle in line, line
    return line


# -- PIN -------------------------------------------------------------------------------------

def test_wrong_pin_on_a_fresh_token(private_token: PrivateToken) -> None:
    before = object_count(private_token)
    wrong = str(int(private_token.token.pin) ^ 0x5A5A5A).zfill(12)
    run = private_token.cli(*GENERATE, pin=wrong)
    one_sentence(run, 1, "error: Wrong PIN for token 'private'.", "(CKR_PIN_INCORRECT)")
    assert wrong not in run.err and private_token.token.pin not in run.err
    assert object_count(private_token) == before


_MANY_WRONG_LOGINS = """
import os, pkcs11
from pkcs11 import TokenFlag, exceptions as px
lib = pkcs11.lib(os.environ["TUI_CSR_MODULE"])
token = lib.get_token(token_label=os.environ["TUI_CSR_TOKEN"])
flags = set()
for _ in range(12):
    try:
        token.open(user_pin="000000000000").close()
    except px.PinIncorrect:
        pass
    flags.add(int(TokenFlag(token.flags) & (TokenFlag.USER_PIN_LOCKED | TokenFlag.USER_PIN_COUNT_LOW
                                            | TokenFlag.USER_PIN_FINAL_TRY)))
token.open(user_pin=os.environ["TUI_CSR_PIN"]).close()
print(sorted(flags))
"""


def test_softhsm_never_locks_the_user_pin(private_token: PrivateToken) -> None:
    """Why CKR_PIN_LOCKED needs a stand-in: after 12 wrong logins SoftHSM 2.6 sets no PIN
    counter flag and still accepts the right PIN."""
    run = private_token.python(_MANY_WRONG_LOGINS, pin=private_token.token.pin)
    assert run.code == 0, run.err
    assert run.out.strip() == "[0]"


# The real token object, except that C_Login answers like a token whose PIN is locked (or has
# one try left). Installed below Pkcs11Token, so its error mapping and AsyncToken are real.
_PIN_STAND_IN = CLI_MAIN + """
from pkcs11 import TokenFlag, exceptions as px
from tui_csr.hsm.token import Pkcs11Token
mode = sys.argv[1]

class StandIn:
    def __init__(self, real):
        self._real = real
    def __getattr__(self, name):
        return getattr(self._real, name)
    @property
    def flags(self):
        extra = TokenFlag.USER_PIN_LOCKED if mode == "locked" else TokenFlag.USER_PIN_FINAL_TRY
        return TokenFlag(self._real.flags) | extra
    def open(self, *args, **kwargs):
        raise px.PinLocked() if mode == "locked" else px.PinIncorrect()

real_open = Pkcs11Token.open
def open_(self):
    real_open(self)
    self._token = StandIn(self._token)
    return self.info()
Pkcs11Token.open = open_
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("mode", "needles"), [
    ("locked", ("error: The user PIN of token 'test' is locked; the security officer must "
                "unlock it.", "(CKR_PIN_LOCKED)")),
    ("final", ("error: Wrong PIN for token 'test'. One try is left before the PIN locks.",
               "(CKR_PIN_INCORRECT)")),
])
def test_locked_pin_and_last_try(cli: Cli, mode: str, needles: tuple[str, ...]) -> None:
    from tests.reliability.conftest import run_python

    run = run_python(_PIN_STAND_IN, {**cli.env, "TUI_CSR_PIN": cli.token.pin}, mode, *GENERATE)
    one_sentence(run, 1, *needles)
    assert cli.token.pin not in run.err


# -- module and token selection -----------------------------------------------------------------

def test_missing_module_path(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "libvendor-pkcs11.so"
    one_sentence(cli(*GENERATE, "--module", str(missing)), 2,
                 f"error: PKCS#11 module {missing} does not exist.")


@pytest.mark.parametrize("kind", ["text", "elf", "folder", "empty"])
def test_file_that_is_not_a_pkcs11_module(cli: Cli, tmp_path: Path, kind: str) -> None:
    path = {"text": tmp_path / "module.so", "elf": elf_library(),
            "folder": tmp_path, "empty": tmp_path / "empty.so"}[kind]
    if kind == "text":
        path.write_text("#!/bin/sh\necho not a library\n")
    elif kind == "empty":
        path.write_bytes(b"")
    run = cli(*GENERATE, "--module", str(path))
    if kind == "folder":
        one_sentence(run, 2, f"error: PKCS#11 module {path} is not a file.")
    else:
        one_sentence(run, 2, f"error: {path} is not a PKCS#11 module that can be loaded")


def test_unknown_token_label(cli: Cli) -> None:
    one_sentence(cli(*GENERATE, "--token", "no-such-token"), 1,
                 "error: No token with label 'no-such-token'", "tokens present: ",
                 "(CKR_TOKEN_NOT_PRESENT)")


# -- the token disappears while a session is open ---------------------------------------------

# Removes the SoftHSM token folder when ``method`` of the real Pkcs11Token is first called:
# the module is loaded, the session open and logged in, and then the token is gone.
_VANISH = CLI_MAIN + """
import shutil
from tui_csr.hsm.token import Pkcs11Token
method, folder = sys.argv[1], sys.argv[2]
original = getattr(Pkcs11Token, method)
def vanishing(self, *args, **kwargs):
    shutil.rmtree(folder, ignore_errors=True)
    return original(self, *args, **kwargs)
setattr(Pkcs11Token, method, vanishing)
sys.exit(main(sys.argv[3:]))
"""


def _vanish(tok: PrivateToken, method: str, *argv: str) -> Run:
    return tok.python(_VANISH, method, str(tok.tokens_dir), *argv, pin=tok.token.pin)


def _records(tok: PrivateToken) -> list[dict]:
    run = tok.cli("list", "--json", "--all")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_token_removed_during_key_generation(private_token: PrivateToken) -> None:
    run = _vanish(private_token, "generate_keypair", *GENERATE)
    one_sentence(run, 1, "token 'private'", "(CKR_")
    assert _records(private_token) == []


def test_token_removed_before_signing(private_token: PrivateToken) -> None:
    run = _vanish(private_token, "sign", *GENERATE)
    one_sentence(run, 1, "token 'private'", "(CKR_")
    assert _records(private_token) == []


def test_token_removed_before_delete_keeps_the_record(private_token: PrivateToken) -> None:
    made = private_token.cli(*GENERATE, "--json", pin=private_token.token.pin)
    assert made.code == 0, made.err
    doc = json.loads(made.out)
    run = _vanish(private_token, "destroy", "delete", doc["id"], "--yes")
    line = one_sentence(run, 1, "token 'private'", "The request record was kept.", "(CKR_")
    assert "no longer" in line
    assert [r["id"] for r in _records(private_token)] == [doc["id"]]


def test_token_removed_before_orphan_scan(private_token: PrivateToken) -> None:
    """An empty answer from a vanished token must not read as "every key is gone"."""
    made = private_token.cli(*GENERATE, "--json", pin=private_token.token.pin)
    assert made.code == 0, made.err
    run = _vanish(private_token, "list_keys", "orphans", "list", "--json")
    one_sentence(run, 1, "token 'private'", "no longer", "(CKR_")
    assert run.out == ""


# -- key specs the token cannot make ----------------------------------------------------------

# The real slot, except that its mechanism info says RSA keys stop at 3072 bits (as on HSMs
# whose policy forbids RSA-4096), or that EC key generation is not listed at all.
_MECHANISM_STAND_IN = CLI_MAIN + """
from pkcs11 import Mechanism
from tui_csr.hsm.token import Pkcs11Token
mode = sys.argv[1]

class Info:
    def __init__(self, real):
        self.min_key_length, self.max_key_length = real.min_key_length, 3072

class Slot:
    def __init__(self, real):
        self._real = real
    def __getattr__(self, name):
        return getattr(self._real, name)
    def get_mechanisms(self):
        mechs = set(self._real.get_mechanisms())
        return mechs - {Mechanism.EC_KEY_PAIR_GEN} if mode == "no-ec" else mechs
    def get_mechanism_info(self, mech):
        info = self._real.get_mechanism_info(mech)
        return Info(info) if mode == "rsa-3072" and mech == Mechanism.RSA_PKCS_KEY_PAIR_GEN else info

class Token:
    def __init__(self, real):
        self._real, self.slot = real, Slot(real.slot)
    def __getattr__(self, name):
        return getattr(self._real, name)

real_open = Pkcs11Token.open
def open_(self):
    real_open(self)
    self._token = Token(self._token)
    return self.info()
Pkcs11Token.open = open_
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("mode", "spec", "needle"), [
    ("rsa-3072", "RSA4096", "error: Token 'test' supports RSA keys of"),
    ("no-ec", "P-384", "error: Token 'test' cannot generate EC keys (EC_KEY_PAIR_GEN is not "
                       "listed)."),
])
async def test_key_spec_the_token_cannot_make(cli: Cli, service: CsrService, mode: str,
                                              spec: str, needle: str) -> None:
    import asyncio

    from tests.reliability.conftest import run_python

    before = await service.token.object_count()
    run = await asyncio.to_thread(
        run_python, _MECHANISM_STAND_IN, {**cli.env, "TUI_CSR_PIN": cli.token.pin}, mode,
        "generate", "--key-spec", spec, "--cn", "spec.example", "--group", GROUP)
    line = one_sentence(run, 2, needle, "(CKR_MECHANISM_INVALID)")
    if mode == "rsa-3072":
        assert "to 3072 bits, not 4096." in line
    assert await service.token.object_count() == before
    assert json.loads(cli("list", "--json").out) == []


def test_key_spec_outside_what_tui_csr_accepts(cli: Cli) -> None:
    one_sentence(cli("generate", "--key-spec", "RSA1024", "--cn", "x", "--group", GROUP), 2,
                 "error: Key spec 'RSA1024' is not supported: RSA below 2048 bits")
    one_sentence(cli("generate", "--key-spec", "p-192", "--cn", "x", "--group", GROUP), 2,
                 "error: Key spec 'p-192' is not known")


def test_private_token_helper_makes_a_working_token(tmp_path: Path) -> None:
    """Guards the fixtures above: a private token generates and lists like the session one."""
    tok = make_private_token(tmp_path / "guard", label="guard")
    made = tok.cli(*GENERATE, "--json", pin=tok.token.pin)
    assert made.code == 0, made.err
    assert object_count(tok) == 2  # public key, private key (no marker)
