"""Integration fixtures: a logged-in service on the session's SoftHSM2 token, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SoftHSM
from tui_csr.config import Settings, current_user
from tui_csr.core.models import Group
from tui_csr.service import CsrService
from tui_csr.store.repo import Store

GROUP = "Web"


def make_settings(token: SoftHSM, data_dir: Path, **kw) -> Settings:
    """Settings on the session token with ``data_dir`` as the data folder."""
    return Settings(module=token.module, token=token.label, data_dir=data_dir,
                    module_env={"SOFTHSM2_CONF": str(token.conf)}, admins=[current_user()], **kw)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data folder holding one group, ``Web``."""
    path = tmp_path / "data"
    Store.open(path).add_group(Group(GROUP, policy="web-policy", created_by=current_user()))
    return path


@pytest.fixture
async def service(token: SoftHSM, data_dir: Path) -> AsyncIterator[CsrService]:
    """A logged-in service on the session token."""
    svc = CsrService.create(make_settings(token, data_dir))
    await svc.open_token()
    await svc.login(token.pin)
    yield svc


@dataclass
class Result:
    """A finished CLI run."""

    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs ``python -m tui_csr`` in a subprocess against the session token."""

    token: SoftHSM
    data_dir: Path
    env: dict[str, str]

    def __call__(self, *args: str, pin: str | None = "default", stdin: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        env = dict(self.env)
        if pin == "default":
            env["TUI_CSR_PIN"] = self.token.pin
        elif pin is not None:
            env["TUI_CSR_PIN"] = pin
        env.update(extra_env or {})
        proc = subprocess.run([sys.executable, "-m", "tui_csr", *args], env=env, text=True,
                              input=stdin, capture_output=True, timeout=timeout, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(token: SoftHSM, data_dir: Path, isolated_env: Path) -> Cli:
    """A CLI runner whose environment names the session token and this test's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_CSR_")}
    env.update({"TUI_CSR_MODULE": token.module, "TUI_CSR_TOKEN": token.label,
                "TUI_CSR_DATA_DIR": str(data_dir), "SOFTHSM2_CONF": str(token.conf),
                "TUI_CSR_ADMINS": current_user()})
    return Cli(token, data_dir, env)
