"""Typed settings: defaults < config file (TOML) < ``TUI_CSR_*`` environment < command-line flags.

The PIN is never part of the settings: it comes from ``TUI_CSR_PIN``, ``--pin-file`` or a prompt,
is handed to the token's login, and is not kept (see :mod:`tui_csr.pin`).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_csr.errors import ConfigError

APP = "tui-csr"

#: Config-file keys we know; anything else is refused so a typo does not pass silently.
_KEYS = {"module", "token", "token_serial", "data_dir", "admins", "san_supported",
         "attestation", "module_env", "fortanix", "token_profile", "keys",
         "expiry_warning_days", "store", "store_admin_role", "store_user_role"}
_ATTESTATION = {"none", "luna", "fortanix"}


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/tui-csr`` (``~/.local/share/tui-csr``)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/tui-csr/config.toml``."""
    return _xdg("XDG_CONFIG_HOME", ".config") / APP / "config.toml"


def current_user() -> str:
    """The OS user running the program (from the uid, not from $USER, which anyone can set)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass
class FortanixSettings:
    """Fortanix DSM REST access for key attestation; the API key itself is never stored."""

    endpoint: str = ""
    api_key_env: str = "FORTANIX_API_KEY"
    api_key_file: str = ""
    timeout: float = 10.0


@dataclass
class Settings:
    """Everything the program is configured with (never the PIN)."""

    module: str = ""
    token: str | None = None
    token_serial: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    config_path: Path = field(default_factory=default_config_path)
    admins: list[str] = field(default_factory=list)
    san_supported: bool = True
    attestation: str = "none"
    module_env: dict[str, str] = field(default_factory=dict)
    fortanix: FortanixSettings = field(default_factory=FortanixSettings)
    pin_file: Path | None = None
    #: A name from :data:`tui_csr.hsm.profiles.PROFILES`; None chooses from the token's info.
    token_profile: str | None = None
    #: Certificates expiring within this many days are marked (``certs list``, the TUI).
    expiry_warning_days: int = 30
    #: The ``[keys]`` table: binding id -> keys (``"requests.filter" = "f,slash"``), the TUI's
    #: user keymap (ids are listed in Help; unknown ids are refused when the app starts).
    keys: dict[str, str] = field(default_factory=dict)
    #: The store: "" for TinyDB in the data folder, or a PostgreSQL DSN (never with a password).
    store: str = ""
    #: PostgreSQL roles: members of the admin role (and superusers) administer groups.
    store_admin_role: str = "tui_csr_admin"
    store_user_role: str = "tui_csr_user"

    @property
    def store_path(self) -> Path:
        """The TinyDB file."""
        return self.data_dir / "tui-csr.json"

    def apply_module_env(self) -> None:
        """Export the module's own variables (e.g. SOFTHSM2_CONF) before it is loaded."""
        for key, value in self.module_env.items():
            os.environ[key] = value

    def admin_users(self) -> list[str]:
        """Configured administrators; when none are, the owner of the data folder."""
        if self.admins:
            return list(self.admins)
        try:
            uid = self.data_dir.stat().st_uid
        except OSError:
            uid = os.getuid()  # the folder does not exist yet: whoever creates it will own it
        try:
            return [pwd.getpwuid(uid).pw_name]
        except KeyError:
            return [str(uid)]

    def is_admin(self, user: str) -> bool:
        """True when ``user`` may create, rename and remove certificate groups."""
        return user in self.admin_users()


