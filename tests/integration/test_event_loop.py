"""The one timing a test checks: the asyncio loop is not blocked while the token works."""

from __future__ import annotations

import asyncio
import time

from tests.integration.conftest import GROUP
from tui_csr.service import CsrService, GenerateParams


async def test_loop_keeps_ticking_during_rsa4096_keygen(service: CsrService) -> None:
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    req = await service.generate(GenerateParams(key_spec="RSA4096", fields={"CN": "loop"},
                                                groups=[GROUP]))
    elapsed = time.perf_counter() - start
    done.set()
    await task
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    # The bound sits far from both outcomes: a blocked loop stalls for the whole keygen
    # (hundreds of ms at least), a free one ticks every ~5 ms.
    assert elapsed > 0.1, "RSA-4096 keygen was suspiciously fast; the test would prove nothing"
    assert len(ticks) > 10
    assert max(gaps) < 0.050, f"worst gap {max(gaps) * 1000:.1f} ms"
    await service.delete_request(req.id)


async def test_every_pkcs11_call_runs_on_the_one_token_thread(service: CsrService) -> None:
    import threading

    from tui_csr.hsm.worker import TOKEN_THREAD

    seen: set[int] = set()
    real = service.token._token  # the synchronous token behind the facade

    original = real.generate_keypair

    def spy(*args, **kwargs):
        seen.add(threading.get_ident())
        return original(*args, **kwargs)

    real.generate_keypair = spy
    try:
        reqs = await asyncio.gather(*[
            service.generate(GenerateParams(key_spec="P-256", fields={"CN": f"t{i}"},
                                            groups=[GROUP], label=f"thread-{i}"))
            for i in range(4)])
    finally:
        del real.generate_keypair
    assert seen == {TOKEN_THREAD.thread_ident}
    assert threading.get_ident() not in seen
    for r in reqs:
        await service.delete_request(r.id)
