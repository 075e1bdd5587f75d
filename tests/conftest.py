"""Shared fixtures: an isolated environment per test and one real SoftHSM2 token per session.

SoftHSM reads SOFTHSM2_CONF once, when python-pkcs11 first initialises the module, and the module
is loaded once per process. So the token folder is made before anything loads the module, and
every in-process test shares that token; tests that need a fresh login state (wrong PIN, locked
PIN) run the CLI in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui_csr.hsm import softhsm

#: Real back ends besides SoftHSM (tpm2-pkcs11, p11-kit forwarding): tpm2_token, p11kit_token,
#: own_tpm2_token, own_p11kit_token; each starts its daemons only when a test asks for it.
pytest_plugins = ["tests.backends.fixtures", "tests.backends.postgres"]  # + postgres_server

PIN = "246810"
SO_PIN = "13579135"
LABEL = "test"
OTHER_LABEL = "other"

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="tui-csr-softhsm-"))


@dataclass(frozen=True)
class SoftHSM:
    """The session's SoftHSM2 token."""

    module: str
    conf: Path
    label: str
    pin: str
    so_pin: str


def _make_token() -> SoftHSM:
    conf = softhsm.write_conf(_SESSION_DIR / "softhsm")
    for label in (LABEL, OTHER_LABEL):
        softhsm.init_token(conf, label, PIN, SO_PIN)
    return SoftHSM(softhsm.find_softhsm_module(), conf, LABEL, PIN, SO_PIN)


_TOKEN: SoftHSM | None = None


def session_token() -> SoftHSM:
    """Create the session token on first use (before the module is loaded in this process)."""
    global _TOKEN
    if _TOKEN is None:
        _TOKEN = _make_token()
        os.environ["SOFTHSM2_CONF"] = str(_TOKEN.conf)
    return _TOKEN


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def token() -> SoftHSM:
    """The session's real SoftHSM2 token."""
    return session_token()


_KEEP_ENV = {"PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
             "SOFTHSM2_CONF", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
             "PYTEST_CURRENT_TEST", "CI", "COLUMNS", "LINES", "HYPOTHESIS_PROFILE"}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's config, data or PIN: HOME and XDG point into tmp_path and
    every TUI_CSR_* variable is cleared."""
    for key in list(os.environ):
        if key.startswith("TUI_CSR_") or (key.startswith("XDG_") and key not in _KEEP_ENV):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    return home
