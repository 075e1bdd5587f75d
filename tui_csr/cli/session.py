"""Opening the service and logging in, shared by every command that needs them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_csr.config import Settings
    from tui_csr.core.models import Request
    from tui_csr.service import CsrService


def settings_from_args(args: Any) -> Settings:
    """The settings: config file, then ``TUI_CSR_*`` variables, then the flags."""
    from tui_csr.config import load_settings

    return load_settings(config=getattr(args, "config", None),
                         module=getattr(args, "module", None),
                         token=getattr(args, "token", None),
                         data_dir=getattr(args, "data_dir", None),
                         pin_file=getattr(args, "pin_file", None),
                         store=getattr(args, "store", None))


async def open_service(settings: Settings, *, token: bool) -> CsrService:
    """A service over the settings' store; logged in to the token when ``token``."""
    from tui_csr.service import CsrService

    service = CsrService.create(settings)
    if token:
        await login(service)
    return service


async def read_pin(service: CsrService, label: str) -> str:
    """The PIN from ``TUI_CSR_PIN`` / ``--pin-file``, else a prompt without echo."""
    from tui_csr.pin import pin_from_environment, prompt_pin

    pin = pin_from_environment(service.settings.pin_file)
    if pin is None:
        hint = service.token_info.pin_hint if service.token_info is not None else None
        pin = await asyncio.to_thread(prompt_pin, label, hint)
    return pin


async def login(service: CsrService) -> None:
    """Open the configured token and log in (a PIN only where the token needs one)."""
    info = await service.open_token()
    if not info.login_required:
        await service.login(None)
        return
    if info.protected_auth_path:  # a PIN pad: the token reads the PIN itself
        import sys

        from tui_csr.errors import printable

        print(f"Enter the PIN of token '{printable(info.label)}' on the device.",
              file=sys.stderr)
        await service.login(None)
        return
    await service.login(await read_pin(service, info.label))

    async def context_pin(label: str) -> str:
        return await read_pin(service, label)

    # Keys with CKA_ALWAYS_AUTHENTICATE: the same PIN source again before each signature.
    service.pin_source = context_pin


async def find_request(service: CsrService, ident: str) -> Request:
    """A request by id, unique id prefix (4+ characters) or label."""
    from tui_csr.errors import NotFoundError

    try:
        return await service.get_request(ident)
    except NotFoundError:
        by_label = await asyncio.to_thread(service.store.find_request_by_label, ident)
        if by_label is None:
            raise
        return by_label
