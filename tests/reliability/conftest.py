"""Reliability fixtures: the session token and CLI runner, private SoftHSM tokens for tests that
must break or spy on a token, child processes with a hook, and the fuzz profiles.

Tests that remove a token folder, lock a PIN or need a PIN nobody else uses get a SoftHSM token
of their own. SoftHSM reads its config once per process and the module is loaded once, so such a
token is only ever used from child processes; in-process tests use the session token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, seed, settings

from tests.conftest import SoftHSM
from tests.integration.conftest import GROUP, Cli, cli, data_dir, service  # noqa: F401
from tui_csr.config import current_user
from tui_csr.core.models import Group
from tui_csr.hsm import softhsm
from tui_csr.store.repo import Store

#: Multiplies every example count (RELIABILITY_FUZZ_SCALE=10 for a long local run).
FUZZ_SCALE = float(os.environ.get("RELIABILITY_FUZZ_SCALE", "1"))

_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
          HealthCheck.filter_too_much]

# Two registered profiles, chosen by HYPOTHESIS_PROFILE; CI runs both:
# - "fixed" (the default): a fixed corpus, the same examples on every run, no example database;
# - "random": new examples on each run from a seed that every failure prints (set HYPOTHESIS_SEED
#   to it to replay that run's examples).
settings.register_profile("fixed", derandomize=True, database=None, deadline=None,
                          print_blob=True, suppress_health_check=_QUIET)
settings.register_profile("random", derandomize=False, database=None, deadline=None,
                          print_blob=True, suppress_health_check=_QUIET)
PROFILES = ("fixed", "random")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or "fixed"
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"HYPOTHESIS_PROFILE={PROFILE!r} names no registered profile; "
                            f"choose one of {', '.join(PROFILES)}.")
#: The fuzz profile in use.
FUZZ = settings.get_profile(PROFILE)
#: The random profile's seed (printed with every failure of a fuzz test).
SEED = int(os.environ.get("HYPOTHESIS_SEED") or secrets.randbits(32)) if PROFILE == "random" else None


def examples(n: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The fuzz profile with ``n`` examples (scaled by RELIABILITY_FUZZ_SCALE), and under the
    random profile its seed, as one decorator (put it above ``@given``)."""
    chosen = settings(FUZZ, max_examples=max(1, int(n * FUZZ_SCALE)))

    def apply(test: Callable[..., Any]) -> Callable[..., Any]:
        test = chosen(test)
        return seed(SEED)(test) if SEED is not None else test

    return apply


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001 - pytest hook signature
    outcome = yield
    report = outcome.get_result()
    if SEED is not None and report.failed and getattr(item.obj, "is_hypothesis_test", False):
        report.sections.append(("hypothesis seed", f"HYPOTHESIS_PROFILE=random "
                                                   f"HYPOTHESIS_SEED={SEED} replays this run"))


@dataclass
class Run:
    """A finished child process."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The single ``error:`` line (asserts there is exactly one and no traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert "Traceback" not in self.err, self.err
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, self.err
        return errors[0]


#: Child processes run at a lower priority: the stress tests start several at once, and the
#: other xdist worker may be running a timing test (tests/integration/test_event_loop.py).
NICE = ["nice", "-n", "10"] if shutil.which("nice") else []


def run_python(code: str, env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    """Run ``python -c code args`` with ``env``."""
    proc = subprocess.run([*NICE, sys.executable, "-c", code, *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    """Run ``python -m tui_csr args`` with exactly ``env``."""
    proc = subprocess.run([*NICE, sys.executable, "-m", "tui_csr", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


#: Child-process preamble: run tui-csr's CLI in this process after a test hook is installed.
CLI_MAIN = "import sys\nfrom tui_csr.cli import main\n"


@dataclass
class PrivateToken:
    """A SoftHSM token made for one test (never loaded in the pytest process)."""

    token: SoftHSM
    folder: Path  # holds softhsm2.conf and tokens/
    data_dir: Path
    env: dict[str, str]

    @property
    def tokens_dir(self) -> Path:
        """SoftHSM's token folder (remove it to make the token disappear)."""
        return self.folder / "tokens"

    def cli(self, *args: str, pin: str | None = None, timeout: float = 120) -> Run:
        """The CLI on this token; ``pin`` goes into TUI_CSR_PIN (never an argument)."""
        env = dict(self.env)
        if pin is not None:
            env["TUI_CSR_PIN"] = pin
        return run_cli(env, *args, timeout=timeout)

    def python(self, code: str, *args: str, pin: str | None = None,
               timeout: float = 120) -> Run:
        """``python -c code`` on this token."""
        env = dict(self.env)
        if pin is not None:
            env["TUI_CSR_PIN"] = pin
        return run_python(code, env, *args, timeout=timeout)


def base_env() -> dict[str, str]:
    """The test process's environment minus every TUI_CSR_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TUI_CSR_")}


def make_private_token(folder: Path, label: str = "private", pin: str | None = None) -> PrivateToken:
    """Initialise a SoftHSM token in ``folder`` and a data folder holding group ``Web``."""
    pin = pin or "".join(secrets.choice("0123456789") for _ in range(12))
    so_pin = "".join(secrets.choice("0123456789") for _ in range(12))
    conf = softhsm.write_conf(folder / "softhsm")
    softhsm.init_token(conf, label, pin, so_pin)
    data = folder / "data"
    Store.open(data).add_group(Group(GROUP, created_by=current_user()))
    env = base_env()
    env.update({"SOFTHSM2_CONF": str(conf), "TUI_CSR_MODULE": softhsm.find_softhsm_module(),
                "TUI_CSR_TOKEN": label, "TUI_CSR_DATA_DIR": str(data),
                "TUI_CSR_ADMINS": current_user()})
    return PrivateToken(SoftHSM(softhsm.find_softhsm_module(), conf, label, pin, so_pin),
                        folder / "softhsm", data, env)


@pytest.fixture
def private_token(tmp_path: Path) -> PrivateToken:
    """A SoftHSM token of this test's own, with a random 12-digit user PIN."""
    return make_private_token(tmp_path / "own")


def elf_library() -> Path:
    """An ELF shared library that is no PKCS#11 module (no C_GetFunctionList), on every
    architecture tui-csr runs on: python-pkcs11's own compiled extension."""
    import pkcs11._pkcs11

    return Path(pkcs11._pkcs11.__file__)


def json_out(run: Run):
    """Parse a successful run's JSON output."""
    assert run.code == 0, run.err
    return json.loads(run.out)
