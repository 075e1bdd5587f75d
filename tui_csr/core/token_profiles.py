"""The names of the token profiles (``token_profile`` in the config, ``TUI_CSR_TOKEN_PROFILE``).

Only the names live here, so that the settings can check them without loading the token
layer; what each profile does is in :mod:`tui_csr.hsm.profiles` (a test keeps both in step).
"""

from __future__ import annotations

from tui_csr.errors import ConfigError

TOKEN_PROFILE_NAMES = ("cloudhsm", "fortanix", "generic", "luna", "p11-kit-client", "softhsm",
                       "tpm2-pkcs11", "yubihsm2")


def check_token_profile(value: str, where: str) -> str:
    """``value`` as a profile name (case-insensitive); a ConfigError naming the valid ones."""
    name = value.strip().lower()
    if name not in TOKEN_PROFILE_NAMES:
        raise ConfigError(f"{where}: unknown token profile '{value}'; valid profiles: "
                          f"{', '.join(TOKEN_PROFILE_NAMES)}.", field="token_profile")
    return name
