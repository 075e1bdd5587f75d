"""Cross-screen effects as messages: the app opens the decoded views of a request.

Tabs and the Actions controller post :class:`~tui_csr.ui.dialogs.actions.ViewRequested` to the
app instead of importing the screens (View CSR imports the Actions menu; the menu importing
View CSR back made a cycle, and the controller tested the type of the screen on top). An app
mixes in :class:`RequestNavigation` to handle it; a screen tells what it shows through
``shows_request`` so the same view is not opened twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_csr.ui.dialogs.actions import RenewRequested, ViewRequested
from tui_csr.ui.screens.result import ResultScreen
from tui_csr.ui.screens.view_certificate import ViewCertificateScreen
from tui_csr.ui.screens.view_csr import ViewCsrScreen
from tui_csr.ui.screens.wizard import GenerateWizard

if TYPE_CHECKING:
    from tui_csr.core.models import Request
    from tui_csr.service import CsrService


class RequestNavigation:
    """App mixin: opens View CSR or View certificate for :class:`ViewRequested`, and keeps
    the ids of requests whose key the start-up scan found gone (``lost_key_ids``)."""

    service: CsrService
    #: Ids of requests whose key pair is no longer on the token (set by the orphan scan).
    lost_key_ids: set[str]

    # A plain handler name, not @on: Textual collects @on handlers only on its own classes.
    def on_view_requested(self, event: ViewRequested) -> None:
        """Open the view asked for (unless the screen on top shows it already)."""
        event.stop()
        app = self  # the mixin is on the App
        kind = "certificate" if event.certificate else "csr"
        if getattr(app.screen, "shows_request", None) == (event.request.id, kind):  # type: ignore[attr-defined]
            return
        screen: ViewCertificateScreen | ViewCsrScreen
        if event.certificate:
            screen = ViewCertificateScreen(event.request, save_directory=event.save_directory)
        else:
            screen = ViewCsrScreen(self.service, event.request, on_change=event.on_change,
                                   save_directory=event.save_directory)
        app.push_screen(screen)  # type: ignore[attr-defined]

    def on_renew_requested(self, event: RenewRequested) -> None:
        """Open the wizard pre-filled from the request; its successor then opens in the
        result screen and the lists are read again."""
        event.stop()
        app = self  # the mixin is on the App
        on_change = event.on_change

        def done(request: Request | None) -> None:
            if request is None:
                return
            if on_change is not None:
                on_change()
            app.push_screen(ResultScreen(request))  # type: ignore[attr-defined]

        app.push_screen(GenerateWizard(self.service, renews=event.request),  # type: ignore[attr-defined]
                        done)
