"""``tui-csr completion``: the script is generated from the parser and really completes in bash
(sub-commands, options, key specs, and groups and labels read from the store at that moment)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TUI_CSR_DATA_DIR"] = str(data_dir)
    return env


def _tui(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tui-csr"), *args], env=_env(data_dir), text=True,
                          capture_output=True, timeout=60)


def _complete(script: Path, data_dir: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``""`` = a new word)."""
    quoted = " ".join(f"'{w}'" for w in ("tui-csr", *words))
    code = (f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; "
            f"COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _shtab_tui_csr; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run(["bash", "-c", code], env=_env(data_dir), text=True,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.fixture
def bash_script(tmp_path: Path) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    proc = _tui(tmp_path / "data", "completion", "bash")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "tui-csr.bash"
    path.write_text(proc.stdout)
    return path


def test_bash_completes_commands_options_and_store_values(bash_script: Path,
                                                          tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _tui(data, "groups", "add", "Web-servers").returncode == 0
    assert _tui(data, "groups", "add", "Code-signing").returncode == 0
    assert "generate" in _complete(bash_script, data, "gen")
    assert set(_complete(bash_script, data, "generate", "--key-s")) == {"--key-spec"}
    assert {"P-256", "P-384"} <= set(_complete(bash_script, data, "generate", "--key-spec", "P"))
    assert set(_complete(bash_script, data, "generate", "--group", "")) == {"Web-servers",
                                                                           "Code-signing"}
    assert _complete(bash_script, data, "groups", "remove", "Co") == ["Code-signing"]


def test_candidates_from_an_unreadable_store_are_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "tui-csr.json").write_text("{not json")
    proc = _tui(data, "completion", "--candidates", "groups")
    assert proc.returncode == 0 and proc.stdout == ""


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_script_naming_every_command(shell: str, tmp_path: Path) -> None:
    proc = _tui(tmp_path / "data", "completion", shell)
    assert proc.returncode == 0, proc.stderr
    for command in ("generate", "import-cert", "orphans", "groups"):
        assert command in proc.stdout


def test_no_shell_is_an_input_error(tmp_path: Path) -> None:
    proc = _tui(tmp_path / "data", "completion")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
