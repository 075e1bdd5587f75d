"""What every figure shares: throwaway SoftHSM tokens, timing helpers and the result rows.

Each figure runs in its own child process (``python -m bench.<figure> WORKDIR``) so that no figure
inherits another's loaded PKCS#11 module, heap or open token, and prints its rows as JSON on the
last line of stdout. Tokens live under the bench's temp folder and die with it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Quick mode (``make bench-smoke``, ``python -m bench --smoke``): a few runs of every figure,
#: to prove each one still runs against the public interfaces; its numbers are not results.
SMOKE = os.environ.get("TUI_CSR_BENCH_SMOKE") == "1"


def runs(full: int, smoke: int = 2) -> int:
    """``full``, or at most ``smoke`` in quick mode."""
    return min(full, smoke) if SMOKE else full


PIN = "246810"
SO_PIN = "13579135"
GROUP = "Bench"
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TUI_CSR = str(BIN / "tui-csr") if (BIN / "tui-csr").exists() else None


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    name: str
    ours: float
    unit: str
    target: str
    met: bool | None
    ref: float | None = None
    ref_name: str = ""
    ratio: float | None = None
    runs: int = 0
    note: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)


def ratio_row(figure: str, name: str, ours: Sequence[float], ref: Sequence[float], ref_name: str,
              limit: float, unit: str = "ms", note: str = "", scale: float = 1000.0) -> Row:
    """A row comparing two series by the ratio of their medians (target: ratio <= limit)."""
    mo, mr = statistics.median(ours), statistics.median(ref)
    ratio = mo / mr
    return Row(figure, name, round(mo * scale, 2), unit, f"<= {limit:g}x", ratio <= limit,
               round(mr * scale, 2), ref_name, round(ratio, 3), min(len(ours), len(ref)), note)


def value_row(figure: str, name: str, values: Sequence[float], limit: float, unit: str = "ms",
              note: str = "", scale: float = 1000.0) -> Row:
    """A row with an absolute target (median <= limit, both in ``unit``)."""
    value = statistics.median(values) * scale
    return Row(figure, name, round(value, 2), unit, f"<= {limit:g} {unit}", value <= limit,
               runs=len(values), note=note)


def emit(rows: Sequence[Row]) -> None:
    """Print the rows as the child's result (the last stdout line)."""
    sys.stdout.flush()
    print(json.dumps([asdict(r) for r in rows]))


@dataclass(frozen=True)
class Token:
    """A throwaway SoftHSM token with its own config, a data folder and the CLI environment."""

    label: str
    folder: Path
    conf: Path
    module: str
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a ``tui-csr`` or peer-tool child on this token."""
        # PYTHONDONTWRITEBYTECODE would make every tui-csr start compile its sources again:
        # measure what an installed tool does, with its bytecode cache.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TUI_CSR_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"SOFTHSM2_CONF": str(self.conf), "TUI_CSR_MODULE": self.module,
                    "TUI_CSR_TOKEN": self.label, "TUI_CSR_DATA_DIR": str(self.data_dir),
                    "TUI_CSR_PIN": PIN, "TUI_CSR_ADMINS": _user(),
                    "HOME": str(self.folder / "home"),
                    "XDG_CONFIG_HOME": str(self.folder / "home" / ".config")})
        return env

    def settings(self):  # -> tui_csr.config.Settings
        """Settings for an in-process service on this token."""
        from tui_csr.config import Settings

        return Settings(module=self.module, token=self.label, data_dir=self.data_dir,
                        module_env={"SOFTHSM2_CONF": str(self.conf)}, admins=[_user()])


def _user() -> str:
    from tui_csr.config import current_user

    return current_user()


def new_token(workdir: Path, label: str) -> Token:
    """Initialise a fresh token ``label`` in its own SoftHSM folder, and a data folder holding
    the group ``Bench``."""
    from tui_csr.core.models import Group
    from tui_csr.hsm import softhsm
    from tui_csr.store.repo import Store

    folder = workdir / label
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "home").mkdir(parents=True)
    conf = softhsm.write_conf(folder / "softhsm")
    softhsm.init_token(conf, label, PIN, SO_PIN)
    data_dir = folder / "data"
    Store.open(data_dir).add_group(Group(GROUP, policy="bench", created_by=_user()))
    return Token(label, folder, conf, softhsm.find_softhsm_module(), data_dir)


def timed(fn: Callable[[], object]) -> float:
    """Wall time of ``fn()`` in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: Sequence[str], env: dict[str, str], *, stdin: str | None = None,
        timeout: float = 120) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command; its wall time and result. A failure is fatal for the figure."""
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-600:]}")
    return took, proc


def tui_csr_cmd(*args: str) -> list[str]:
    """The ``tui-csr`` command as an admin types it (the console script), else ``python -m``."""
    if TUI_CSR:
        return [TUI_CSR, *args]
    return [sys.executable, "-m", "tui_csr", *args]


def workdir_from_argv() -> Path:
    """The bench's temp folder, passed to each figure's child as its only argument."""
    return Path(sys.argv[1])
