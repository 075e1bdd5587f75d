"""The TUI's edit dialog (issue 15): joining a group whose profile the request does not fit is
refused under the group list with the sentence the CLI prints, and nothing is written. Real
SoftHSM2 token."""

from __future__ import annotations

from textual.widgets import SelectionList

from tests.ui.lifecycle_harness import LifecycleHarness, settle
from tests.ui.test_lifecycle_ui import SIZE, choose, make, text
from tui_csr.service import CsrService
from tui_csr.ui.dialogs.edit_groups import EditGroupsDialog


async def test_joining_a_group_whose_profile_the_request_breaks_is_refused_in_the_dialog(
        service: CsrService) -> None:
    req = await make(service)  # P-256, CN only, no SAN, no extensions
    await service.add_group("TLS", "tls-server")
    before = service.store.path.read_bytes()
    app = LifecycleHarness(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose(pilot, app, req, "edit")
        dialog = app.screen
        assert isinstance(dialog, EditGroupsDialog)
        dialog.query_one(SelectionList).select("TLS")
        await pilot.pause()
        await pilot.click("#save")
        await settle(pilot)
        assert app.screen is dialog
        assert text(app, "#groups-problem") == (
            "san: group 'TLS' (profile tls-server) needs at least 1 SAN")
        assert service.store.path.read_bytes() == before  # record and audit unchanged
        assert app.changes == 0
