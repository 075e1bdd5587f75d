"""SoftHSM forwarded by ``p11-kit server`` over a unix socket, used through p11-kit-client.so.

This is how an admin reaches an HSM on another host: the server runs next to the HSM's module,
its socket is forwarded with ``ssh -L``, and tui-csr loads ``p11-kit-client.so`` with
P11_KIT_SERVER_ADDRESS naming the local end. Here both ends are on this host, the socket lives in
the back end's folder, and the SoftHSM token has a folder of its own.

The server forks one child per client connection; killing that child (see
:func:`connection_children`) drops a live connection, killing the listener does not. As root,
p11-kit ignores per-user module configs; the server is given the module with ``--provider``.

Run by hand: ``python -m tests.backends.p11kit FOLDER`` starts one and waits for Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tests.backends.procs import REGISTRY, BackendError, children_of, wait_for
from tests.backends.token import RealToken, find_module
from tui_csr.hsm import softhsm

CLIENT_MODULE = "p11-kit-client.so"
PACKAGES = ("p11-kit", "p11-kit-modules", "softhsm2")


def missing() -> list[str]:
    """Commands or modules this back end needs that are not installed."""
    gone = [c for c in ("p11-kit", "softhsm2-util") if shutil.which(c) is None]
    if find_module(CLIENT_MODULE) is None:
        gone.append(CLIENT_MODULE)
    if not any(os.path.exists(p) for p in softhsm.SOFTHSM_MODULE_PATHS):
        gone.append("libsofthsm2.so")
    return gone


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def start(folder: Path, label: str = "fwd", pin: str = "246810",
          so_pin: str = "13579135") -> RealToken:
    """Make SoftHSM token ``label`` in ``folder`` and serve it on ``folder/p11-kit.sock``."""
    client = find_module(CLIENT_MODULE)
    if client is None or missing():
        raise BackendError(f"p11-kit back end: not installed: {', '.join(missing())}.")
    folder.mkdir(parents=True, exist_ok=True)
    conf = softhsm.write_conf(folder / "softhsm")
    softhsm.init_token(conf, label, pin, so_pin)
    sock = folder / "p11-kit.sock"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TUI_CSR_", "P11_KIT_", "SOFTHSM2_"))}
    token = RealToken("p11kit", client, label, pin, so_pin,
                      {"P11_KIT_SERVER_ADDRESS": f"unix:path={sock}"}, folder)
    try:
        token.daemons["server"] = server = REGISTRY.start(
            "p11-kit server",
            ["p11-kit", "server", "-f", "-n", str(sock), "--provider",
             softhsm.find_softhsm_module(), f"pkcs11:token={label}"],
            {**base, "SOFTHSM2_CONF": str(conf)}, folder / "p11-kit-server.log")
        wait_for("the p11-kit server socket", lambda: _is_socket(sock), server)
    except BaseException:
        stop(token)
        raise
    return token


def connection_children(token: RealToken) -> list[int]:
    """Pids of the server's per-connection children (one per connected client)."""
    server = token.daemons.get("server")
    return children_of(server.pid) if server is not None else []


def stop(token: RealToken) -> None:
    """Stop the server and its connection children."""
    daemon = token.daemons.pop("server", None)
    if daemon is not None:
        REGISTRY.stop(daemon)


if __name__ == "__main__":  # pragma: no cover - a manual helper
    from tests.backends.token import serve_by_hand

    serve_by_hand(start, stop)
