"""Figure 7: PKCS#11 calls per CSR, by function, counted with OpenSC's pkcs11-spy (issue 14).

Against a network HSM (Luna, DPoD, CloudHSM, Fortanix, or any module forwarded with p11-kit)
every call is a round trip of 1-50 ms, so the count is the wait. Counted on SoftHSM and on the
p11-kit client (SoftHSM behind ``p11-kit server``, tests/backends/p11kit.py), each run on a
token of its own, the spy as the module (``PKCS11SPY=<real module>``):

- a fresh ``tui-csr generate`` P-256 (one process: load, log in, generate, sign, close);
- each request of ``generate --batch``: (calls of a batch of 2N - calls of a batch of N) / N;
- the peers as bench/peers.py runs them (p11tool + certtool; pkcs11-tool + openssl where
  pkcs11-provider is installed), both processes of a CSR together.

Projected wall time = round trips x 1, 10, 50 ms, where round trips are the calls minus
C_GetFunctionList and C_GetInterface, which a module answers locally.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from bench import peers
from bench.common import GROUP, PIN, Row, _user, emit, new_token, run, runs, tui_csr_cmd
from bench.common import workdir_from_argv as _workdir

SPY_PATHS = ("/usr/lib/x86_64-linux-gnu/pkcs11-spy.so", "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
             "/usr/lib64/pkcs11-spy.so")
LOCAL = frozenset({"C_GetFunctionList", "C_GetInterface"})
RTTS = (1, 10, 50)
FRESH_LIMIT, BATCH_LIMIT = 20, 8
N = runs(5, 2)


def spy_module() -> str | None:
    """OpenSC's pkcs11-spy, if installed."""
    return next((p for p in SPY_PATHS if os.path.exists(p)), None)


def calls(log: Path) -> Counter[str]:
    """Calls by function in a pkcs11-spy log (each call is a line ``N: C_Name``)."""
    if not log.exists():
        return Counter()
    return Counter(re.findall(r"^\d+: (C_\w+)", log.read_text(errors="replace"), re.M))


def round_trips(counts: Counter[str] | dict[str, float]) -> float:
    return sum(v for k, v in counts.items() if k not in LOCAL)


@dataclass
class Target:
    """A token reached through the spy: SoftHSM directly, or the p11-kit client."""

    backend: str
    label: str
    real_module: str
    module_env: dict[str, str]
    folder: Path
    data_dir: Path
    spy: str
    stop: object = None
    logs: list[Path] = field(default_factory=list)

    def env(self, log: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TUI_CSR_", "PKCS11SPY", "P11_KIT_"))
               and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(self.module_env)
        env.update({"TUI_CSR_MODULE": self.spy, "TUI_CSR_TOKEN": self.label,
                    "TUI_CSR_DATA_DIR": str(self.data_dir), "TUI_CSR_PIN": PIN,
                    "TUI_CSR_ADMINS": _user(), "HOME": str(self.folder / "home"),
                    "XDG_CONFIG_HOME": str(self.folder / "home" / ".config"),
                    "PKCS11SPY": self.real_module, "PKCS11SPY_OUTPUT": str(log)})
        return env

    def peer_token(self, log: Path) -> SimpleNamespace:
        """What bench/peers.py reads of a token, with the spy as the module."""
        return SimpleNamespace(module=self.spy, label=self.label, env=self.env(log),
                               folder=self.folder)


def _data_dir(folder: Path) -> Path:
    from tui_csr.core.models import Group
    from tui_csr.store.repo import Store

    data = folder / "data"
    Store.open(data).add_group(Group(GROUP, policy="bench", created_by=_user()))
    (folder / "home").mkdir(parents=True, exist_ok=True)
    return data


def softhsm_target(workdir: Path, name: str, spy: str) -> Target:
    token = new_token(workdir, name)
    return Target("softhsm", token.label, token.module, {"SOFTHSM2_CONF": str(token.conf)},
                  token.folder, token.data_dir, spy)


def p11kit_target(workdir: Path, name: str, spy: str) -> Target:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.backends import p11kit

    folder = workdir / name
    if folder.exists():
        shutil.rmtree(folder)
    real = p11kit.start(folder / "backend", label=name[:32], pin=PIN)
    target = Target("p11-kit", real.label, real.module, dict(real.module_env), folder,
                    _data_dir(folder), spy, stop=lambda: p11kit.stop(real))
    return target


def _batch_text(n: int) -> str:
    return "".join(json.dumps({"key_spec": "P-256", "cn": f"calls{i}.bench.example.com",
                               "o": "Bench Ltd", "c": "GB", "dns": f"calls{i}.bench.example.com",
                               "group": GROUP}) + "\n" for i in range(n))


def generate_calls(target: Target) -> Counter[str]:
    log = target.folder / "generate.log"
    cn = "calls.bench.example.com"
    run(tui_csr_cmd("generate", "--key-spec", "P-256", "--cn", cn, "--o", "Bench Ltd", "--c",
                    "GB", "--dns", cn, "--group", GROUP), target.env(log))
    return calls(log)


def batch_calls(target: Target, n: int) -> Counter[str]:
    log = target.folder / f"batch-{n}.log"
    run(tui_csr_cmd("generate", "--batch", "-"), target.env(log), stdin=_batch_text(n),
        timeout=600)
    return calls(log)


def peer_calls(target: Target, name: str, peer: peers.Peer) -> Counter[str]:
    log = target.folder / f"peer-{name}.log"
    out = target.folder / f"out-{name}"
    out.mkdir(exist_ok=True)
    peer(target.peer_token(log), "P-256", 0, out)  # type: ignore[arg-type]
    return calls(log)


def _by_function(counts: Counter[str] | dict[str, float]) -> str:
    parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k.removeprefix('C_')} {v:g}" for k, v in parts if v)


