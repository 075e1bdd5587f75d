"""Orderly shutdown: whatever way a command ends (success, a wrong PIN, an unknown token,
SIGTERM in the middle of a key generation), the process closes its session and finalises the
module on the token thread and exits with a status of its own, never by a signal.

The defect this guards against: a fast failure (a wrong PIN) ended the process while a daemon
thread was still importing ``cryptography`` (Rust); glibc unwound that thread at interpreter
exit, a frame caught the unwind and the process aborted: ``FATAL: exception not rethrown``,
exit -6 (4 of 150 runs under load before the fix, 0 of 150 after).

By hand, the acceptance run (500 runs of each path under load, a few minutes)::

    .venv/bin/python -m tests.reliability.test_shutdown --runs 500
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import GROUP, PrivateToken, make_private_token

#: Runs of each path in the suite (x RELIABILITY_SHUTDOWN_SCALE); the acceptance run is 500.
RUNS = max(1, int(30 * float(os.environ.get("RELIABILITY_SHUTDOWN_SCALE", "1"))))

GENERATE = ["generate", "--key-spec", "P-256", "--cn", "shutdown.example", "--group", GROUP]
PATHS = ("wrong-pin", "unknown-token", "success")


@contextlib.contextmanager
def cpu_load() -> Iterator[None]:
    """One busy-looping process per core for the duration (each stopped by its own pid)."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for proc in burners:
            proc.kill()
        for proc in burners:
            proc.wait()


