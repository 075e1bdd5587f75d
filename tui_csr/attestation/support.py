"""Which provider the configuration picks, and whether the action is available at all."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tui_csr.attestation.base import AttestationProvider, AttestationUnsupportedError

if TYPE_CHECKING:
    from tui_csr.config import Settings
    from tui_csr.hsm.token import TokenInfo

UNSUPPORTED = "This token does not support key attestation"

#: Words in a token's manufacturer ID or model -> (provider to suggest, product name).
_HINTS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("thales", "safenet", "luna", "gemalto", "chrysalis"), "luna", "Thales Luna"),
    (("fortanix",), "fortanix", "Fortanix DSM"),
)


def suggest_provider(token_info: TokenInfo | None) -> tuple[str, str] | None:
    """(provider, product) that the token's manufacturer ID or model points to, if any."""
    if token_info is None:
        return None
    text = f"{token_info.manufacturer} {token_info.model}".casefold()
    for words, provider, product in _HINTS:
        if any(word in text for word in words):
            return provider, product
    return None


def attestation_support(settings: Settings, token_info: TokenInfo | None,
                        env: Mapping[str, str] | None = None) -> str | None:
    """None when "Download key attestation" can be offered; else the sentence saying why not.

    Cheap and synchronous (no token or network call), so a menu can ask it on every redraw.
    With ``attestation = "luna"`` a token may still turn out to lack the attribute: that is
    reported when the attestation is fetched.
    """
    kind = settings.attestation
    if kind == "none":
        hint = suggest_provider(token_info)
        if hint:
            provider, product = hint
            return (f'{UNSUPPORTED} (attestation = "none"; the token looks like a {product}: '
                    f'set attestation = "{provider}").')
        return f'{UNSUPPORTED} (attestation = "none").'
    if kind == "fortanix":
        from tui_csr.attestation.fortanix import api_key_problem

        if not settings.fortanix.endpoint.strip():
            return ("Key attestation with Fortanix DSM needs the DSM address: set endpoint in "
                    "the [fortanix] table of the configuration.")
        return api_key_problem(settings.fortanix, os.environ if env is None else env)
    if kind == "luna":
        return None
    return f'{UNSUPPORTED} (unknown attestation = "{kind}").'


def make_provider(settings: Settings) -> AttestationProvider:
    """The provider for ``settings.attestation``; AttestationUnsupportedError for "none"."""
    if settings.attestation == "luna":
        from tui_csr.attestation.luna import LunaProvider

        return LunaProvider()
    if settings.attestation == "fortanix":
        from tui_csr.attestation.fortanix import FortanixProvider

        return FortanixProvider(settings.fortanix)
    raise AttestationUnsupportedError(attestation_support(settings, None) or UNSUPPORTED + ".")
