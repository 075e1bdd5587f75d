"""Issue 17 item 5 (TinyDB part): the Requests and Groups tabs follow changes another admin's
process makes to the store file; the poll reads the file's change mark off the loop."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import FAKE_PIN, SAMPLE, add_requests, fake_service, settle
from tui_csr.store.repo import Store
from tui_csr.ui.app import TuiCsrApp


async def test_another_process_writing_the_store_shows_up(tmp_path: Path, utc: None) -> None:
    service = fake_service(tmp_path / "fake")
    add_requests(service, SAMPLE[:1])
    app = TuiCsrApp(service, pin=FAKE_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main_screen
        assert [row.request.label for row in main.requests.rows] == ["www-2026"]
        main.poll_store()  # the first poll only notes the mark
        await settle(pilot)
        main.poll_store()
        await settle(pilot)
        assert len(main.requests.rows) == 1
        # Another admin (another Store over the same file) adds a request.
        other = Store.open(tmp_path / "fake")
        other.add_request(SAMPLE[1])
        main.poll_store()
        await settle(pilot)
        assert sorted(row.request.label for row in main.requests.rows) == ["api-rsa",
                                                                           "www-2026"]


async def test_store_change_mark_moves_with_a_write(tmp_path: Path) -> None:
    service = fake_service(tmp_path / "fake")
    before = await service.store_change_mark()
    assert before is not None
    add_requests(service, SAMPLE[:1])
    assert await service.store_change_mark() != before


async def test_the_mark_moves_when_a_large_store_appends_to_its_journal(tmp_path: Path) -> None:
    """A store of 1 MB and more appends another admin's write to its journal and leaves the
    file as it is: the mark watches the journal too, so the live view still sees the write."""
    from tui_csr.core.models import Group
    from tui_csr.store.journal import journal_path_for

    service = fake_service(tmp_path / "fake")
    big = Store.open(tmp_path / "fake")
    big.add_group(Group("Bulk", description="x" * 1_200_000, created_by="alice"))
    before = await service.store_change_mark()
    file_before = service.store.path.stat().st_mtime_ns
    other = Store.open(tmp_path / "fake")
    other.add_request(SAMPLE[1])
    assert journal_path_for(service.store.path).exists()  # the write went to the journal
    assert service.store.path.stat().st_mtime_ns == file_before  # the file did not change
    assert await service.store_change_mark() != before
