"""`make screenshots`: the real app on a throwaway SoftHSM2 token, an SVG (and PNG) per screen.

Drives :class:`tui_csr.ui.app.TuiCsrApp` headless with Textual's pilot at 100x30 (and the main
screen at 80x24), through login, the Requests tab, every wizard step, the result screen, the
Actions menu, View CSR, and the Certificates and Groups tabs.

Usage: python scripts/screenshots.py OUT_DIR
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

PIN = "123456"
SIZE = (100, 30)


def _token(base: Path) -> dict[str, str]:
    from tui_csr.hsm import softhsm

    conf = softhsm.write_conf(base / "softhsm")
    softhsm.init_token(conf, "demo", PIN, "12345678")
    return {"SOFTHSM2_CONF": str(conf)}


async def _shoot(out: Path, base: Path) -> list[Path]:
    from tui_csr.config import Settings, current_user
    from tui_csr.core.models import Group
    from tui_csr.hsm.softhsm import find_softhsm_module
    from tui_csr.service import CsrService, GenerateParams
    from tui_csr.store.repo import Store
    from tui_csr.ui.app import TuiCsrApp

    data = base / "data"
    store = Store.open(data)
    for name, policy in (("Web", "web-2026"), ("Mail", "mail-2026")):
        store.add_group(Group(name, policy=policy, description=f"{name} certificates",
                              created_by=current_user()))
    settings = Settings(module=find_softhsm_module(), token="demo", data_dir=data,
                        module_env={"SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"]},
                        admins=[current_user()])
    service = CsrService.create(settings)
    service.today = lambda: date(2026, 11, 27)
    shots: list[Path] = []

    app = TuiCsrApp(service)

    def save(pilot_app, name: str) -> None:
        path = out / f"{name}.svg"
        pilot_app.save_screenshot(filename=path.name, path=str(out))
        shots.append(path)

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        save(app, "01-login")
        await pilot.press(*PIN, "enter")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        save(app, "02-requests-empty")
        await pilot.press("g")
        await pilot.pause(0.5)
        wiz = app.screen
        save(app, "03-wizard-1-cryptotoken")
        # CryptoToken: RSA 3072, SHA-384.
        from textual.widgets import Input, RadioButton

        wiz.query_one("#spec-rsa").query(RadioButton)[1].value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause(0.3)
        dn = wiz.query_one("#dn", Input)
        dn.value = r"CN=www.example.com,OU=Web Team,O=Example\, Inc.,L=Springfield,ST=Ohio,C=US"
        await pilot.pause(0.3)
        save(app, "04-wizard-2-distinguished-name")
        await pilot.press("ctrl+n")
        await pilot.pause(0.3)
        inputs = list(wiz.query("#san-list Input"))
        if inputs:
            inputs[0].value = "webmaster@example.com"
        await pilot.click("#san-add")
        await pilot.pause(0.3)
        inputs = list(wiz.query("#san-list Input"))
        if len(inputs) > 1:
            inputs[-1].value = "not an email"
        await pilot.pause(0.3)
        save(app, "05-wizard-3-subject-alternative-names")
        if len(inputs) > 1:
            inputs[-1].value = "pki@example.com"
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause(0.3)
        groups = wiz.query_one("#groups")
        groups.select_all()
        wiz.query_one("#owner", Input).value = "alice"
        await pilot.pause(0.3)
        save(app, "06-wizard-4-signum-configurations")
        await pilot.press("ctrl+n")
        await pilot.pause(0.5)
        save(app, "07-wizard-review")
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        save(app, "08-result")
        await pilot.press("escape")
        await pilot.pause(0.3)
        # A few more requests so the table has something to show.
        for spec, cn, pss in (("P-384", "vpn.example.net", False),
                              ("RSA2048", "mail.example.org", True)):
            # Group Web's profile (tls-server) wants a SAN.
            await service.generate(GenerateParams(key_spec=spec, fields={"CN": cn, "O": "Example"},
                                                  sans=[("dns", cn)], groups=["Web"],
                                                  owner="bob", pss=pss))
        app.main_screen.reload_all()
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        save(app, "09-requests")
        await pilot.press("f1")
        await pilot.pause(0.3)
        save(app, "10-help")
        await pilot.press("escape")
        await pilot.press("a")
        await pilot.pause(0.3)
        save(app, "11-actions-menu")
        await pilot.press("escape")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        save(app, "12-view-csr")
        await pilot.press("escape")
        await pilot.pause(0.3)
        # Issue a certificate for one request with a throwaway CA, then show the other tabs.
        reqs = await service.list_requests()
        await service.import_certificate(reqs[-1].id, _issue(reqs[-1].csr_pem))
        app.main_screen.reload_all()
        await app.workers.wait_for_complete()
        await pilot.press("2")  # the Certificates tab, by key
        await pilot.pause(0.5)
        save(app, "13-certificates-tab")
        await pilot.press("3")
        await pilot.pause(0.5)
        save(app, "14-groups-tab")
        await pilot.press("e")  # edit the selected group: name, policy, description
        await pilot.pause(0.5)
        save(app, "17-group-edit")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("2", "enter")  # View certificate
        await pilot.pause(0.5)
        save(app, "16-view-certificate")
        await pilot.press("escape")

    small = TuiCsrApp(service, pin=PIN)
    async with small.run_test(size=(80, 24)) as pilot:
        await small.workers.wait_for_complete()
        await pilot.pause(0.5)
        save(small, "15-requests-80x24")
    return shots


def _issue(csr_pem: str) -> bytes:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Issuing CA")])
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(name)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=397))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="tui-csr-shots-"))
    try:
        os.environ.update(_token(base))  # before the module is loaded in this process
        os.environ["TZ"] = "UTC"
        shots = asyncio.run(_shoot(out, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    converter = shutil.which("rsvg-convert")
    for svg in shots:
        if converter:
            subprocess.run([converter, "-w", "1200", str(svg), "-o", str(svg.with_suffix(".png"))],
                           check=True)
        print(svg.with_suffix(".png" if converter else ".svg"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
