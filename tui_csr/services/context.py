"""What every use case shares: the settings, the store, the token facade and the acting user."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from tui_csr.errors import PermissionDeniedError, TokenError

if TYPE_CHECKING:
    from tui_csr.config import Settings
    from tui_csr.hsm.keys import TokenInfo
    from tui_csr.hsm.worker import AsyncToken
    from tui_csr.store.protocol import RequestStore


class ServiceContext:
    """The state the parts of the service share. One instance per service; the parts keep a
    reference to it, so a token opened later is seen by all of them."""

    def __init__(self, settings: Settings, store: RequestStore, token: AsyncToken | None = None,
                 user: str | None = None) -> None:
        from tui_csr.config import current_user

        self.settings = settings
        self.store = store
        self.token = token
        self.user = user or current_user()
        self.token_info: TokenInfo | None = None
        #: Today's date for default labels; tests and snapshots replace it to stay stable.
        self.today: Callable[[], date] = date.today
        #: The current time (aware, UTC) for expiry listings; tests replace it.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._store_tag: str | None = None
        #: Asks for the PIN of a context-specific login (a key with CKA_ALWAYS_AUTHENTICATE needs
        #: it before every signature), given the token's label: the CLI reads the login's PIN
        #: source again, the TUI shows a PIN dialog. None: such keys cannot sign.
        self.pin_source: Callable[[str], Awaitable[str]] | None = None

    def require_token(self) -> AsyncToken:
        """The open token; TokenError when none is open."""
        if self.token is None:
            raise TokenError("No token is open.", field="token")
        return self.token

    @property
    def is_admin(self) -> bool:
        """Whether the acting user administers certificate groups: the store's word where it
        has one (PostgreSQL: a member of the admin role), else the settings' (OS users)."""
        verdict = self.store.administers(self.user)
        return self.settings.is_admin(self.user) if verdict is None else verdict

    def require_admin(self, what: str) -> None:
        """Refuse ``what`` (``"create certificate groups"``) unless the user is an administrator."""
        if not self.is_admin:
            if self.store.administers(self.user) is not None:  # the database decides
                admins = f"members of the database role {self.settings.store_admin_role}"
            else:
                admins = ", ".join(self.settings.admin_users())
            raise PermissionDeniedError(
                f"Only an administrator can {what}; '{self.user}' is not one (administrators: "
                f"{admins}).", field="group")

    async def store_tag(self) -> str:
        """The store's id (see :meth:`Store.identity`): tells this data folder's keys apart."""
        if self._store_tag is None:
            self._store_tag = await asyncio.to_thread(self.store.identity)
        return self._store_tag