def load_settings(*, config: str | Path | None = None, module: str | None = None,
                  token: str | None = None, data_dir: str | Path | None = None,
                  pin_file: str | Path | None = None, store: str | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the config file, the environment and the flags given."""
    env = dict(os.environ if env is None else env)
    explicit = config or env.get("TUI_CSR_CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_path()
    settings = Settings(config_path=path)
    if path.exists():
        _apply_file(settings, path)
    elif explicit:
        raise ConfigError(f"Config file {path} does not exist.", field="config")

    if env.get("TUI_CSR_MODULE"):
        settings.module = env["TUI_CSR_MODULE"]
    if env.get("TUI_CSR_TOKEN"):
        settings.token = env["TUI_CSR_TOKEN"]
    if env.get("TUI_CSR_TOKEN_SERIAL"):
        settings.token_serial = env["TUI_CSR_TOKEN_SERIAL"]
    if env.get("TUI_CSR_DATA_DIR"):
        settings.data_dir = Path(env["TUI_CSR_DATA_DIR"]).expanduser()
    if env.get("TUI_CSR_ADMINS"):
        settings.admins = [a.strip() for a in env["TUI_CSR_ADMINS"].split(",") if a.strip()]
    if env.get("TUI_CSR_TOKEN_PROFILE"):
        settings.token_profile = _profile_name(env["TUI_CSR_TOKEN_PROFILE"],
                                               "TUI_CSR_TOKEN_PROFILE")
    if env.get("TUI_CSR_EXPIRY_WARNING_DAYS"):
        settings.expiry_warning_days = _warning_days(env["TUI_CSR_EXPIRY_WARNING_DAYS"],
                                                     "TUI_CSR_EXPIRY_WARNING_DAYS")
    if env.get("TUI_CSR_STORE"):
        settings.store = _store_dsn(env["TUI_CSR_STORE"], "TUI_CSR_STORE")
    if env.get("TUI_CSR_SAN_SUPPORTED"):
        settings.san_supported = env["TUI_CSR_SAN_SUPPORTED"].lower() not in {"0", "false", "no"}

    if module:
        settings.module = module
    if token:
        settings.token = token
    if data_dir:
        settings.data_dir = Path(data_dir).expanduser()
    if pin_file:
        settings.pin_file = Path(pin_file).expanduser()
    if store:
        settings.store = _store_dsn(store, "--store")
    return settings


def _apply_file(settings: Settings, path: Path) -> None:
    import tomllib  # only when a config file exists: every command starts without one faster

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc}.", field="config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.", field="config") from exc
    if any("pin" in key.lower() for key in data):
        raise ConfigError(f"Config file {path} must not hold a PIN; use TUI_CSR_PIN, --pin-file "
                          "or the prompt.", field="config")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"Config file {path} has unknown key '{unknown[0]}'; known keys: "
                          f"{', '.join(sorted(_KEYS))}.", field="config")

    def want(key: str, kind: type | tuple[type, ...]) -> object:
        value = data[key]
        if not isinstance(value, kind):
            raise ConfigError(f"Config file {path}: '{key}' has the wrong type.", field=key)
        return value

    def want_table(key: str) -> dict[str, Any]:
        value = data[key]
        if not isinstance(value, dict):
            raise ConfigError(f"Config file {path}: '{key}' must be a table ([{key}]).",
                              field=key)
        return value

    if "module" in data:
        settings.module = str(want("module", str))
    if "token" in data:
        settings.token = str(want("token", str))
    if "token_serial" in data:
        settings.token_serial = str(want("token_serial", str))
    if "data_dir" in data:
        settings.data_dir = Path(str(want("data_dir", str))).expanduser()
    if "admins" in data:
        admins = want("admins", list)
        settings.admins = [str(a) for a in admins] if isinstance(admins, list) else []
    if "san_supported" in data:
        settings.san_supported = bool(want("san_supported", bool))
    if "attestation" in data:
        value = str(want("attestation", str)).lower()
        if value not in _ATTESTATION:
            raise ConfigError(f"Config file {path}: attestation must be one of "
                              f"{', '.join(sorted(_ATTESTATION))}, not '{value}'.",
                              field="attestation")
        settings.attestation = value
    if "token_profile" in data:
        settings.token_profile = _profile_name(str(want("token_profile", str)),
                                               f"Config file {path}: token_profile")
    if "keys" in data:
        table = want_table("keys")
        bad = [k for k, v in table.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ConfigError(f"Config file {path}: [keys] '{bad[0]}' must be a key name such "
                              "as \"ctrl+f\" (several separated by commas).", field="keys")
        settings.keys = {str(k): str(v) for k, v in table.items()}
    if "expiry_warning_days" in data:
        settings.expiry_warning_days = _warning_days(str(want("expiry_warning_days", int)),
                                                     f"Config file {path}: expiry_warning_days")
    if "store" in data:
        settings.store = _store_dsn(str(want("store", str)), f"Config file {path}: store")
    for key in ("store_admin_role", "store_user_role"):
        if key in data:
            role = str(want(key, str)).strip()
            if not role or len(role) > 63:
                raise ConfigError(f"Config file {path}: '{key}' must be a PostgreSQL role name "
                                  "(1 to 63 characters).", field=key)
            setattr(settings, key, role)
    if "module_env" in data:
        settings.module_env = {str(k): str(v) for k, v in want_table("module_env").items()}
    if "fortanix" in data:
        fx = want_table("fortanix")
        settings.fortanix = FortanixSettings(
            endpoint=str(fx.get("endpoint", "")),
            api_key_env=str(fx.get("api_key_env", "FORTANIX_API_KEY")),
            api_key_file=str(fx.get("api_key_file", "")),
            timeout=float(fx.get("timeout", 10.0)),
        )


def _store_dsn(value: str, where: str) -> str:
    """A PostgreSQL DSN without a password ("" for the TinyDB store), or a ConfigError."""
    from tui_csr.store import dsn

    text = value.strip()
    if not text or text.lower() == "tinydb":
        return ""
    if not dsn.is_postgres(text):
        raise ConfigError(f"{where} is not a PostgreSQL DSN (postgresql://HOST/DB or "
                          "service=NAME); leave it unset for the TinyDB store in the data "
                          "folder.", field="store")
    problem = dsn.password_problem(text)
    if problem:
        # Never quote the DSN back: it holds the password.
        raise ConfigError(f"{where} is refused: {problem}.", field="store")
    return text


def _profile_name(value: str, where: str) -> str:
    """A valid token profile name, or a ConfigError naming the valid ones."""
    from tui_csr.core.token_profiles import check_token_profile

    return check_token_profile(value, where)



def _warning_days(value: str, where: str) -> int:
    """A whole number of days, 0 to 3650."""
    try:
        days = int(value.strip())
    except ValueError:
        raise ConfigError(f"{where}: '{value}' is not a whole number of days.",
                          field="expiry_warning_days") from None
    if not 0 <= days <= 3650:
        raise ConfigError(f"{where}: {days} is outside 0..3650 days.",
                          field="expiry_warning_days")
    return days
