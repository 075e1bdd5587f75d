"""Which store a `store` setting names, and the password rule for PostgreSQL DSNs."""

from __future__ import annotations

import pytest

from tui_csr.config import load_settings
from tui_csr.errors import ConfigError
from tui_csr.store import dsn


@pytest.mark.parametrize("text", [
    "postgresql://carol:pw@db1/tui",
    "postgres://carol:@db1/tui",  # an empty password is still a password field
    "postgresql://db1/tui?sslmode=require&password=pw",
    "host=db1 password=pw",
    "host=db1 password = 'p w'",
    "password='it\\'s' host=db1",  # libpq's quoting: a backslash before the quote
])
def test_a_password_in_any_form_is_refused(text: str) -> None:
    problem = dsn.password_problem(text)
    assert problem is not None and ".pgpass" in problem


@pytest.mark.parametrize("text", [
    "postgresql://carol@db1:5433/tui?sslmode=verify-full&sslrootcert=/etc/ssl/root.pem",
    "postgresql:///tui?host=/run/postgresql",
    "service=tui-csr",
    "host=db1 dbname=tui passfile=/home/carol/.pgpass sslmode=verify-full",
])
def test_dsns_without_a_password_pass(text: str) -> None:
    assert dsn.is_postgres(text)
    assert dsn.password_problem(text) is None


def test_parameters_and_description() -> None:
    params = dsn.parameters("postgresql://carol@db1:5433/tui?sslmode=verify-full")
    assert params == {"user": "carol", "host": "db1", "port": "5433", "dbname": "tui",
                      "sslmode": "verify-full"}
    assert dsn.parameters("host=db1 application_name='tui csr'")["application_name"] == "tui csr"
    assert dsn.describe("postgresql://carol@db1:5433/tui") == "database 'tui' on db1 port 5433"
    assert dsn.describe("host=/run/postgresql user=carol") == (
        "database 'carol' on /run/postgresql")
    with pytest.raises(ValueError):
        dsn.parameters("postgresql://db1:notaport/tui")


@pytest.mark.parametrize("text", ["", "tinydb", "  TinyDB "])
def test_unset_or_tinydb_is_the_file_store(text: str) -> None:
    assert load_settings(store=text or None, env={}).store == ""


def test_settings_take_the_store_from_file_env_and_flag(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('store = "service=from-file"\nstore_admin_role = "pki_admins"\n')
    assert load_settings(config=config, env={}).store == "service=from-file"
    assert load_settings(config=config, env={}).store_admin_role == "pki_admins"
    env = {"TUI_CSR_STORE": "service=from-env"}
    assert load_settings(config=config, env=env).store == "service=from-env"
    assert load_settings(config=config, env=env, store="service=flag").store == "service=flag"
    with pytest.raises(ConfigError, match="is not a PostgreSQL DSN"):
        load_settings(store="/var/lib/tui-csr/store.json", env={})
    with pytest.raises(ConfigError, match="holds a password") as exc:
        load_settings(store="postgresql://u:hunter2@h/d", env={})
    assert "hunter2" not in str(exc.value)
    config.write_text('store_admin_role = ""\n')
    with pytest.raises(ConfigError, match="store_admin_role"):
        load_settings(config=config, env={})