def _projection(counts: Counter[str] | dict[str, float]) -> str:
    trips = round_trips(counts)
    return " / ".join(f"{trips * rtt:g} ms" for rtt in RTTS)


def _rows_for(backend: str, make: object, spy: str, workdir: Path) -> list[Row]:
    def fresh(name: str) -> Target:
        return make(workdir, f"calls-{backend}-{name}", spy)  # type: ignore[operator]

    rows: list[Row] = []
    made: list[Target] = []
    try:
        t = fresh("one")
        made.append(t)
        one = generate_calls(t)
        t_small, t_large = fresh("n"), fresh("2n")
        made += [t_small, t_large]
        small, large = batch_calls(t_small, N), batch_calls(t_large, 2 * N)
        per_request = {k: (large[k] - small[k]) / N for k in large | small
                       if large[k] != small[k]}
        available, missing = peers.available()
        peer_counts: dict[str, Counter[str]] = {}
        for name, peer in available.items():
            if name == "openssl+pkcs11-provider":
                continue  # its genpkey + req: the same provider path as pkcs11-tool+openssl
            t = fresh(name.split("+")[0])
            made.append(t)
            try:
                peer_counts[name] = peer_calls(t, name, peer)
            except RuntimeError as exc:
                print(f"note: {name} on {backend} did not run: {str(exc)[:200]}",
                      file=sys.stderr)
    finally:
        for t in made:
            if callable(t.stop):
                t.stop()
    total = sum(one.values())
    best_peer = min(peer_counts.items(), key=lambda kv: sum(kv[1].values()), default=None)
    ref = sum(best_peer[1].values()) if best_peer else None
    peer_note = "; ".join(f"{name}: {sum(c.values())} calls ({_by_function(c)}), at "
                          f"{'/'.join(map(str, RTTS))} ms per round trip {_projection(c)}"
                          for name, c in peer_counts.items())
    rows.append(Row(
        "7", f"PKCS#11 calls, fresh generate P-256 ({backend})", total, "calls",
        f"<= {FRESH_LIMIT}", total <= FRESH_LIMIT, ref,
        best_peer[0] if best_peer else "", round(total / ref, 3) if ref else None, 1,
        f"{_by_function(one)}; at {'/'.join(map(str, RTTS))} ms per round trip "
        f"{_projection(one)}" + (f". Peers: {peer_note}" if peer_note else "")
        + (f". Not run: {'; '.join(missing)}" if missing else ""),
        {f"projected_{rtt}ms": round_trips(one) * rtt for rtt in RTTS}))
    each = sum(per_request.values())
    rows.append(Row(
        "7", f"PKCS#11 calls per request, generate --batch P-256 ({backend})", each, "calls",
        f"<= {BATCH_LIMIT}", each <= BATCH_LIMIT, None, "", None, 2,
        f"({2 * N}-request batch - {N}-request batch) / {N}: {_by_function(per_request)}; "
        f"the batch's own calls ({sum(small.values()) - N * each:g}: login, one label scan) "
        f"are paid once; at {'/'.join(map(str, RTTS))} ms per round trip "
        f"{_projection(per_request)} per CSR",
        {f"projected_{rtt}ms": round_trips(per_request) * rtt for rtt in RTTS}))
    return rows


SCALE = (runs(1, 1), runs(50, 2), runs(500, 4))

#: The bare baseline of a batch: python-pkcs11 alone, in one fresh process on a fresh token,
#: making N P-256 key pairs (kept, as a batch keeps them) and one signature with each. SoftHSM's
#: file store slows every keygen as the objects this process made accumulate, so this is what
#: the token itself costs per CSR at that batch size. Prints the mean ms per key pair + sign.
_BARE_BATCH = """
import hashlib, os, sys, time, pkcs11
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.util.ec import encode_named_curve_parameters
lib = pkcs11.lib(os.environ["TUI_CSR_MODULE"])
token = lib.get_token(token_label=os.environ["TUI_CSR_TOKEN"])
n = int(sys.argv[1])
with token.open(user_pin=os.environ["TUI_CSR_PIN"], rw=True) as session:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        local=True)
    start = time.perf_counter()
    for i in range(n):
        pub, priv = params.generate_keypair(store=True, label=f"bare{i}", id=os.urandom(20))
        priv.sign(hashlib.sha256(os.urandom(300)).digest(), mechanism=Mechanism.ECDSA)
    took = time.perf_counter() - start
print(took * 1000 / n)
"""


