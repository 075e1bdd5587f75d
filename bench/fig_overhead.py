"""Figure 1: what ``generate`` adds on top of the token, in-process.

Side by side, alternating: ``CsrService.generate`` (validation, keygen, sign, software verify,
store write) and bare python-pkcs11 on the same logged-in session (keygen with the same
templates, then a sign of a CSR-sized message). Every run's objects are destroyed again, so the
token does not grow between runs (SoftHSM's searches slow down with every object).

Two ratios: the ratio of the medians, and the paired estimate (bare median + median of each
generate's own overhead) / bare median, where a run's overhead is its wall time minus the keygen
it did (timed around the PKCS#11 call itself) minus the bare sign median. Key generation time is
random (RSA prime search): the paired estimate removes that noise, which the ratio of medians of
15 RSA runs cannot resolve to 5 %. The target is judged on the paired estimate.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import statistics
import time
from collections import defaultdict
from typing import Any

from bench.common import GROUP, PIN, Row, emit, new_token, workdir_from_argv

RUNS = {"P-256": 25, "RSA2048": 15}
WARMUP = 3
LIMITS = {"P-256": 1.25, "RSA2048": 1.05}


class _TimedSession:
    """Forwards to the python-pkcs11 session; times the key generation calls into ``sink``."""

    def __init__(self, inner: Any, sink: list[float]) -> None:
        self._inner = inner
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate_keypair(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._inner.generate_keypair(*args, **kwargs)
        finally:
            self._sink.append(time.perf_counter() - start)

    def create_domain_parameters(self, *args: Any, **kwargs: Any) -> Any:
        return _TimedSession(self._inner.create_domain_parameters(*args, **kwargs), self._sink)


def _bare(session: Any, spec: str) -> tuple[float, float]:
    """Keygen + sign with python-pkcs11 alone; returns (keygen s, sign s)."""
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters

    label, kid = f"bare-{secrets.token_hex(4)}", secrets.token_bytes(20)
    pub_t = {Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True,
             Attribute.ENCRYPT: False, Attribute.WRAP: False, Attribute.LABEL: label,
             Attribute.ID: kid}
    priv_t = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
              Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
              Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.LABEL: label,
              Attribute.ID: kid}
    message = os.urandom(300)  # about a CertificationRequestInfo
    start = time.perf_counter()
    if spec == "P-256":
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True)
        pub, priv = params.generate_keypair(store=True, public_template=pub_t,
                                            private_template=priv_t)
        mid = time.perf_counter()
        priv.sign(hashlib.sha256(message).digest(), mechanism=Mechanism.ECDSA)
    else:
        pub_t[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
        pub, priv = session.generate_keypair(KeyType.RSA, 2048, store=True,
                                             public_template=pub_t, private_template=priv_t)
        mid = time.perf_counter()
        priv.sign(message, mechanism=Mechanism.SHA256_RSA_PKCS)
    end = time.perf_counter()
    pub.destroy()
    priv.destroy()
    return mid - start, end - mid


def _params(spec: str, n: int, tag: str):  # -> GenerateParams
    from tui_csr.service import GenerateParams

    cn = f"{tag}{n}.bench.example.com"
    return GenerateParams(key_spec=spec, fields={"CN": cn, "O": "Bench Ltd", "C": "GB"},
                          sans=[("dns", cn)], groups=[GROUP], label=f"{tag}-{n}")


async def _measure(service: Any, thread: Any, session: Any, sink: list[float],
                   spec: str) -> Row:
    ours, keygens, bare_total, bare_sign = [], [], [], []
    for n in range(-WARMUP, RUNS[spec]):
        kg, sg = await thread.run(_bare, session, spec)
        start = time.perf_counter()
        req = await service.generate(_params(spec, n + WARMUP, f"ovh-{spec.lower()}"))
        took = time.perf_counter() - start
        await service.delete_request(req.id)
        if n >= 0:
            bare_total.append(kg + sg)
            bare_sign.append(sg)
            ours.append(took)
            keygens.append(sink[-1])
    sign = statistics.median(bare_sign)
    overhead = [o - k - sign for o, k in zip(ours, keygens, strict=True)]
    bare = statistics.median(bare_total)
    paired = (bare + statistics.median(overhead)) / bare
    medians = statistics.median(ours) / bare
    limit = LIMITS[spec]
    name = {"P-256": "P-256", "RSA2048": "RSA-2048"}[spec]
    return Row("1", f"Overhead {name}: generate in-process vs bare python-pkcs11 keygen+sign",
               round(statistics.median(ours) * 1000, 2), "ms", f"<= {limit:g}x",
               paired <= limit, round(bare * 1000, 2), "bare keygen+sign", round(paired, 3),
               len(ours),
               f"paired estimate; ratio of medians {medians:.3f}; overhead "
               f"{statistics.median(overhead) * 1000:.1f} ms per CSR",
               {"overhead_ms": round(statistics.median(overhead) * 1000, 2),
                "ratio_of_medians": round(medians, 3),
                "keygen_in_generate_ms": round(statistics.median(keygens) * 1000, 2)})


async def _profile(service: Any, runs: int = 15) -> dict[str, float]:
    """Where a P-256 generate's time goes: median ms of each step (wrapped, in place)."""
    import tui_csr.hsm.token as token_mod
    import tui_csr.service as service_mod

    times: dict[str, list[float]] = defaultdict(list)

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[key].append(time.perf_counter() - start)
        setattr(owner, name, timed)

    sync_token = service.token._token
    for name in ("label_in_use", "generate_keypair", "sign", "_mark", "supports"):
        wrap(sync_token, name, f"token.{name}")
    wrap(token_mod, "_read_flags", "token.read attributes")
    import tui_csr.core.csr as csr_mod

    for name in ("build_tbs", "assemble", "verify"):
        # Patch where the service looks the name up (its module, or core.csr when it imports
        # lazily) -- never both, or a step would be counted twice.
        wrap(service_mod if hasattr(service_mod, name) else csr_mod, name, f"csr.{name}")
    wrap(service, "validate", "service.validate")
    wrap(service.store, "add_request", "store.add_request")
    for n in range(runs):
        start = time.perf_counter()
        req = await service.generate(_params("P-256", n, "prof"))
        times["total generate"].append(time.perf_counter() - start)
        await service.delete_request(req.id)
    return {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}


async def main() -> None:
    from tui_csr.hsm.worker import TOKEN_THREAD
    from tui_csr.service import CsrService

    token = new_token(workdir_from_argv(), "overhead")
    service = CsrService.create(token.settings())
    await service.open_token()
    await service.login(PIN)
    sync_token = service.token._token
    sink: list[float] = []
    session = sync_token._session
    sync_token._session = _TimedSession(session, sink)
    rows = [await _measure(service, TOKEN_THREAD, session, sink, spec) for spec in RUNS]
    sync_token._session = session
    rows[0].extra.update({f"step {k}": v for k, v in (await _profile(service)).items()})
    await service.token.close()
    emit(rows)


if __name__ == "__main__":
    asyncio.run(main())
