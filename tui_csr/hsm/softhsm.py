"""SoftHSM2 helpers: a private token folder for the demo, the tests, the benchmarks and the
screenshots. SoftHSM is a software token: good for trying tui-csr out, not for real keys."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tui_csr.errors import ConfigError

#: Where distributions put the module.
SOFTHSM_MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def find_softhsm_module() -> str:
    """The SoftHSM2 module path, or ConfigError naming the package to install."""
    for path in SOFTHSM_MODULE_PATHS:
        if os.path.exists(path):
            return path
    raise ConfigError("SoftHSM2 is not installed (no libsofthsm2.so); install the Debian "
                      "package softhsm2.", field="module")


def write_conf(folder: Path) -> Path:
    """A SoftHSM2 config whose tokens live in ``folder/tokens`` (mode 0700)."""
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    conf = folder / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
            "log.level = ERROR\nslots.removable = false\n", encoding="utf-8")
    return conf


def token_labels(conf: Path) -> list[str]:
    """Labels of the initialised tokens under ``conf``."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise ConfigError("softhsm2-util is not installed; install the Debian package softhsm2.",
                          field="module")
    out = subprocess.run([util, "--show-slots"], env={**os.environ, "SOFTHSM2_CONF": str(conf)},
                         capture_output=True, text=True, check=False).stdout
    labels = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Label:"):
            label = line.split(":", 1)[1].strip()
            if label:
                labels.append(label)
    return labels


def init_token(conf: Path, label: str, pin: str, so_pin: str) -> None:
    """Initialise a free slot as token ``label``.

    softhsm2-util only takes the PINs as arguments. That is acceptable for demo and test tokens
    whose PINs are public; tui-csr itself never takes a PIN as an argument.
    """
    util = shutil.which("softhsm2-util")
    if util is None:
        raise ConfigError("softhsm2-util is not installed; install the Debian package softhsm2.",
                          field="module")
    proc = subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)}, capture_output=True, text=True,
        check=False)
    if proc.returncode != 0:
        raise ConfigError(f"softhsm2-util could not initialise token '{label}': "
                          f"{proc.stderr.strip() or proc.stdout.strip()}.", field="token")
