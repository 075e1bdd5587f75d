"""``tui-csr store init|upgrade|status|migrate``: the PostgreSQL store's schema, and moving a
TinyDB store into it.

``init`` and ``upgrade`` work on the store the settings name (``store = "postgresql://…"``,
``TUI_CSR_STORE`` or ``--store``); ``migrate --to DSN`` copies the TinyDB store of the data
folder into an empty PostgreSQL store. None of them accepts a password in a DSN.
"""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, Parser, new_command

    st = new_command(sub, "store", "the PostgreSQL store: create, upgrade, status, migrate into")
    ssub = st.add_subparsers(dest="store_command", metavar="ACTION", parser_class=Parser)
    ssub.required = True
    ssub.add_parser("init", help="create the schema and the missing roles (a superuser, once)")
    ssub.add_parser("upgrade", help="bring the schema up to this program's version")
    ssub.add_parser("status", help="schema version, acting role and whether it administers")
    mg = ssub.add_parser("migrate", help="copy the data folder's TinyDB store into an empty "
                                         "PostgreSQL store and verify it (the source is kept)")
    mg.add_argument("--to", required=True, action=Once, metavar="DSN",
                    help="the PostgreSQL store (initialised with `store init`), no password")


def _postgres(settings: Any, dsn: str | None = None) -> Any:
    from tui_csr.errors import InputError
    from tui_csr.store.postgres import PostgresStore

    target = dsn or settings.store
    if not target:
        raise InputError("This needs a PostgreSQL store: set store = \"postgresql://…\" in the "
                         "config, TUI_CSR_STORE or --store.", field="store")
    return PostgresStore(target, admin_role=settings.store_admin_role,
                         user_role=settings.store_user_role, connect=False)


async def run(args: Any, settings: Any) -> int:
    import asyncio

    return await asyncio.to_thread(_run, args, settings)


def _run(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import safe, say
    from tui_csr.store import pg_schema

    action = args.store_command
    if action == "migrate":
        return _migrate(args, settings)
    store = _postgres(settings)
    if action == "status":
        store.check_schema()
        admin = store.administers(store.acting_user())
        print(f"{safe(store.describe())}: schema version {store.schema_version}; acting as role "
              f"'{safe(store.acting_user())}'" + (", an administrator." if admin else
                                                  f", not an administrator ({safe(store.admin_role)})."))
        return 0
    conn = store.connect()
    try:
        with store._errors("set up the store"):
            if action == "init":
                roles = pg_schema.Roles(admin=store.admin_role, user=store.user_role)
                version = pg_schema.init(conn, roles, store.where, say=say)
                print(f"Created the tui-csr store in {safe(store.where)} (schema version "
                      f"{version}). Let people in with GRANT {safe(roles.user)} TO <role>; and "
                      f"GRANT {safe(roles.admin)} TO <role>; for administrators.")
                return 0
            before, after = pg_schema.upgrade(conn, store.where)
    finally:
        conn.close()
    if before == after:
        print(f"The store in {safe(store.where)} is up to date (schema version {after}).")
    else:
        print(f"Upgraded the store in {safe(store.where)} from schema version {before} to "
              f"{after}.")
    return 0


def _migrate(args: Any, settings: Any) -> int:
    from tui_csr.cli.output import safe
    from tui_csr.errors import InputError
    from tui_csr.store import dsn
    from tui_csr.store.auditchain import verify_audit_chain
    from tui_csr.store.migrate import migrate

    target_dsn = args.to.strip()
    if not dsn.is_postgres(target_dsn):
        raise InputError("--to is not a PostgreSQL DSN (postgresql://HOST/DB or service=NAME).",
                         field="to")
    problem = dsn.password_problem(target_dsn)
    if problem:
        raise InputError(f"--to is refused: {problem}.", field="to")
    target = _postgres(settings, target_dsn)
    target.check_schema()
    report = migrate(settings.store_path, target)
    chain_problem = verify_audit_chain(target.audit_chain())
    if chain_problem:  # pragma: no cover - the copy was verified entry by entry before commit
        from tui_csr.errors import StoreError

        raise StoreError(f"The copied audit log does not verify: {chain_problem}")
    print(f"Copied {report.summary()} from {safe(settings.store_path)} into "
          f"{safe(target.where)}; every record verified, the source left as it was.")
    return 0
