"""Opening the store the settings name: TinyDB in the data folder (the default, one host), or
PostgreSQL when ``store`` is a DSN (``store = "postgresql://…"``, ``TUI_CSR_STORE``,
``--store``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_csr.config import Settings
    from tui_csr.store.postgres import PostgresStore
    from tui_csr.store.protocol import RequestStore


def open_store(settings: Settings) -> RequestStore:
    """The settings' store; StoreError (naming the file or the database host) when it cannot
    be used, e.g. a PostgreSQL store that is unreachable or of another schema version."""
    if settings.store:
        from tui_csr.store.postgres import PostgresStore

        return PostgresStore(settings.store, admin_role=settings.store_admin_role,
                             user_role=settings.store_user_role)
    from tui_csr.store.repo import Store

    return Store.open(settings.data_dir)


def open_store_later(settings: Settings) -> PostgresStore:
    """The settings' PostgreSQL store without connecting now (it is unreachable at start): it
    connects, and checks its schema version, on first use."""
    from tui_csr.store.postgres import PostgresStore

    return PostgresStore.opened_later(settings.store, admin_role=settings.store_admin_role,
                                      user_role=settings.store_user_role)