def run_path(tok: PrivateToken, path: str, n: int) -> subprocess.CompletedProcess[str]:
    """One CLI run of ``path`` (no ``nice``: under load the race windows get wider)."""
    env = dict(tok.env, TUI_CSR_PIN=tok.token.pin)
    argv = [*GENERATE, "--label", f"ok-{n}"] if path == "success" else GENERATE
    if path == "wrong-pin":
        env["TUI_CSR_PIN"] = str(int(tok.token.pin) ^ 0x5A5A5A).zfill(12)
    elif path == "unknown-token":
        env["TUI_CSR_TOKEN"] = "no-such-token"
    return subprocess.run([sys.executable, "-m", "tui_csr", *argv], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


#: What each path must end in: exit status and a piece of its stderr.
EXPECTED = {"wrong-pin": (1, "error: Wrong PIN for token 'private'."),
            "unknown-token": (1, "error: No token with label 'no-such-token'"),
            "success": (0, "")}


def runs_under_load(tok: PrivateToken, runs: int) -> tuple[collections.Counter, list[str]]:
    """``runs`` runs of every path, interleaved, under CPU load: the exit statuses seen per
    path, and a description of every run that died by a signal, printed FATAL, or did not end
    as its path must."""
    seen: collections.Counter = collections.Counter()
    bad: list[str] = []
    with cpu_load():
        for n in range(runs):
            for path in PATHS:
                proc = run_path(tok, path, n)
                seen[(path, proc.returncode)] += 1
                code, needle = EXPECTED[path]
                if (proc.returncode != code or "FATAL" in proc.stderr
                        or "Traceback" in proc.stderr or needle not in proc.stderr):
                    bad.append(f"{path} run {n}: exit {proc.returncode}: {proc.stderr[-300:]!r}")
    return seen, bad


@pytest.mark.slow
def test_every_path_under_load_exits_by_itself(tmp_path: Path) -> None:
    tok = make_private_token(tmp_path / "own")
    seen, bad = runs_under_load(tok, RUNS)
    assert bad == []
    assert {path: code for (path, code) in seen} == {p: EXPECTED[p][0] for p in PATHS}
    print(f"\n{RUNS} runs of each of {', '.join(PATHS)} under load: {dict(seen)}")


# -- the module is finalised on the token thread ---------------------------------------------

def spy_module() -> str:
    """OpenSC's pkcs11-spy (it logs every call), wherever this architecture keeps it."""
    found = sorted(glob.glob("/usr/lib/*/pkcs11-spy.so") + glob.glob("/usr/lib/*/pkcs11/pkcs11-spy.so")
                   + glob.glob("/usr/lib*/pkcs11-spy.so"))
    if not found:
        pytest.skip("OpenSC's pkcs11-spy.so is not installed")
    return found[0]


def spied(tok: PrivateToken, log: Path) -> PrivateToken:
    """The same token reached through pkcs11-spy, which logs each call to ``log``."""
    env = dict(tok.env, PKCS11SPY=tok.env["TUI_CSR_MODULE"], PKCS11SPY_OUTPUT=str(log),
               TUI_CSR_MODULE=spy_module())
    return PrivateToken(tok.token, tok.folder, tok.data_dir, env)


def calls(log: Path) -> list[str]:
    """The PKCS#11 functions in a spy log, in order."""
    return [line.split(": ", 1)[1].strip() for line in log.read_text(errors="replace").splitlines()
            if line[:1].isdigit() and ": C_" in line]


@pytest.mark.parametrize("path", PATHS)
def test_each_path_ends_with_the_session_closed_and_the_module_finalised(
        tmp_path: Path, path: str) -> None:
    log = tmp_path / "spy.log"
    tok = spied(make_private_token(tmp_path / "own"), log)
    proc = run_path(tok, path, 0)
    assert proc.returncode == EXPECTED[path][0], proc.stderr
    made = calls(log)
    assert made[-1] == "C_Finalize", made[-8:]
    assert made.count("C_Finalize") == 1
    if path == "success":  # C_Finalize ends the logged-in session: no round trip before it
        assert made[-2] == "C_Sign" and "C_CloseSession" not in made, made[-8:]
    # (A failed login leaves python-pkcs11's half-opened session behind: C_Finalize closes it.)


_WITH_PROBE = """
import json, sys, threading
from tui_csr.hsm import worker
seen = []
real = worker.finalize_modules
def probe():
    seen.append(threading.current_thread().name)
    real()
worker.finalize_modules = probe
from tui_csr.cli import main
code = main(sys.argv[1:])
import pkcs11
print(json.dumps({"code": code, "finalised_on": seen,
                  "initialised": [lib.initialized for lib in pkcs11._loaded.values()],
                  "token_threads": [t.name for t in threading.enumerate()
                                    if t.name.startswith("pkcs11")]}))
"""


def test_the_module_is_finalised_on_the_token_thread_and_the_thread_ends(tmp_path: Path) -> None:
    tok = make_private_token(tmp_path / "own")
    run = tok.python(_WITH_PROBE, *GENERATE, pin=tok.token.pin)
    assert run.code == 0, run.err
    doc = json.loads(run.out.strip().splitlines()[-1])
    assert doc["code"] == 0
    seen = doc["finalised_on"]
    assert len(seen) == 1 and seen[0].startswith("pkcs11"), seen  # the token thread's name
    assert doc["initialised"] == [False]  # the one loaded module is finalised when main returns
    assert doc["token_threads"] == []  # and the token thread is gone


_TIMED_KEYGEN = """
import os, sys, time
from tui_csr.hsm.token import Pkcs11Token
marks = sys.argv[1]
real = Pkcs11Token.generate_keypair
def generate_keypair(self, *args, **kwargs):
    with open(marks, "a") as fh:
        fh.write(f"started {time.time()}\\n")
    try:
        return real(self, *args, **kwargs)
    finally:
        with open(marks, "a") as fh:
            fh.write(f"returned {time.time()}\\n")
Pkcs11Token.generate_keypair = generate_keypair
from tui_csr.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def test_sigterm_during_a_key_generation_is_an_orderly_exit(tmp_path: Path) -> None:
    """SIGTERM while the token generates an RSA-4096 key (about a second): exit 130 with one
    sentence once the call returns, the session closed and the module finalised; never a death
    by the signal."""
    log, marks = tmp_path / "spy.log", tmp_path / "marks"
    tok = spied(make_private_token(tmp_path / "own"), log)
    argv = ["generate", "--key-spec", "RSA-4096", "--cn", "term.example", "--group", GROUP]
    proc = subprocess.Popen([sys.executable, "-c", _TIMED_KEYGEN, str(marks), *argv],
                            env=dict(tok.env, TUI_CSR_PIN=tok.token.pin), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not marks.exists():
        time.sleep(0.002)
    signalled = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # The window aimed at: the signal came after the generation started and before it returned.
    stamps = dict(line.split() for line in marks.read_text().splitlines())
    assert float(stamps["started"]) <= signalled < float(stamps["returned"]), stamps
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted."], err
    made = calls(log)
    assert "C_GenerateKeyPair" in made and made[-1] == "C_Finalize", made[-8:]


_PREIMPORT_THEN_EXIT = """
import atexit, sys, threading
for name in [m for m in sys.modules if m.startswith("cryptography")]:
    del sys.modules[name]
from tui_csr._lazy import import_in_background
def at_exit():
    alive = [t.name for t in threading.enumerate() if t.name == "tui-csr-preimport"]
    print("x509" if "cryptography.x509" in sys.modules else "none", alive)
atexit.register(at_exit)
import_in_background("cryptography.x509")
"""


def test_a_background_import_is_finished_before_the_interpreter_exits(tmp_path: Path) -> None:
    """The process that exits at once after starting a background import (a wrong PIN does)
    waits for it: the import is complete and its thread gone when exit handlers run."""
    tok = make_private_token(tmp_path / "own")
    run = tok.python(_PREIMPORT_THEN_EXIT)
    assert run.code == 0 and "FATAL" not in run.err, run.err
    assert run.out.strip() == "x509 []"


_TWO_FACADES = """
import asyncio, json, os
import pkcs11
from tui_csr.hsm.token import Pkcs11Token
from tui_csr.hsm.worker import AsyncToken

async def run():
    module, label, pin = (os.environ[k] for k in ("TUI_CSR_MODULE", "TUI_CSR_TOKEN", "TUI_CSR_PIN"))
    first, second = AsyncToken(Pkcs11Token(module, label)), AsyncToken(Pkcs11Token(module, label))
    await first.login(pin)
    await second.open()
    await second.login(pin)
    await first.shutdown()
    after_first = pkcs11._loaded[module].initialized
    keys = len(await second.list_keys())  # the other facade's session still works
    await second.shutdown()
    return {"after_first": after_first, "keys": keys,
            "after_both": pkcs11._loaded[module].initialized}

print(json.dumps(asyncio.run(run())))
"""


def test_async_token_shutdown_finalises_when_the_last_session_closes(tmp_path: Path) -> None:
    tok = make_private_token(tmp_path / "own")
    run = tok.python(_TWO_FACADES, pin=tok.token.pin)
    assert run.code == 0, run.err
    doc = json.loads(run.out.strip().splitlines()[-1])
    assert doc == {"after_first": True, "keys": 0, "after_both": False}


def main(argv: list[str] | None = None) -> int:
    """The acceptance run by hand: ``--runs`` runs of every path under load."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tui-csr-shutdown-") as folder:
        tok = make_private_token(Path(folder) / "own")
        start = time.monotonic()
        seen, bad = runs_under_load(tok, args.runs)
    signalled = sum(n for (_, code), n in seen.items() if code < 0)
    fatal = sum("FATAL" in line for line in bad)
    print(f"{args.runs} runs of each path under load in {time.monotonic() - start:.0f} s: "
          f"{dict(seen)}")
    for line in bad[:20]:
        print(f"  BAD {line[:300]}")
    print(f"exit status below 0: {signalled}; FATAL on stderr: {fatal}; "
          f"runs that ended otherwise than their path must: {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
