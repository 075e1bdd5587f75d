"""Secrets: the PIN of a token made for this test (a random 12-digit string) is in no file under
the data and config folders, no audit entry, no error message, and no process's arguments, also
while the CLI and the TUI run; the store and its lock and backup are 0600 in a 0700 folder; a
saved CSR never replaces a file without --force.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import GROUP, Cli
from tests.reliability.conftest import PrivateToken, make_private_token
from tui_csr.cli import output as cli_module
from tui_csr.config import current_user
from tui_csr.errors import InputError
from tui_csr.service import CsrService
from tui_csr.store.repo import Store


def _all_cmdlines() -> dict[int, bytes]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return out


def _pin_in_arguments(pin: str) -> list[int]:
    """Processes on this host whose arguments hold ``pin``."""
    return [pid for pid, cmd in _all_cmdlines().items() if pin.encode() in cmd]


def _spawn_on_pty(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec, never return into pytest
        try:
            os.execve(sys.executable, [sys.executable, *argv], env)
        finally:
            os._exit(127)
    return pid, fd


def _read_until(fd: int, needle: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen[-500:]
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _drain(fd: int, pid: int, timeout: float = 60) -> tuple[bytes, int]:
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            with contextlib.suppress(OSError):
                out += os.read(fd, 65536)
        if done:
            return out, os.waitstatus_to_exitcode(status)
        assert time.monotonic() < deadline, out[-500:]


def _files_holding(folder: Path, secret: str) -> list[str]:
    needles = (secret.encode(), secret.encode("utf-16-le"))
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            hits.append(str(path))
    return hits


@pytest.fixture
def secret_token(tmp_path: Path, isolated_env: Path) -> PrivateToken:
    """A private token whose settings come from a config file in the isolated HOME."""
    tok = make_private_token(tmp_path / "secret")
    config = isolated_env / ".config" / "tui-csr"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'module = "{tok.token.module}"\ntoken = "{tok.token.label}"\n'
        f'data_dir = "{tok.data_dir}"\nadmins = ["{current_user()}"]\n'
        f'[module_env]\nSOFTHSM2_CONF = "{tok.token.conf}"\n')
    tok.env = {k: v for k, v in tok.env.items()
               if k not in ("TUI_CSR_MODULE", "TUI_CSR_TOKEN", "TUI_CSR_DATA_DIR")}
    tok.env.update({"HOME": str(isolated_env), "XDG_CONFIG_HOME": str(isolated_env / ".config"),
                    "XDG_DATA_HOME": str(isolated_env / ".local/share")})
    return tok


def test_pin_is_nowhere(secret_token: PrivateToken, tmp_path: Path, isolated_env: Path) -> None:
    tok = secret_token
    pin = tok.token.pin
    wrong = "".join(reversed(pin)) if pin != pin[::-1] else "9" + pin[1:]
    messages: list[str] = []

    def run(*args: str, pin_env: str | None = None, code: int = 0):
        result = tok.cli(*args, pin=pin_env)
        assert result.code == code, (args, result.err)
        messages.append(result.out + result.err)
        return result

    gen = ("generate", "--key-spec", "P-256", "--group", GROUP, "--json")
    first = json.loads(run(*gen, "--cn", "env.example", pin_env=pin).out)
    secret_dir = tmp_path / "secret-pin"
    secret_dir.mkdir(mode=0o700)
    pin_file = secret_dir / "pin"
    pin_file.write_text(pin + "\n")
    pin_file.chmod(0o600)
    second = json.loads(run(*gen, "--cn", "file.example", "--pin-file", str(pin_file)).out)
    for bad in ((*gen, "--cn", "wrong.example"),):
        result = run(*bad, pin_env=wrong, code=1)
        assert "Wrong PIN" in result.err
    result = run(*gen, "--cn", "x", "--pin", pin, code=2)  # refused, and not echoed back
    assert "never a command-line argument" in result.err
    run("delete", first["id"], "--yes", pin_env=pin)
    run("orphans", "list", "--json", pin_env=pin)
    run("show", second["id"], "--text")
    run("list", "--json")

    # The prompt: while the CLI waits for the PIN, and while it works, no process's arguments
    # hold it, and the terminal never shows it (no echo).
    pid, fd = _spawn_on_pty(["-m", "tui_csr", *gen, "--cn", "prompt.example"], tok.env)
    screen = _read_until(fd, b"User PIN for token 'private': ")
    assert _pin_in_arguments(pin) == []
    assert pin.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
    os.write(fd, pin.encode() + b"\n")
    rest, code = _drain(fd, pid)
    assert code == 0, rest
    assert pin.encode() not in screen + rest
    assert _pin_in_arguments(pin) == [] and _pin_in_arguments(wrong) == []

    for text in messages:
        assert pin not in text and wrong not in text, text
    for entry in Store.open(tok.data_dir).list_audit():
        assert pin not in json.dumps(entry.__dict__, default=str)
    assert _files_holding(tok.data_dir, pin) == []
    assert _files_holding(isolated_env, pin) == []  # HOME: config, caches, anything
    assert _files_holding(tok.data_dir, wrong) == []


def test_pin_not_in_arguments_of_the_running_tui(secret_token: PrivateToken) -> None:
    """The TUI on a pseudo-terminal: the login dialog takes the PIN without showing it, and the
    running process's arguments never hold it."""
    tok = secret_token
    pin = tok.token.pin
    env = {**tok.env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    pid, fd = _spawn_on_pty(["-m", "tui_csr"], env)
    try:
        screen = _read_until(fd, b"PIN", timeout=60)
        time.sleep(0.5)  # let the dialog take focus
        assert _pin_in_arguments(pin) == []
        os.write(fd, pin.encode())
        time.sleep(0.3)
        os.write(fd, b"\r")
        # Logged in: the (empty) request list is loaded, which only happens after the login.
        screen += _read_until(fd, b"No pending requests", timeout=60)
        assert _pin_in_arguments(pin) == []
        assert pin.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        assert pin.encode() not in screen
        os.write(fd, b"\x11")  # ctrl+q
        _, code = _drain(fd, pid, timeout=30)
        assert code == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_store_lock_backup_are_0600_in_a_0700_folder(secret_token: PrivateToken) -> None:
    tok = secret_token
    # A fresh data folder made by tui-csr itself (the helper's was made by the test).
    fresh = tok.data_dir.parent / "made-by-tui-csr"
    result = tok.cli("--data-dir", str(fresh), "groups", "add", "Ops")
    assert result.code == 0, result.err
    result = tok.cli("--data-dir", str(fresh), "groups", "add", "Ops2")
    assert result.code == 0, result.err
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    names = sorted(p.name for p in fresh.iterdir())
    assert names == ["tui-csr.json", "tui-csr.json.bak", "tui-csr.json.lock"], names
    for name in names:
        assert stat.S_IMODE((fresh / name).stat().st_mode) == 0o600, name


# -- a saved CSR never replaces a file unasked --------------------------------------------------

async def test_out_without_force_is_refused_before_any_key(cli: Cli, service: CsrService,
                                                            tmp_path: Path) -> None:
    target = tmp_path / "www.csr"
    target.write_text("precious")
    before = await service.token.object_count()
    r = cli("generate", "--key-spec", "P-256", "--cn", "out.example", "--group", GROUP,
            "--out", str(target))
    assert r.code == 2 and r.err == f"error: {target} already exists; use --force to overwrite it.\n"
    assert target.read_text() == "precious"
    assert await service.token.object_count() == before
    made = cli("generate", "--key-spec", "P-256", "--cn", "out.example", "--group", GROUP,
               "--json")
    doc = json.loads(made.out)
    r = cli("show", doc["id"], "--out", str(target))
    assert r.code == 2 and "already exists" in r.err and target.read_text() == "precious"
    r = cli("show", doc["id"], "--out", str(target), "--force")
    assert r.code == 0 and target.read_text() == doc["csr_pem"]
    assert [p.name for p in os.scandir(tmp_path) if p.name.startswith(".")] == []
    assert cli("delete", doc["id"], "--yes").code == 0


def test_out_never_writes_through_a_planted_temp_link(tmp_path: Path) -> None:
    """Regression: the temp file was ``.<name>.tmp-<pid>``, written with open(): in a shared
    folder another user could plant that name as a symlink to one of our files."""
    victim = tmp_path / "victim"
    victim.write_text("mine")
    out = tmp_path / "x.csr"
    (tmp_path / f".x.csr.tmp-{os.getpid()}").symlink_to(victim)
    cli_module.write_out(str(out), b"CSR", force=False)
    assert victim.read_text() == "mine" and out.read_bytes() == b"CSR"


def test_out_appearing_after_the_check_is_not_replaced(tmp_path: Path, monkeypatch) -> None:
    """Regression: between the "already exists?" check and the rename another process may
    create the file; it was replaced without --force."""
    out = tmp_path / "race.csr"
    real_check = cli_module.check_out

    def check_then_someone_writes(path: str, force: bool) -> Path:
        target = real_check(path, force)
        out.write_text("theirs")
        return target

    monkeypatch.setattr(cli_module, "check_out", check_then_someone_writes)
    with pytest.raises(InputError, match="already exists"):
        cli_module.write_out(str(out), b"CSR", force=False)
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir() if "csr" in p.name) == ["race.csr"]


def test_private_token_pins_differ(tmp_path: Path) -> None:
    """Guards the tests above: each private token gets its own random 12-digit PIN."""
    a = make_private_token(tmp_path / "a", label="a")
    b = make_private_token(tmp_path / "b", label="b")
    assert a.token.pin != b.token.pin and len(a.token.pin) == 12 and a.token.pin.isdigit()
