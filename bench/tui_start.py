"""Child process: start the real TUI headless on a large store and report when the Requests table
shows its rows, and the process's peak RSS; with ``--probe``, then also scroll to the last row and
type a filter, timing both.

Run as ``python -m bench.tui_start EXPECTED_ROWS [--probe]`` with the token and data folder in the
environment (``TUI_CSR_*``); prints one JSON object: ``{"shown_at": <time.time()>, "rows": N,
"peak_rss_mb": M}`` (and with ``--probe`` ``"end_s"``, ``"filter_stall_s"``, ``"filter_s"``,
``"filter_rows"``). The parent took ``time.time()`` just before starting this process, so
``shown_at`` minus that covers interpreter start-up, imports, token login, the store read and the
table's first paint.

- End: ``ctrl+end`` (the table's "last request" key, also ``G``) until the frame that paints the
  last request's row is drawn (``Pilot.pause`` draws the screen).
- Filter: ``/`` then :data:`FILTER` typed key by key, until the table shows the filtered rows; a
  ticker task in the app's event loop sleeps 10 ms at a time, and the stall is how much later
  than asked it woke at worst (as figure 4 measures gaps).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

#: Typed into the filter by ``--probe``: matches host12, host120-129, host1200-1299, ...
FILTER = "host12"
TICK = 0.01


def _painted(table) -> str:
    return "\n".join("".join(s.text for s in table.render_line(y))
                     for y in range(table.size.height))


async def _to_main(pilot) -> None:
    """Close whatever the start-up put over the main screen (the orphans report, say)."""
    app = pilot.app
    for _ in range(5):
        if app.screen is app.main_screen:
            return
        app.pop_screen()
        await pilot.pause()


async def _settle(pilot) -> None:
    for _ in range(5):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


async def _probe(pilot, expected: int) -> dict[str, float | int]:
    app = pilot.app
    await _settle(pilot)
    await _to_main(pilot)
    view = app.main_screen.requests
    table = view.table
    table.focus()
    await pilot.pause()
    last_label = table.get_row_at(table.row_count - 1)[0].plain
    start = time.perf_counter()
    await pilot.press("ctrl+end")
    while table.cursor_row != table.row_count - 1 or last_label not in _painted(table):
        await pilot.pause()
        if time.perf_counter() - start > 60:
            raise RuntimeError("ctrl+end never showed the last row")
    end_s = time.perf_counter() - start

    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - asked - TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await pilot.press("slash")
    for key in FILTER:
        await pilot.press(key)
    await _settle(pilot)
    # Shown: the table holds the filtered rows (every one passes the filter).
    while table.row_count == expected or FILTER not in view.filter_text:
        await pilot.pause()
        if time.perf_counter() - start > 60:
            raise RuntimeError("the filter never narrowed the table")
    filter_s = time.perf_counter() - start
    stop.set()
    await task
    return {"end_s": end_s, "filter_stall_s": worst, "filter_s": filter_s,
            "filter_rows": table.row_count}


async def main(expected: int, probe: bool) -> None:
    from tui_csr.config import load_settings
    from tui_csr.pin import pin_from_environment
    from tui_csr.service import CsrService
    from tui_csr.ui.app import TuiCsrApp

    settings = load_settings()
    app = TuiCsrApp(CsrService.create(settings), pin=pin_from_environment(None))
    shown_at = None
    rows = 0
    extra: dict[str, float | int] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            screen = getattr(app, "main_screen", None)
            if screen is not None and screen.is_mounted and screen.ready:
                table = screen.requests.table
                rows = table.row_count
                # Shown: the (virtual) table holds every request.
                if table.display and rows >= expected:
                    await pilot.pause()  # let the table paint
                    shown_at = time.time()
                    extra["start_peak_rss_mb"] = _peak_mb()
                    break
            await pilot.pause(0.005)
        if probe and shown_at is not None:
            extra.update(await _probe(pilot, rows))
    print(json.dumps({"shown_at": shown_at, "rows": rows, "peak_rss_mb": _peak_mb(), **extra}))


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM. Not ``getrusage().ru_maxrss``: Linux carries the parent's
    high-water mark over ``exec`` (subprocess spawns with vfork), so the child of a bench figure
    that holds a parsed 10k store reported the parent's ~250 MB, not its own."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), "--probe" in sys.argv[2:]))
