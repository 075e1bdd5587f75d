"""Daemons the test back ends start: each in a process group of its own, all stopped at the end.

Every daemon is started with ``start_new_session=True`` (its own process group, so a daemon that
forks, like ``p11-kit server`` with its per-connection children, is stopped as a whole) and is
registered with :data:`REGISTRY`. Back ends stop their daemons in their fixture's finaliser; the
registry's ``atexit`` hook stops whatever is left if pytest ends on an error or a
``KeyboardInterrupt`` first; and each daemon runs under ``setpriv --pdeathsig KILL``, so a pytest
process killed by a signal (SIGTERM, even SIGKILL) takes its daemons with it (for daemons
started from the main thread, which is where pytest runs fixtures). Daemons listen on
loopback TCP ports or unix sockets only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class BackendError(RuntimeError):
    """A test back end could not be started (the message says which step and shows its log)."""


@dataclass
class Daemon:
    """A started daemon: its process (leader of its own process group) and its log file."""

    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        """The daemon's pid (also its process group id)."""
        return self.proc.pid

    def alive(self) -> bool:
        """True while the daemon has not exited."""
        return self.proc.poll() is None

    def log_text(self) -> str:
        """The daemon's output so far (for error messages)."""
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the daemon's process group, SIGKILL it if it lingers, reap the leader."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; children of the group (e.g. p11-kit's) may still be exiting.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            # SIGKILL takes effect asynchronously: wait until no member of the group is still
            # running (a zombie is dead: its parent or init reaps it).
            deadline = time.monotonic() + timeout
            while group_running(self.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            return


@dataclass
class Registry:
    """Every daemon started by this process, so nothing outlives the test session."""

    daemons: list[Daemon] = field(default_factory=list)
    _hooked: bool = False

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str], log: Path,
              cwd: Path | None = None, pass_fds: Sequence[int] = ()) -> Daemon:
        """Start ``cmd`` as a daemon in a new process group, output into ``log``."""
        if not self._hooked:
            atexit.register(self.stop_all)
            self._hooked = True
        if _SETPRIV and threading.current_thread() is threading.main_thread():
            # The parent-death signal fires when the starting *thread* ends: only the main
            # thread's end is the process's end.
            cmd = [_SETPRIV, "--pdeathsig", "KILL", "--", *cmd]
        with log.open("ab") as out:
            proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=tuple(pass_fds))
        daemon = Daemon(name, proc, log)
        self.daemons.append(daemon)
        return daemon

    def stop(self, daemon: Daemon) -> None:
        """Stop one daemon and forget it."""
        daemon.stop()
        with contextlib.suppress(ValueError):
            self.daemons.remove(daemon)

    def stop_all(self) -> None:
        """Stop every daemon still registered, the last started first."""
        for daemon in reversed(list(self.daemons)):
            self.stop(daemon)


REGISTRY = Registry()
_SETPRIV = shutil.which("setpriv")  # util-linux, essential on Debian


def free_port_pair() -> int:
    """A loopback TCP port P with P+1 also free (swtpm's server and control ports)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise BackendError("No two adjacent free loopback ports for swtpm.")


def wait_for(what: str, ready: Callable[[], bool], daemon: Daemon | None = None,
             timeout: float = 10.0) -> None:
    """Poll ``ready()`` until it is true; BackendError naming ``what`` (and the log) if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if daemon is not None and not daemon.alive():
            raise BackendError(f"{daemon.name} exited before {what}:\n{daemon.log_text()}")
        time.sleep(0.02)
    log = f":\n{daemon.log_text()}" if daemon is not None else ""
    raise BackendError(f"Timed out waiting for {what}{log}")


def run_step(what: str, cmd: Sequence[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run a set-up command; BackendError naming the step with its output if it fails."""
    proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise BackendError(f"{what} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return proc.stdout


def _processes() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        state, ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        yield int(entry.name), state, int(ppid), int(pgrp)


def group_running(pgid: int) -> list[int]:
    """Pids of process group ``pgid`` that are not zombies."""
    return [pid for pid, state, _ppid, pgrp in _processes() if pgrp == pgid and state != "Z"]


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    return sorted(child for child, _state, ppid, _pgrp in _processes() if ppid == pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
