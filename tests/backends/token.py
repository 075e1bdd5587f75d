"""What a test needs to reach a real token served by a back end, and the per-class object count.

Objects are listed with OpenSC's ``pkcs11-tool`` in a child process (never by loading the module
into the pytest process: a module keeps its connection to the daemon, and the tests stop and kill
daemons under it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.backends.procs import Daemon

#: pkcs11-tool's headings for each object class.
_CLASS_OF = {"Private Key Object": "private", "Public Key Object": "public",
             "Data object": "data", "Certificate Object": "certificate",
             "Secret Key Object": "secret"}
CLASSES = ("private", "public", "data", "certificate", "secret")


@dataclass(frozen=True)
class TokenObject:
    """One object on the token as pkcs11-tool lists it."""

    cls: str
    label: str
    key_id: str  # hex, lower case; "" when the object has no CKA_ID


@dataclass
class RealToken:
    """A token served by a running back end: module, label, PINs and the module's environment."""

    kind: str  # "tpm2" or "p11kit"
    module: str
    label: str
    pin: str
    so_pin: str
    module_env: dict[str, str]
    folder: Path
    daemons: dict[str, Daemon] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """This process's environment without TUI_CSR_* plus the module's variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_CSR_")}
        env.update(self.module_env)
        return env

    def objects(self) -> list[TokenObject]:
        """Every object on the token (logged in, so private objects are listed too)."""
        tool = shutil.which("pkcs11-tool")
        assert tool, "pkcs11-tool (Debian opensc) is not installed"
        # The PIN goes on pkcs11-tool's command line: a throwaway test token's public PIN.
        proc = subprocess.run(
            [tool, "--module", self.module, "--token-label", self.label, "--login",
             "--pin", self.pin, "--list-objects"],
            env=self.env(), capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"pkcs11-tool --list-objects failed: {proc.stderr}"
        return parse_objects(proc.stdout)

    def token_infos(self) -> list[dict[str, str]]:
        """What ``pkcs11-tool --list-token-slots`` says about each initialised token (an
        independent reader for checking ``tui-csr tokens``): label, manufacturer, model, serial,
        flags."""
        tool = shutil.which("pkcs11-tool")
        assert tool, "pkcs11-tool (Debian opensc) is not installed"
        proc = subprocess.run([tool, "--module", self.module, "--list-token-slots"],
                              env=self.env(), capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        infos: list[dict[str, str]] = []
        for line in proc.stdout.splitlines():
            if line.startswith("Slot "):
                infos.append({})
                continue
            m = re.match(r"\s+(token label|token manufacturer|token model|serial num|"
                         r"token flags)\s*:\s?(.*)$", line)
            if m and infos:
                key = {"token label": "label", "token manufacturer": "manufacturer",
                       "token model": "model", "serial num": "serial",
                       "token flags": "flags"}[m.group(1)]
                infos[-1][key] = m.group(2).rstrip()
        return [i for i in infos if "label" in i]

    def counts(self) -> Counter[str]:
        """How many objects of each class the token holds."""
        return Counter(o.cls for o in self.objects())


def parse_objects(text: str) -> list[TokenObject]:
    """pkcs11-tool ``--list-objects`` output as objects (class, label, id)."""
    found: list[TokenObject] = []
    cls = label = key_id = None
    for line in text.splitlines() + [""]:
        heading = next((c for h, c in _CLASS_OF.items() if line.startswith(h)), None)
        if heading or (line and not line.startswith(" ")) or not line:
            if cls is not None:
                found.append(TokenObject(cls, label or "", key_id or ""))
            cls, label, key_id = heading, None, None
            continue
        if cls is None:
            continue
        m = re.match(r"\s+label:\s*(.*)$", line)
        if m:
            label = m.group(1).strip()
            if len(label) >= 2 and label[0] == label[-1] == "'":  # data objects quote it
                label = label[1:-1]
        m = re.match(r"\s+ID:\s*([0-9a-fA-F]*)\s*$", line)
        if m:
            key_id = m.group(1).lower()
    return found


def find_module(name: str) -> str | None:
    """A PKCS#11 module by file name in the usual multiarch places."""
    for folder in ("/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11",
                   "/usr/lib/pkcs11", "/usr/lib64/pkcs11", "/usr/local/lib/pkcs11"):
        path = Path(folder) / name
        if path.exists():
            return str(path)
    return None


def serve_by_hand(start: Callable[[Path], RealToken], stop: Callable[[RealToken], None]) -> None:
    """``python -m tests.backends.<name> FOLDER``: start the back end in FOLDER, print the
    environment a shell needs to use it, and keep it up until Ctrl-C."""
    import sys
    import time

    tok = start(Path(sys.argv[1]).resolve())
    for key, value in tok.module_env.items():
        print(f"export {key}={value}")
    print(f"# module {tok.module}, token {tok.label}, user PIN {tok.pin}; Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop(tok)
