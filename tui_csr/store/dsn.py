"""Which store a ``store`` setting names, and the checks on a PostgreSQL DSN made before any
connection (no psycopg import: every command reads its settings, most never connect).

A DSN is a libpq connection string, either a URI (``postgresql://host/db?sslmode=verify-full``)
or ``key=value`` words (``service=tui-csr``). It never carries a password: passwords belong in
``~/.pgpass`` (or the file ``passfile=`` names) or in a service file (``service=NAME``), where
process listings, shell histories and config files do not show them. TLS settings
(``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``, ...) pass through to libpq unchanged.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

_URI_SCHEMES = ("postgresql://", "postgres://")
_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def is_postgres(value: str) -> bool:
    """True when ``value`` names a PostgreSQL store (a URI, or libpq ``key=value`` words)."""
    text = value.strip()
    return text.startswith(_URI_SCHEMES) or bool(_WORD.match(text) and "=" in text)


def parameters(dsn: str) -> dict[str, str]:
    """The DSN's parameters (a best-effort parse for checks and messages; libpq has the last
    word when connecting). Raises ValueError for text that is not a DSN."""
    text = dsn.strip()
    if text.startswith(_URI_SCHEMES):
        parts = urlsplit(text)
        params: dict[str, str] = {}
        if parts.username:
            params["user"] = unquote(parts.username)
        if parts.password is not None:
            params["password"] = unquote(parts.password)
        if parts.hostname:
            params["host"] = unquote(parts.hostname)
        try:
            port = parts.port
        except ValueError:
            raise ValueError("its port is not a number") from None
        if port:
            params["port"] = str(port)
        if parts.path.strip("/"):
            params["dbname"] = unquote(parts.path.strip("/"))
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            params[key] = value
        return params
    params = {}
    pos = 0
    while pos < len(text):
        match = _WORD.match(text, pos)
        if match is None:
            if text[pos:].strip():
                raise ValueError("it is neither a postgresql:// URI nor key=value words")
            break
        value = match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[match.group(1)] = value
        pos = match.end()
    return params


def password_problem(dsn: str) -> str | None:
    """Why ``dsn`` must be refused (it holds a password, or cannot be read), else None."""
    try:
        params = parameters(dsn)
    except ValueError as exc:
        return f"it cannot be read: {exc}"
    if "password" in params:
        return ("it holds a password; put the password in ~/.pgpass (or the file passfile= "
                "names) or use a libpq service file (service=NAME) instead")
    return None


def describe(dsn: str) -> str:
    """A short name for messages, without secrets: ``database tui on host db1 port 5432``."""
    try:
        params = parameters(dsn)
    except ValueError:
        return "the PostgreSQL store"
    if "service" in params and "host" not in params:
        return f"the PostgreSQL service '{params['service']}'"
    where = params.get("host") or "the local socket"
    db = params.get("dbname") or params.get("user") or "(default)"
    port = f" port {params['port']}" if params.get("port") else ""
    return f"database '{db}' on {where}{port}"