def child_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def bare_batch_ms(workdir: Path, n: int) -> tuple[float, float]:
    """(Mean wall ms, CPU ms of the whole child) per CSR of :data:`_BARE_BATCH` with ``n``
    key pairs on a fresh token."""
    plain = new_token(workdir, f"calls-scale-bare-{n}")
    cpu = child_cpu()
    _, proc = run([sys.executable, "-c", _BARE_BATCH, str(n)], plain.env, timeout=900)
    return float(proc.stdout.strip().splitlines()[-1]), (child_cpu() - cpu) * 1000 / n


def scale_rows(spy: str, workdir: Path) -> list[Row]:
    """Batch at the token's speed: calls and wall time per CSR for batches of 1, 50 and 500
    on a fresh SoftHSM token each, so the token grows with the batch. SoftHSM's file store
    re-reads every object on each search: searches per request would make the cost grow."""
    per_csr: dict[int, float] = {}
    per_call: dict[int, float] = {}
    bare: dict[int, float] = {}
    cpu_csr: dict[int, float] = {}
    bare_cpu: dict[int, float] = {}
    for n in SCALE:
        t = softhsm_target(workdir, f"calls-scale-{n}", spy)
        per_call[n] = sum(batch_calls(t, n).values()) / n
        plain = new_token(workdir, f"calls-scale-plain-{n}")
        cpu = child_cpu()
        took, proc = run(tui_csr_cmd("generate", "--batch", "-"), plain.env,
                         stdin=_batch_text(n), timeout=900)
        cpu_csr[n] = (child_cpu() - cpu) * 1000 / n
        said = re.search(r"generated \d+ requests? in [\d.]+ s \(([\d.]+) ms each\)",
                         proc.stderr)
        per_csr[n] = float(said[1]) if said else took * 1000 / n
        bare[n], bare_cpu[n] = bare_batch_ms(workdir, n)
    small, large = SCALE[1], SCALE[2]
    growth = per_csr[large] / per_csr[small]
    own = {n: per_csr[n] - bare[n] for n in SCALE}
    sizes = " / ".join(map(str, SCALE))
    return [Row(
        "7", f"batch P-256 per CSR at {large} vs {small} requests (softhsm, token grows)",
        round(per_csr[large], 2), "ms", "<= 1.25x", growth <= 1.25, round(per_csr[small], 2),
        f"{small} requests", round(growth, 3), 1,
        f"wall per CSR at {sizes} requests: "
        + " / ".join(f"{per_csr[n]:.1f} ms" for n in SCALE)
        + "; PKCS#11 calls per CSR: " + " / ".join(f"{per_call[n]:.2f}" for n in SCALE)
        + " (7 per request plus the batch's own, spread over the batch)"
        + "; bare python-pkcs11 making as many key pairs and signatures in one process on a "
        "fresh token (the token's own cost as it fills): " + " / ".join(
            f"{bare[n]:.1f} ms" for n in SCALE)
        + f" ({bare[large] / bare[small]:.2f}x at {large} vs {small}); tui-csr's own per CSR "
        "beyond it: " + " / ".join(f"{own[n]:.1f} ms" for n in SCALE)
        + f" ({own[large] / own[small]:.2f}x); CPU per CSR (whole process, start-up "
        "included): tui-csr " + " / ".join(f"{cpu_csr[n]:.1f}" for n in SCALE)
        + " ms, bare " + " / ".join(f"{bare_cpu[n]:.1f}" for n in SCALE)
        + " ms: the wall time beyond the CPU is waiting for the disk and for a free CPU",
        {**{f"ms_per_csr_{n}": round(per_csr[n], 2) for n in SCALE},
         **{f"bare_ms_per_csr_{n}": round(bare[n], 2) for n in SCALE},
         **{f"own_ms_per_csr_{n}": round(own[n], 2) for n in SCALE},
         **{f"cpu_ms_per_csr_{n}": round(cpu_csr[n], 2) for n in SCALE}})]


def main() -> None:
    workdir = _workdir()
    spy = spy_module()
    if spy is None:
        emit([Row("7", "PKCS#11 calls: not measured", 0, "", "-", None,
                  note="pkcs11-spy.so is not installed (Debian package opensc)")])
        return
    rows = _rows_for("softhsm", softhsm_target, spy, workdir)
    rows += scale_rows(spy, workdir)
    try:
        rows += _rows_for("p11-kit", p11kit_target, spy, workdir)
    except Exception as exc:  # the p11-kit back end missing or failing is said, not fatal
        rows.append(Row("7", "PKCS#11 calls (p11-kit): not measured", 0, "", "-", None,
                        note=str(exc)[:300]))
    emit(rows)


if __name__ == "__main__":
    main()
