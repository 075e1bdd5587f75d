"""The inter-process token lock (tui_csr/hsm/interprocess.py): which tokens get it, what path
every process agrees on, and that a second process really waits for the first one's call."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.conftest import make_private_token
from tui_csr.hsm import interprocess
from tui_csr.hsm.interprocess import SerialisedToken, serialised
from tui_csr.hsm.token import Pkcs11Token


def test_softhsm_tokens_are_serialised_on_their_token_folder(tmp_path: Path, monkeypatch) -> None:
    tok = make_private_token(tmp_path / "own")
    monkeypatch.setenv("SOFTHSM2_CONF", tok.env["SOFTHSM2_CONF"])
    wrapped = serialised(Pkcs11Token(tok.env["TUI_CSR_MODULE"], "private"))
    assert isinstance(wrapped, SerialisedToken)
    # The token folder every admin of this SoftHSM store opens, whoever they are.
    assert wrapped.lock_path == tok.tokens_dir
    assert wrapped.token_label == "private"  # attributes read through


def test_other_tokens_and_stand_ins_are_not_wrapped(tmp_path: Path) -> None:
    other = Pkcs11Token(str(tmp_path / "libvendor-pkcs11.so"), "hsm")
    assert serialised(other) is other

    class StandIn:
        token_label = "fake"

    stand_in = StandIn()
    assert serialised(stand_in) is stand_in


def test_the_runtime_lock_file_is_per_module_and_token(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    a = interprocess.lock_path("/usr/lib/a.so", "one", softhsm=False)
    assert a.parent == tmp_path / "tui-csr"
    assert a == interprocess.lock_path("/usr/lib/a.so", "one", softhsm=False)
    assert a != interprocess.lock_path("/usr/lib/a.so", "two", softhsm=False)
    assert a != interprocess.lock_path("/usr/lib/b.so", "one", softhsm=False)


_HOLDER = """
import sys, time
from pathlib import Path
from tui_csr.hsm.interprocess import held
path, log, hold = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
with held(path):
    with open(log, "a") as fh:
        fh.write(f"{sys.argv[4]} in\\n")
    time.sleep(hold)
    with open(log, "a") as fh:
        fh.write(f"{sys.argv[4]} out\\n")
"""


def test_a_second_process_waits_for_the_first_ones_call(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    folder.mkdir()
    log = tmp_path / "log"
    first = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder), str(log), "1.0", "A"])
    while not log.exists():  # A holds the lock
        if first.poll() is not None:
            raise AssertionError("the first holder ended early")
        time.sleep(0.01)
    second = subprocess.run([sys.executable, "-c", _HOLDER, str(folder), str(log), "0", "B"],
                            timeout=60, check=False)
    first.wait(timeout=60)
    assert second.returncode == 0 and first.returncode == 0
    # B got in only after A was out: the calls never overlapped.
    assert log.read_text().split("\n")[:4] == ["A in", "A out", "B in", "B out"]
