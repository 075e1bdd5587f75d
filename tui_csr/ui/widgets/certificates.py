"""The Certificates tab: requests whose certificate was imported, with what the certificate says.

:class:`CertificatesView` goes in a ``TabPane`` of the main screen; like the Requests view it
has ``reload()``. Enter opens View certificate, ``a`` the request's Actions menu; after an action changed
something the view reloads itself and posts :class:`CertificatesView.Changed` (bubbling), so the
main screen can reload its other tabs too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker

from tui_csr.core.certificate_text import days_left
from tui_csr.core.models import Request
from tui_csr.ui.dialogs.actions import ViewRequested, open_actions
from tui_csr.ui.dialogs.error import ReportsWorkerErrors
from tui_csr.ui.text import LiteralTable, shown

if TYPE_CHECKING:
    from tui_csr.service import CsrService
    from tui_csr.services.certificates import CertSummary

#: (column key, header, widest cell) of the table, in display order. Subject and issuer show
#: their CN (View CSR shows everything), so the table fits 100 columns in the common case.
#: Days left comes second so it shows at 80 columns.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("subject", "Subject CN", 28), ("days", "Days left", 12), ("issuer", "Issuer CN", 24),
    ("not_after", "Not after", 10), ("serial", "Serial", 16),
    ("not_before", "Not before", 10), ("groups", "Groups", 16), ("owner", "Owner", 12),
)

#: The clock the tab compares validity with (injectable: snapshots must not depend on today).
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


#: The marks of the Days-left column: expired, and within the warning threshold.
EXPIRED_MARK = "✗"
EXPIRING_MARK = "⚠"


def expiry_state(not_after: datetime, now: datetime, warning_days: int) -> str:
    """``expired``, ``expiring`` (within ``warning_days``) or ``ok``."""
    if not_after <= now:
        return "expired"
    if (not_after - now).total_seconds() <= warning_days * 86400:
        return "expiring"
    return "ok"


def days_left_text(not_after: datetime, now: datetime) -> str:
    """``45 days``, ``1 day``, ``today`` or ``expired`` (Not after gives the date)."""
    if not_after < now:
        return "expired"
    days = days_left(not_after, now)
    if days == 0:
        return "today"
    return f"{days} day{'s' if days != 1 else ''}"

EMPTY_TEXT = "No issued certificates yet: import one from a request's Actions (a)."
WAITING_TEXT = "Reading the certificates…"


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def common_name(rfc4514: str) -> str:
    """The CN of an RFC 4514 name (the whole name when it has none)."""
    for part in re.split(r"(?<!\\),", rfc4514):  # commas not escaped with a backslash
        key, _, value = part.partition("=")
        if key.strip().upper() == "CN" and value:
            return re.sub(r"\\(.)", r"\1", value)
    return rfc4514


def certificate_cells(request: Request, cert: CertSummary,
                      now: datetime | None = None, warning_days: int | None = None
                      ) -> tuple[str, ...]:
    """The row for one certificate (dates local; days left until it expires, or expired).
    With ``warning_days`` the days left carry a mark: ✗ expired, ⚠ within the threshold."""
    now = now or utc_now()
    days = days_left_text(cert.not_after, now)
    if warning_days is not None:
        state = expiry_state(cert.not_after, now, warning_days)
        mark = {"expired": EXPIRED_MARK, "expiring": EXPIRING_MARK}.get(state)
        days = f"{mark} {days}" if mark else days
    values = (common_name(cert.subject), days,
              common_name(cert.issuer), f"{cert.not_after.astimezone():%Y-%m-%d}", cert.serial,
              f"{cert.not_before.astimezone():%Y-%m-%d}",
              ", ".join(request.groups), request.owner or "")
    return tuple(clip(v, width) for v, (_, _, width) in zip(values, COLUMNS, strict=True))


class CertificatesTable(LiteralTable):
    """The certificates table, with vim keys on top of the arrows."""

    BINDINGS = [
        Binding("enter", "select_cursor", "View", tooltip="View the certificate (decoded, "
                "fingerprints, chain; copy, save)", id="certificates.view"),
        Binding("j", "cursor_down", "Down", show=False, tooltip="Next certificate",
                id="certificates.down"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="Previous certificate",
                id="certificates.up"),
    ]


class CertificatesView(ReportsWorkerErrors, Vertical):
    """Issued requests: subject, issuer, serial, validity, groups and owner."""

    DEFAULT_CSS = """
    CertificatesView { height: 1fr; }
    CertificatesView CertificatesTable { height: auto; max-height: 100%; }
    CertificatesView #certificates-empty { height: 1fr; padding: 1 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("a", "actions", "Actions", tooltip="Actions for the selected certificate's "
                "request", id="certificates.actions"),
    ]

    error_title = "The certificates cannot be loaded"

    class Loaded(Message):
        """The issued requests and their certificates were read."""

        def __init__(self, rows: list[tuple[Request, CertSummary]]) -> None:
            super().__init__()
            self.rows = rows

    class Changed(Message):
        """An action on a certificate's request changed the store."""

    class ExpiryCounted(Message):
        """How many certificates expire within the warning threshold, and how many expired."""

        def __init__(self, expiring: int, expired: int) -> None:
            super().__init__()
            self.expiring = expiring
            self.expired = expired

    def __init__(self, service: CsrService, *, save_directory: Path | None = None,
                 clock: Clock | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.service = service
        #: Where "now" comes from (tests and snapshots fix it).
        self.clock: Clock = clock or utc_now
        self.rows: list[tuple[Request, CertSummary]] | None = None  # None until loaded
        self._save_directory = save_directory

    def compose(self) -> ComposeResult:
        yield CertificatesTable(id="certificates-table", cursor_type="row", zebra_stripes=True)
        yield Static(WAITING_TEXT, id="certificates-empty", markup=False)

    def on_mount(self) -> None:
        self.show_rows()

    @property
    def table(self) -> CertificatesTable:
        """The table widget."""
        return self.query_one(CertificatesTable)

    def reload(self) -> None:
        """Read the certificates again (in a worker)."""
        self.loading = True
        self._load()

    @work(exclusive=True, exit_on_error=False, group="certificates")
    async def _load(self) -> None:
        self.post_message(self.Loaded(await self.service.list_certificates()))

    def worker_failed(self, worker: Worker) -> None:
        """A failed load: stop the loading indicator (the app shows the error)."""
        self.loading = False

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        # Soonest to expire first (expired ones on top): the ones to act on.
        self.rows = sorted(event.rows, key=lambda row: row[1].not_after)
        self.loading = False
        self.show_rows()
        now = self.clock()
        states = [expiry_state(c.not_after, now, self.warning_days) for _, c in self.rows]
        self.post_message(self.ExpiryCounted(states.count("expiring"), states.count("expired")))

    @property
    def warning_days(self) -> int:
        """The threshold of the ⚠ mark (``expiry_warning_days``)."""
        return self.service.settings.expiry_warning_days

    def show_rows(self) -> None:
        """Fill the table, or say why it is empty."""
        table = self.table
        keep = self.selected_request()
        table.clear(columns=True)
        for key, title, _ in COLUMNS:
            table.add_column(title, key=key)
        now = self.clock()
        for request, cert in self.rows or []:
            cells = certificate_cells(request, cert, now, self.warning_days)
            state = expiry_state(cert.not_after, now, self.warning_days)
            style = {"expired": "bold red", "expiring": "yellow"}.get(state, "")
            days = Text(shown(cells[1]), style=style, end="")
            table.add_row(cells[0], days, *cells[2:], key=request.id)
        if keep is not None and any(r.id == keep.id for r, _ in self.rows or []):
            table.move_cursor(row=table.get_row_index(keep.id))
        empty = self.query_one("#certificates-empty", Static)
        empty.update(WAITING_TEXT if self.rows is None else EMPTY_TEXT)
        empty.display = not self.rows
        table.display = bool(self.rows)

    def selected_request(self) -> Request | None:
        """The request under the cursor, if any."""
        table = self.table
        if table.row_count == 0 or not self.rows:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r, _ in self.rows if r.id == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Actions need a selected certificate (dimmed otherwise)."""
        if action == "actions":
            return True if self.rows else None
        return True

    def action_actions(self) -> None:
        """Open the Actions menu of the selected certificate's request."""
        request = self.selected_request()
        if request is not None:
            open_actions(self, self.service, request, self._changed,
                         save_directory=self._save_directory)

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        request = next((r for r, _ in self.rows or [] if r.id == event.row_key.value), None)
        if request is not None:
            self.post_message(ViewRequested(request, certificate=True,
                                            save_directory=self._save_directory))

    def _changed(self) -> None:
        self.reload()
        self.post_message(self.Changed())
