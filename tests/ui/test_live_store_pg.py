"""Issue 17 items 5 and 6 (TUI side, PostgreSQL): the Requests tab follows another admin's write
through LISTEN/NOTIFY without a key press; the database lost (or unreachable at start) is one
sentence naming the host, the app keeps running, and `r` reads the lists again once it is back.

A server of this module's own (durable: it is killed and started again)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.backends import postgres as pg_backend
from tests.backends.postgres import ADMIN, USER, PgServer, init_store
from tests.ui.conftest import FAKE_LABEL, FAKE_PIN, FIXED, SAMPLE, FakeToken, settle
from tui_csr.config import Settings
from tui_csr.core.models import Group
from tui_csr.errors import StoreError
from tui_csr.hsm.worker import AsyncToken
from tui_csr.service import CsrService
from tui_csr.store.postgres import PostgresStore
from tui_csr.ui.app import TuiCsrApp
from tui_csr.ui.dialogs.error import ErrorDialog

WAIT = 15.0  # seconds: a bound, never a sleep (the poll runs every 2 s)


@pytest.fixture(scope="module")
def own_server() -> Iterator[list[PgServer]]:
    """A server of the module's own, in a list (a test that kills it puts the new one there)."""
    gone = pg_backend.missing()
    if gone:
        pytest.skip(f"PostgreSQL not installed ({', '.join(gone)})")
    pytest.importorskip("psycopg")
    holder = [pg_backend.start(pg_backend.server_folder(), durable=True)]
    yield holder
    pg_backend.stop(holder[0])


def pg_service(dsn: str, data: Path, user: str) -> CsrService:
    """A service over the PostgreSQL store ``dsn`` (acting as ``user``) and a fake token."""
    settings = Settings(module="/fake/module.so", token=FAKE_LABEL, data_dir=data, store=dsn)
    store = PostgresStore(dsn)
    return CsrService(settings, store, token=AsyncToken(FakeToken()), user=user)


def two_services(server: PgServer, tmp_path: Path) -> tuple[CsrService, CsrService]:
    """carol (an administrator) and alice (a user) on one fresh store, with the groups of
    :data:`SAMPLE` and its first request."""
    dsn = init_store(server, role=ADMIN)
    carol = pg_service(dsn, tmp_path / "host1", ADMIN)
    alice = pg_service(dsn.replace(f"user={ADMIN}", f"user={USER}"), tmp_path / "host2", USER)
    for name in sorted({g for r in SAMPLE for g in r.groups}):
        carol.store.add_group(Group(name, created=FIXED, created_by=ADMIN))
    carol.store.add_request(SAMPLE[0])
    return carol, alice


