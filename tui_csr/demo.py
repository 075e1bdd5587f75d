"""``tui-csr demo``: a SoftHSM2 demo token and data folder, made once and reused."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_csr.config import Settings, current_user, default_data_dir
from tui_csr.hsm import softhsm

#: The demo token's PINs are public on purpose: it is a demo, its keys protect nothing.
DEMO_LABEL = "demo"
DEMO_PIN = "123456"
DEMO_SO_PIN = "12345678"
DEMO_GROUP = "Demo"


def demo_settings(base: Path | None = None) -> Settings:
    """Settings for the demo token under ``base`` (default: the data folder's ``demo/``)."""
    base = base or default_data_dir() / "demo"
    conf = base / "softhsm" / "softhsm2.conf"
    return Settings(module=softhsm.find_softhsm_module(), token=DEMO_LABEL,
                    data_dir=base / "data", module_env={"SOFTHSM2_CONF": str(conf)},
                    admins=[current_user()])


def setup_demo(base: Path | None = None) -> tuple[Settings, bool]:
    """Create (or reuse) the demo token and data folder, with a first group.

    Returns the settings and whether the token was created just now.
    """
    from tui_csr.core.models import AuditEntry, Group
    from tui_csr.store.repo import Store

    settings = demo_settings(base)
    conf = softhsm.write_conf(Path(settings.module_env["SOFTHSM2_CONF"]).parent)
    created = DEMO_LABEL not in softhsm.token_labels(conf)
    if created:
        softhsm.init_token(conf, DEMO_LABEL, DEMO_PIN, DEMO_SO_PIN)
    store = Store.open(settings.data_dir)
    if not store.list_groups():
        user = current_user()
        store.add_group(Group(DEMO_GROUP, description="Requests made on the demo token",
                              policy="demo-policy", created_by=user),
                        AuditEntry("group-add", user, DEMO_GROUP, "created by tui-csr demo"))
    return settings, created


async def open_demo_service(settings: Settings):  # -> CsrService
    """A logged-in service on the demo token."""
    from tui_csr.service import CsrService

    service = CsrService.create(settings)
    await service.open_token()
    await service.login(DEMO_PIN)
    return service


def run_open(settings: Settings):  # pragma: no cover - convenience for scripts
    """Blocking helper for scripts."""
    return asyncio.run(open_demo_service(settings))
