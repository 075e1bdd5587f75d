"""`tui-csr --version`, `python -m tui_csr` and the demo set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tui_csr import __version__


def test_version_both_ways() -> None:
    for cmd in ([sys.executable, "-m", "tui_csr", "--version"],
                [str(Path(sys.executable).with_name("tui-csr")), "--version"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"tui-csr {__version__}"


def test_bad_flag_is_exit_2_with_error_line() -> None:
    r = subprocess.run([sys.executable, "-m", "tui_csr", "generate", "--nope"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_demo_setup_is_made_once_and_reused(tmp_path: Path) -> None:
    """The demo token lives in the data folder, is reused, and has a first group."""
    script = (
        "from tui_csr.demo import setup_demo\n"
        "from tui_csr.store.repo import Store\n"
        "s, created = setup_demo()\n"
        "print(created, [g.name for g in Store.open(s.data_dir).list_groups()], s.data_dir)\n")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    env.pop("SOFTHSM2_CONF", None)
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    assert first[0] == "True" and second[0] == "False"
    assert first[1] == "['Demo']" == second[1]
    assert first[2].startswith(str(tmp_path / "share" / "tui-csr" / "demo"))