async def until(pilot: Pilot, what: str, done: Callable[[], bool]) -> None:
    """Let the app run until ``done()`` (bounded by :data:`WAIT`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not done():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def labels(app: TuiCsrApp) -> list[str]:
    return sorted(row.request.label for row in app.main_screen.requests.rows)


def error_dialogs(app: TuiCsrApp) -> list[ErrorDialog]:
    return [s for s in app.screen_stack if isinstance(s, ErrorDialog)]


def close(*services: CsrService) -> None:
    for svc in services:
        assert isinstance(svc.store, PostgresStore)
        svc.store.close()


def test_change_mark_moves_with_another_sessions_commit(own_server: list[PgServer],
                                                        tmp_path: Path) -> None:
    carol, alice = two_services(own_server[0], tmp_path)
    store = carol.store
    assert isinstance(store, PostgresStore)
    try:
        before = store.change_mark()  # starts listening
        assert store.listen_problem is None
        alice.store.add_request(SAMPLE[1])
        mark = before
        for _ in range(int(WAIT / 0.05)):
            mark = store.change_mark()
            if mark != before:
                break
            time.sleep(0.05)
        assert mark[1] > before[1]  # a notification, not a reconnection
    finally:
        close(carol, alice)


async def test_another_admins_request_appears_without_a_key(own_server: list[PgServer],
                                                            tmp_path: Path, utc: None) -> None:
    carol, alice = two_services(own_server[0], tmp_path)
    app = TuiCsrApp(carol, pin=FAKE_PIN)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            main = app.main_screen
            assert labels(app) == ["www-2026"]
            # The first poll of the change mark starts the listener and notes the mark.
            await until(pilot, "the first poll", lambda: main._store_mark is not None)
            await asyncio.to_thread(alice.store.add_request, SAMPLE[1])
            await until(pilot, "the new request", lambda: labels(app) == ["api-rsa",
                                                                          "www-2026"])
            assert error_dialogs(app) == []
    finally:
        close(carol, alice)


async def test_the_database_lost_is_one_sentence_and_r_reads_again(
        own_server: list[PgServer], tmp_path: Path, utc: None) -> None:
    server = own_server[0]
    carol, alice = two_services(server, tmp_path)
    app = TuiCsrApp(carol, pin=FAKE_PIN)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert labels(app) == ["www-2026"]
            pg_backend.kill(server)
            await pilot.press("r")
            await until(pilot, "the error", lambda: bool(error_dialogs(app)))
            await settle(pilot)
            [dialog] = error_dialogs(app)
            message = dialog._message
            assert str(server.folder) in message and "unreachable" in message
            assert "Traceback" not in message and "\n" not in message
            assert app.is_running and app.main_screen in app.screen_stack
            await pilot.press("escape")
            await settle(pilot)
            assert error_dialogs(app) == []
            own_server[0] = server = pg_backend.launch(server.folder, durable=True)
            # Written while the app may not be listening: `r` reads it anyway.
            await asyncio.to_thread(alice.store.add_request, SAMPLE[1])
            await pilot.press("r")
            await until(pilot, "the rows", lambda: labels(app) == ["api-rsa", "www-2026"])
            await settle(pilot)
            assert error_dialogs(app) == [] and app.is_running
    finally:
        close(carol, alice)


async def test_the_database_unreachable_at_start_keeps_the_app(
        own_server: list[PgServer], tmp_path: Path, utc: None) -> None:
    server = own_server[0]
    dsn = init_store(server, role=ADMIN)
    admin = PostgresStore(dsn)
    for name in sorted({g for r in SAMPLE for g in r.groups}):
        admin.add_group(Group(name, created=FIXED, created_by=ADMIN))
    admin.add_request(SAMPLE[0])
    admin.close()
    pg_backend.kill(server)
    settings = Settings(module="/fake/module.so", token=FAKE_LABEL, data_dir=tmp_path, store=dsn)
    with pytest.raises(StoreError, match="unreachable"):
        CsrService.create(settings)  # the CLI's way: one sentence, exit 1
    service = CsrService.create(settings, unreachable_ok=True)  # the TUI's (run_app)
    assert service.user == ADMIN
    service.token = AsyncToken(FakeToken())
    app = TuiCsrApp(service, pin=FAKE_PIN)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await until(pilot, "the error", lambda: bool(error_dialogs(app)))
            [dialog] = error_dialogs(app)
            assert str(server.folder) in dialog._message
            assert "unreachable" in dialog._message and "\n" not in dialog._message
            # The database cannot say whether ADMIN administers: the header does not claim it.
            assert app.sub_title.endswith("· not admin"), app.sub_title
            await pilot.press("escape")
            own_server[0] = server = pg_backend.launch(server.folder, durable=True)
            await pilot.press("r")
            await until(pilot, "the rows", lambda: labels(app) == ["www-2026"])
            await settle(pilot)
            assert error_dialogs(app) == [] and app.is_running
            # Back up: the header asks again (the cached "no" from the outage is not kept).
            await until(pilot, "the admin header", lambda: app.sub_title.endswith("· admin"))
    finally:
        close(service)
