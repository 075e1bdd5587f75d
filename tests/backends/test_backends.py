"""The back ends leave nothing running: stopped at teardown, with their children, and even when
the process that started them is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import p11kit
from tests.backends.fixtures import require
from tests.backends.procs import children_of, wait_for
from tests.backends.token import RealToken, parse_objects


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_p11kit_stop_takes_the_connection_children_too(own_p11kit_token: RealToken) -> None:
    token = own_p11kit_token
    server = token.daemons["server"]
    # A client holding a connection open: the server forks a child for it.
    client = subprocess.Popen(
        ["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
         "--pin", token.pin, "--keypairgen", "--key-type", "rsa:4096", "--label", "held"],
        env=token.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("a connection child", lambda: bool(children_of(server.pid)), server)
        kids = children_of(server.pid)
        p11kit.stop(token)
        assert not _alive(server.pid)
        assert [k for k in kids if _alive(k)] == []
    finally:
        client.kill()
        client.wait()


_STARTER = """
import sys
from pathlib import Path
from tests.backends import p11kit, tpm2
tok = (tpm2 if sys.argv[1] == "tpm2" else p11kit).start(Path(sys.argv[2]))
print(" ".join(str(d.pid) for d in tok.daemons.values()), flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.parametrize("kind", ["tpm2", "p11kit"])
def test_daemons_die_with_a_killed_test_process(kind: str, tmp_path: Path) -> None:
    """pytest killed with SIGKILL runs no finaliser and no atexit: the daemons still go
    (``setpriv --pdeathsig KILL``)."""
    require(kind)
    proc = subprocess.Popen([sys.executable, "-c", _STARTER, kind, str(tmp_path / kind)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    wait_for("the daemons to exit", lambda: not any(_alive(p) for p in pids), timeout=5)


def test_parse_objects_reads_every_class() -> None:
    text = """Private Key Object; EC
  label:      web key
  ID:         a1b2
  Usage:      sign
Public Key Object; EC  EC_POINT 256 bits
  EC_POINT:   0441
  label:      web key
  ID:         A1B2
Data object 5
  label:          'tag'
  application:    'tui-csr'
Certificate Object; type = X.509 cert
  label:      web key
  subject:    DN: CN=web
  ID:         a1b2
"""
    got = [(o.cls, o.label, o.key_id) for o in parse_objects(text)]
    assert got == [("private", "web key", "a1b2"), ("public", "web key", "a1b2"),
                   ("data", "tag", ""), ("certificate", "web key", "a1b2")]
