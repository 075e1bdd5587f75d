"""pytest fixtures for the real back ends, and a CLI runner pointed at one of them.

Import the fixtures into a test module (``from tests.backends.fixtures import ...``). The shared
tokens are session-scoped (one swtpm chain, one p11-kit server per xdist worker that needs it);
tests that kill a daemon use ``own_tpm2_token`` / ``own_p11kit_token``, started for that test
alone. Mark a module that uses the shared ones with ``xdist_group`` so one worker runs it.

A back end whose packages are missing has them installed by ``scripts/system-deps.sh`` (which
``make test`` runs first anyway); it is skipped, with the reason, only when they cannot be
installed, and under CI (``CI`` set) it fails instead, so it cannot go quietly untested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.backends import p11kit, tpm2
from tests.backends.procs import BackendError
from tests.backends.token import RealToken
from tui_csr.config import current_user
from tui_csr.core.models import Group
from tui_csr.store.repo import Store

GROUP = "Web"
BACKENDS: dict[str, ModuleType] = {"tpm2": tpm2, "p11kit": p11kit}


_SYSTEM_DEPS = Path(__file__).resolve().parents[2] / "scripts" / "system-deps.sh"


def _install(packages: tuple[str, ...]) -> str:
    """Run scripts/system-deps.sh for ``packages`` (one process at a time: xdist workers share
    dpkg's lock); what it said when it could not install them."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / "tui-csr-system-deps.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([str(_SYSTEM_DEPS), *packages], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900, check=False)
    return "" if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())


def require(kind: str) -> None:
    """Make sure back end ``kind`` is installed: install it, or skip (fail under CI) saying why."""
    backend = BACKENDS[kind]
    if backend.missing():
        said = _install(backend.PACKAGES)  # `make test` has done this already; pytest alone not
        gone = backend.missing()
        if gone:
            reason = (f"{kind} back end not installed ({', '.join(gone)}) and "
                      f"scripts/system-deps.sh could not install it: {said or 'no reason given'}"
                      f" (Debian: {' '.join(backend.PACKAGES)})")
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)


def _start(kind: str, folder: Path, label: str) -> RealToken:
    require(kind)
    backend = BACKENDS[kind]
    try:
        return backend.start(folder, label=label)
    except BackendError as exc:
        pytest.fail(f"{kind} back end did not start: {exc}")


@pytest.fixture(scope="session")
def tpm2_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealToken]:
    """The session's tpm2-pkcs11 token ``tpm`` (swtpm + tpm2-abrmd)."""
    token = _start("tpm2", tmp_path_factory.mktemp("tpm2"), "tpm")
    yield token
    tpm2.stop(token)


@pytest.fixture(scope="session")
def p11kit_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealToken]:
    """The session's SoftHSM token ``fwd`` behind ``p11-kit server``, via p11-kit-client.so."""
    token = _start("p11kit", tmp_path_factory.mktemp("p11kit"), "fwd")
    yield token
    p11kit.stop(token)


@pytest.fixture
def own_tpm2_token(tmp_path: Path) -> Iterator[RealToken]:
    """A tpm2-pkcs11 token of this test's own (for tests that stop or kill its daemons)."""
    token = _start("tpm2", tmp_path / "own-tpm2", "owntpm")
    yield token
    tpm2.stop(token)


@pytest.fixture
def own_p11kit_token(tmp_path: Path) -> Iterator[RealToken]:
    """A p11-kit-forwarded SoftHSM token of this test's own (for tests that kill the server)."""
    token = _start("p11kit", tmp_path / "own-p11kit", "ownfwd")
    yield token
    p11kit.stop(token)


@dataclass
class Run:
    """A finished CLI run."""

    code: int
    out: str
    err: str

    def json(self):
        """The parsed JSON output of a successful run."""
        assert self.code == 0, self.err
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        """The one ``error:`` line; asserts there is exactly one and no traceback of any kind."""
        assert "Traceback" not in self.err and "Exception ignored in" not in self.err, self.err
        errors = [line for line in self.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, self.err
        return errors[0]


@dataclass
class RealCli:
    """``python -m tui_csr`` against a real back end's token and a data folder of this test.

    tpm2 is configured the way an admin would: a config file naming the module, the token and
    the module's variables in ``[module_env]`` (the CLI's own environment does not carry them).
    The p11-kit client gets TUI_CSR_* variables and P11_KIT_SERVER_ADDRESS in the environment.
    """

    token: RealToken
    data_dir: Path
    config: Path

    def env(self, pin: str | None) -> dict[str, str]:
        """The child's environment (``pin`` into TUI_CSR_PIN, never an argument)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TUI_CSR_", "TPM2", "P11_KIT_", "DBUS_SESSION"))}
        env.update({"TUI_CSR_DATA_DIR": str(self.data_dir), "TUI_CSR_ADMINS": current_user(),
                    "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        if self.token.kind == "tpm2":
            env["TUI_CSR_CONFIG"] = str(self.config)
        else:
            env.update(self.token.module_env)
            env.update({"TUI_CSR_MODULE": self.token.module, "TUI_CSR_TOKEN": self.token.label})
        if pin is not None:
            env["TUI_CSR_PIN"] = pin
        return env

    def __call__(self, *args: str, pin: str | None = "default", timeout: float = 120) -> Run:
        env = self.env(self.token.pin if pin == "default" else pin)
        proc = subprocess.run([sys.executable, "-m", "tui_csr", *args], env=env, text=True,
                              capture_output=True, timeout=timeout, check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, code: str, *args: str, pin: str | None = "default") -> subprocess.Popen:
        """``python -c code args`` in this CLI's environment, running (for kill tests)."""
        env = self.env(self.token.pin if pin == "default" else pin)
        return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def make_cli(token: RealToken, folder: Path) -> RealCli:
    """A CLI runner on ``token`` with a fresh data folder holding group ``Web``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    Store.open(data).add_group(Group(GROUP, policy="web-policy", created_by=current_user()))
    config = folder / "config.toml"
    lines = [f"module = {json.dumps(token.module)}", f"token = {json.dumps(token.label)}",
             "", "[module_env]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in token.module_env.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return RealCli(token, data, config)
