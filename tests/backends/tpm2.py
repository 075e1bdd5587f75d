"""tpm2-pkcs11 over a software TPM: swtpm on loopback TCP, tpm2-abrmd on a private D-Bus bus.

The chain (FIELD-NOTES "More real PKCS#11 implementations"): ``swtpm socket`` listens on two free
127.0.0.1 ports; a ``dbus-daemon --session`` listens on a unix socket in the back end's folder;
``tpm2-abrmd --session`` (the resource manager tpm2-pkcs11 needs) connects to swtpm and registers
on that bus; ``tpm2_ptool`` makes the PKCS#11 store and a token. Processes that use the module
get TPM2_PKCS11_TCTI, TPM2TOOLS_TCTI, TPM2_PKCS11_STORE and DBUS_SESSION_BUS_ADDRESS.

The TPM's dictionary-attack protection is relaxed on this throwaway TPM (swtpm's default locks all
authorisation for 1000 s after 3 wrong PINs), so a wrong-PIN test cannot lock the shared token.
Start-up takes about 1 s (tpm2_ptool is most of it).

Run by hand: ``python -m tests.backends.tpm2 FOLDER`` starts one and waits for Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from tests.backends.procs import REGISTRY, BackendError, free_port_pair, run_step, wait_for
from tests.backends.token import RealToken, find_module

MODULE_NAME = "libtpm2_pkcs11.so"
COMMANDS = ("swtpm", "dbus-daemon", "tpm2-abrmd", "tpm2_ptool", "tpm2_getcap",
            "tpm2_dictionarylockout")
#: Debian packages that provide the chain (scripts/system-deps.sh installs them).
PACKAGES = ("swtpm", "swtpm-tools", "libtpm2-pkcs11-1", "libtpm2-pkcs11-tools", "tpm2-tools",
            "tpm2-abrmd", "libtss2-tcti-tabrmd0", "dbus")


def missing() -> list[str]:
    """Commands or the module this back end needs that are not installed."""
    gone = [c for c in COMMANDS if shutil.which(c) is None]
    if find_module(MODULE_NAME) is None:
        gone.append(MODULE_NAME)
    if not any(Path(d).glob("libtss2-tcti-tabrmd.so*") for d in
               ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                "/usr/lib")):
        gone.append("libtss2-tcti-tabrmd.so")
    return gone


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start(folder: Path, label: str = "tpm", pin: str = "246810",
          so_pin: str = "13579135") -> RealToken:
    """Start swtpm, a private D-Bus bus and tpm2-abrmd; make token ``label``. Stop with
    :func:`stop` (the registry's atexit hook stops it too)."""
    module = find_module(MODULE_NAME)
    if module is None or missing():
        raise BackendError(f"tpm2-pkcs11 back end: not installed: {', '.join(missing())}.")
    folder.mkdir(parents=True, exist_ok=True)
    state, store = folder / "state", folder / "store"
    state.mkdir(exist_ok=True)
    store.mkdir(exist_ok=True)
    bus = folder / "dbus.sock"
    bus_address = f"unix:path={bus}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TUI_CSR_", "DBUS_", "TPM2"))}
    token = RealToken("tpm2", module, label, pin, so_pin, {
        "DBUS_SESSION_BUS_ADDRESS": bus_address,
        "TPM2TOOLS_TCTI": "tabrmd:bus_type=session",
        "TPM2_PKCS11_TCTI": "tabrmd:bus_type=session",
        "TPM2_PKCS11_STORE": str(store),
    }, folder)
    try:
        port = free_port_pair()
        token.daemons["swtpm"] = swtpm = REGISTRY.start(
            "swtpm", ["swtpm", "socket", "--tpmstate", f"dir={state}", "--tpm2",
                      "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                      "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                      "--flags", "not-need-init,startup-clear"],
            base, folder / "swtpm.log")
        wait_for("swtpm to listen", lambda: _accepts(port), swtpm)
        token.daemons["dbus"] = dbus = REGISTRY.start(
            "dbus-daemon", ["dbus-daemon", "--session", "--nofork", "--nopidfile",
                            f"--address={bus_address}"],
            base, folder / "dbus.log")
        wait_for("the D-Bus socket", bus.exists, dbus)
        abrmd = ["tpm2-abrmd", "--session", f"--tcti=swtpm:host=127.0.0.1,port={port}"]
        if os.geteuid() == 0:
            abrmd.append("--allow-root")
        env = {**base, **token.module_env}
        token.daemons["abrmd"] = rm = REGISTRY.start("tpm2-abrmd", abrmd, env,
                                                     folder / "abrmd.log")
        wait_for("tpm2-abrmd on the bus", lambda: _tpm_answers(env), rm)
        run_step("tpm2_dictionarylockout", ["tpm2_dictionarylockout", "--setup-parameters",
                                            "--max-tries=1000", "--recovery-time=1",
                                            "--lockout-recovery-time=1"], env)
        run_step("tpm2_ptool init", ["tpm2_ptool", "init"], env)
        # tpm2_ptool takes the PINs as arguments only: acceptable for a throwaway test token.
        run_step("tpm2_ptool addtoken", ["tpm2_ptool", "addtoken", "--pid=1", f"--label={label}",
                                         f"--userpin={pin}", f"--sopin={so_pin}"], env)
    except BaseException:
        stop(token)
        raise
    return token


def _tpm_answers(env: dict[str, str]) -> bool:
    return subprocess.run(["tpm2_getcap", "properties-fixed"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                          check=False).returncode == 0


def stop(token: RealToken) -> None:
    """Stop the back end's daemons (resource manager, bus, TPM)."""
    for name in ("abrmd", "dbus", "swtpm"):
        daemon = token.daemons.pop(name, None)
        if daemon is not None:
            REGISTRY.stop(daemon)


if __name__ == "__main__":  # pragma: no cover - a manual helper
    from tests.backends.token import serve_by_hand

    serve_by_hand(start, stop)
