"""Running the real CLI in a child process whose token is a vendor stand-in.

The child replaces :class:`tui_csr.hsm.token.Pkcs11Token` (which the service instantiates in
``open_token``) with :class:`~tests.standins.vendors.VendorToken` over the rules named by its
first argument, then runs ``tui_csr.cli.main`` on the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.reliability.conftest import Run, run_python

STANDIN_MAIN = """
import sys
import tui_csr.hsm.token as token_module
from tests.standins import vendors
from tui_csr.cli import main

rules = {"cloudhsm": vendors.CloudHSM, "yubihsm2": vendors.YubiHSM2,
         "luna": vendors.Luna}[sys.argv[1]]()

def factory(module, label=None, serial=None, profile=None):
    return vendors.VendorToken(module, label, rules, profile=profile)

token_module.Pkcs11Token = factory
sys.exit(main(sys.argv[2:]))
"""


def standin_cli(env: dict[str, str], vendor: str, *args: str,
                extra: dict[str, str] | None = None) -> Run:
    """Run ``tui-csr args`` with the ``vendor`` stand-in as the token."""
    return run_python(STANDIN_MAIN, {**env, **(extra or {})}, vendor, *args)


def killed_at(env: dict[str, str], vendor: str, point: str, *args: str) -> str:
    """Run ``tui-csr args`` on the stand-in, SIGKILL it at crash point ``point``; returns what
    it wrote on stderr before the kill."""
    proc = subprocess.Popen([sys.executable, "-c", STANDIN_MAIN, vendor, *args],
                            env={**env, "TUI_CSR_TEST_PAUSE_AT": point},
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(f"tui-csr: paused at {point}"):
            break
    else:
        proc.wait(timeout=60)
        raise AssertionError(f"never reached {point}: {''.join(lines)}")
    os.waitpid(proc.pid, os.WUNTRACED)  # stopped itself (SIGSTOP) at the point
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    return "".join(lines)
