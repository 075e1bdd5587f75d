"""Child process: start the real TUI headless on a large store and report when the Requests table
shows its rows, and the process's peak RSS.

Run as ``python -m bench.tui_start EXPECTED_ROWS`` with the token and data folder in the
environment (``TUI_CSR_*``); prints one JSON object: ``{"shown_at": <time.time()>, "rows": N,
"peak_rss_mb": M}``. The parent took ``time.time()`` just before starting this process, so the
difference covers interpreter start-up, imports, token login, the store read and the table.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


async def main(expected: int) -> None:
    from tui_csr.config import load_settings
    from tui_csr.pin import pin_from_environment
    from tui_csr.service import CsrService
    from tui_csr.ui.app import TuiCsrApp

    settings = load_settings()
    app = TuiCsrApp(CsrService.create(settings), pin=pin_from_environment(None))
    shown_at = None
    rows = 0
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = getattr(app, "main_screen", None)
            if screen is not None and screen.is_mounted and screen.ready:
                view = screen.requests
                table = view.table
                rows = table.row_count
                # Shown: the table holds its first page and every request is loaded behind it
                # (the table pages rows in as the cursor moves; filter and sort see them all).
                if (table.display and len(view.rows) >= expected
                        and rows >= min(expected, getattr(view, "_shown", expected))):
                    await pilot.pause()  # let the table paint what it now holds
                    shown_at = time.time()
                    break
            await pilot.pause(0.005)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"shown_at": shown_at, "rows": rows, "peak_rss_mb": peak_kb / 1024}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
