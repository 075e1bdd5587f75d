"""Figure 1: what ``generate`` adds on top of the token, in-process.

Side by side, alternating: ``CsrService.generate`` (validation, keygen, sign, software verify,
store write) and bare python-pkcs11 on a second session of the same logged-in token (keygen
with the same templates, then a sign of a CSR-sized message). Every run's objects are destroyed
again, so the token does not grow between runs (SoftHSM's searches slow down with every object).

Two ratios: the ratio of the medians, and the paired estimate (bare median + median of each
generate's own overhead) / bare median, where a run's overhead is its wall time minus the keygen
it did (timed around the token facade's ``generate_keypair``, which includes the read-back of
the key's attributes) minus the bare sign median. Key generation time is random (RSA prime
search): the paired estimate removes that noise, which the ratio of medians of 15 RSA runs
cannot resolve to 5 %. The target is judged on the paired estimate.

Only public interfaces: the service, its token facade (``service.token``) and python-pkcs11;
nothing of tui-csr's token internals, so the figure survives changes behind the facade.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import secrets
import statistics
import time
from collections import defaultdict
from typing import Any

from bench.common import GROUP, PIN, Row, emit, new_token, runs, workdir_from_argv

RUNS = {"P-256": runs(25, 3), "RSA2048": runs(15, 2)}
WARMUP = runs(3, 1)
LIMITS = {"P-256": 1.25, "RSA2048": 1.05}


def _timed_keygens(service: Any, sink: list[float]) -> None:
    """Time each key generation the service asks of its token facade into ``sink``."""
    facade = service.token
    original = facade.generate_keypair

    async def generate_keypair(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - start)

    facade.generate_keypair = generate_keypair


def _bare_session(module: str, label: str) -> Any:
    """A second read-write session on the token (it shares the service's login)."""
    import pkcs11

    return pkcs11.lib(module).get_token(token_label=label).open(rw=True)


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


async def _profile(service: Any, runs: int = runs(15, 2)) -> dict[str, float]:
    """Where a P-256 generate's time goes: median ms of each call to the token facade, of the
    validation and of the store write (each wrapped on its object), and of the whole."""
    times: dict[str, list[float]] = defaultdict(list)

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)
        if inspect.iscoroutinefunction(original):
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    times[key].append(time.perf_counter() - start)
            setattr(owner, name, timed_async)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[key].append(time.perf_counter() - start)
        setattr(owner, name, timed)

    facade = service.token
    for name in dir(type(facade)):
        if not name.startswith("_") and inspect.iscoroutinefunction(getattr(type(facade), name)):
            wrap(facade, name, f"token.{name}")
    wrap(service, "validate", "service.validate")
    for name in ("intent_lease", "open_intent", "set_intent_target", "add_request"):
        wrap(service.store, name, f"store.{name}")
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
    # python-pkcs11 loads the module first, so the bare baseline is python-pkcs11's own lib
    # (tui-csr's loader then shares its function table: one C_Initialize per process).
    service.settings.apply_module_env()
    session = await TOKEN_THREAD.run(_bare_session, token.module, token.label)
    await service.open_token()
    await service.login(PIN)
    sink: list[float] = []
    _timed_keygens(service, sink)
    rows = [await _measure(service, TOKEN_THREAD, session, sink, spec) for spec in RUNS]
    del service.token.generate_keypair  # the instance's wrapper: the class's method again
    rows[0].extra.update({f"step {k}": v for k, v in (await _profile(service)).items()})
    await TOKEN_THREAD.run(session.close)
    await service.token.close()
    emit(rows)


if __name__ == "__main__":
    asyncio.run(main())
