"""A PKCS#11 library's own writes to fd 2 never land on the TUI's screen (ui/library_output.py).

tpm2-pkcs11 prints ``ERROR:`` lines to fd 2 with no switch to silence them; OpenSC's pkcs11-spy
without PKCS11SPY_OUTPUT logs every call there. Textual paints on ``sys.__stderr__`` (fd 2 too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import make_private_token
from tests.reliability.test_shutdown import spy_module

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import ctypes, json, os, sys
from tui_csr.ui.library_output import library_output

libc = ctypes.CDLL(None)
seen = []
with library_output(seen.append) as said:
    libc.write(2, b"ERROR: from C, fd 2\n", 20)
    libc.write(2, b"no newline at the end", 21)
    sys.__stderr__.write("painted on the terminal\n")
    sys.__stderr__.flush()
    inside_fd2_is_terminal = os.path.samestat(os.fstat(2), os.fstat(sys.__stderr__.fileno()))
libc.write(2, b"after the block\n", 16)
print(json.dumps({"seen": seen, "kept": list(said.lines), "count": said.count,
                  "inside_fd2_is_terminal": inside_fd2_is_terminal}))
"""


def test_fd2_goes_to_the_callback_and_python_stderr_stays_on_the_terminal() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["seen"] == ["ERROR: from C, fd 2", "no newline at the end"]
    assert out["kept"] == out["seen"] and out["count"] == 2
    assert out["inside_fd2_is_terminal"] is False
    # The terminal (the child's real stderr) got Textual's writes and, afterwards, fd 2 again.
    assert proc.stderr == "painted on the terminal\nafter the block\n"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_module_logging_to_stderr_does_not_paint_over_the_ui(tmp_path: Path) -> None:
    """The real app in tmux at 80x24 on a SoftHSM token behind pkcs11-spy, which logs each
    PKCS#11 call to fd 2: the screen shows the UI and a notice, never the spy's lines; after
    quitting, the lines are printed on the restored terminal."""
    tok = make_private_token(tmp_path / "own")
    env = dict(tok.env, PKCS11SPY=tok.env["TUI_CSR_MODULE"], TUI_CSR_MODULE=spy_module(),
               TUI_CSR_PIN=tok.token.pin, TERM="xterm-256color")
    env.pop("PKCS11SPY_OUTPUT", None)
    socket = str(tmp_path / "tmux.sock")
    command = f"cd {ROOT} && {sys.executable} -m tui_csr ui; echo EXIT=$?; sleep 30"
    _tmux("-S", socket, "new-session", "-d", "-x", "80", "-y", "24", "-s", "t",
          *[f"-e{k}={v}" for k, v in env.items()], command)
    try:
        screen = ""
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            screen = _tmux("-S", socket, "capture-pane", "-p", "-t", "t")
            if "Requests" in screen and "library wrote" in screen:
                break
            time.sleep(0.3)
        assert "Requests" in screen, screen
        assert "library wrote" in screen, screen
        # The spy's own lines (the call number and name, its [in]/[out] argument dumps, the
        # "Returned:" lines) never appear as such on the screen: only quoted inside the notice.
        raw = [line for line in screen.splitlines()
               if line.lstrip().startswith(("[in]", "[out]", "Returned:", "0: C_", "1: C_"))]
        assert raw == [], screen
        _tmux("-S", socket, "send-keys", "-t", "t", "C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = _tmux("-S", socket, "capture-pane", "-p", "-S", "-200", "-t", "t")
            if "EXIT=" in screen:
                break
            time.sleep(0.3)
        assert "EXIT=0" in screen, screen
        assert "The PKCS#11 library wrote while the UI ran:" in screen, screen
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, check=False)
        if os.path.exists(socket):
            os.unlink(socket)
