"""The Fortanix provider against a local DSM stand-in: an http.server on 127.0.0.1 in a thread.

The server answers the two calls the provider makes (list keys by name, key attestation) with
documents shaped like DSM's, built in the test; each test sets the behaviour it needs.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.unit.attestation_chains import FORTANIX_NAMES, chain_for, new_key, request_for
from tui_csr.attestation import (
    AttestationError,
    attestation_support,
    planned_problem,
    save_attestation,
)
from tui_csr.attestation.fortanix import FortanixProvider
from tui_csr.config import FortanixSettings, Settings
from tui_csr.errors import ConfigError
from tui_csr.service import CsrService
from tui_csr.store.repo import Store

API_KEY = "dGVzdC1hcHA6c2VjcmV0LXZhbHVlLTQy"  # base64("test-app:secret-value-42"), not real
KID = "3f0e4b1c-8d7a-4c2e-9b51-2a6f0d9e7c11"


@dataclass
class Dsm:
    """What the stand-in DSM answers; tests change the fields."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    attestation: dict[str, Any] | None = None
    status: dict[str, int] = field(default_factory=dict)  # path -> forced HTTP status
    delay: float = 0.0  # seconds before answering the attestation call
    seen: list[tuple[str, str, str | None, bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(dsm: Dsm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output clean
            pass

        def _answer(self, status: int, body: bytes, kind: str = "application/json",
                    headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _common(self, body: bytes) -> bool:
            path = urlsplit(self.path).path
            dsm.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
            forced = dsm.status.get(path)
            if forced in (301, 302, 307):
                self._answer(forced, b"", headers={"Location": "https://elsewhere.invalid/"})
                return True
            if forced:
                self._answer(forced, b"Access denied for this request", "text/plain")
                return True
            if self.headers.get("Authorization") != f"Basic {API_KEY}":
                self._answer(401, b"Unauthorized", "text/plain")
                return True
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self._common(b""):
                return
            parts = urlsplit(self.path)
            if parts.path != "/crypto/v1/keys":
                self._answer(404, b"no such path", "text/plain")
                return
            wanted = parse_qs(parts.query).get("name", [""])[0]
            found = [k for k in dsm.keys if k["name"] == wanted]
            self._answer(200, json.dumps(found).encode())

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self._common(body):
                return
            if urlsplit(self.path).path != "/crypto/v1/keys/key_attestation":
                self._answer(404, b"no such path", "text/plain")
                return
            if dsm.delay:
                dsm.release.wait(dsm.delay)  # bounded; teardown releases it at once
            self._answer(200, json.dumps(dsm.attestation).encode())

    return Handler


@pytest.fixture
def dsm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dsm]:
    """A DSM stand-in on 127.0.0.1 (random port), stopped after the test."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FORTANIX_API_KEY", API_KEY)
    state = Dsm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _matching(folder: Path, pattern: str) -> list[Path]:
    """Files in ``folder`` named like ``pattern`` (sync: a test helper, not event-loop code)."""
    return sorted(folder.glob(pattern))


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def attestation_doc(public_key) -> tuple[dict[str, Any], list[x509.Certificate]]:
    """A DSM-shaped key attestation response certifying ``public_key`` (top-down chain)."""
    chain = chain_for(public_key, FORTANIX_NAMES)
    doc = {"authority_chain": [_b64(c) for c in reversed(chain[:-1])],  # authority first
           "attestation_statement": {"format": "x509_certificate", "statement": _b64(chain[-1])}}
    return doc, chain


def provider(dsm: Dsm, timeout: float = 5.0, **kw: Any) -> FortanixProvider:
    return FortanixProvider(FortanixSettings(endpoint=dsm.url + "/", timeout=timeout, **kw))


async def test_success_saves_json_and_chain(dsm: Dsm, tmp_path: Path) -> None:
    key = new_key("EC")
    request = request_for(key, label="code-sign-2026")
    dsm.keys = [{"name": "code-sign-2026", "kid": KID, "obj_type": "EC"},
                {"name": "other", "kid": "0000"}]
    dsm.attestation, chain = attestation_doc(key.public_key())

    result = await provider(dsm).attest(request, None)

    # The kid was looked up by the key's label, then used in the documented request body.
    assert dsm.seen[0][:2] == ("GET", "/crypto/v1/keys?name=code-sign-2026")
    assert dsm.seen[1][:2] == ("POST", "/crypto/v1/keys/key_attestation")
    assert json.loads(dsm.seen[1][3]) == {"key": {"kid": KID}}
    assert all(auth == f"Basic {API_KEY}" for _m, _p, auth, _b in dsm.seen)
    assert result.object_id == KID and result.provider == "fortanix"
    assert result.attested_spki_der == key.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert [(c.role, c.subject) for c in result.chain] == [
        ("root", "CN=Test Attestation Root CA,O=Test Vendor"),
        ("CA", "CN=Test Key Attestation CA,O=Test Vendor"),
        ("authority", "CN=Test DSM Key Attestation Authority,O=Test Vendor"),
        ("statement", "CN=Test DSM Key Attestation,O=Test Vendor")]

    out = tmp_path / "code-sign.json"
    assert planned_problem("fortanix", out, force=False) is None
    written = save_attestation(result, out)
    assert written == [out.resolve(), (tmp_path / "code-sign.json.chain.pem").resolve()]
    assert json.loads(out.read_bytes()) == dsm.attestation
    pem_certs = x509.load_pem_x509_certificates(written[1].read_bytes())
    assert pem_certs == list(reversed(chain))  # statement first, then its issuers
    assert API_KEY not in out.read_text() and API_KEY not in written[1].read_text()


async def test_key_name_not_found(dsm: Dsm) -> None:
    dsm.keys = [{"name": "someone-else", "kid": KID}]
    with pytest.raises(AttestationError) as info:
        await provider(dsm).attest(request_for(new_key()), None)
    assert str(info.value) == (f"Fortanix DSM at {dsm.url} has no key named 'web-2026-01-01' "
                               "that this app's API key can see.")
    assert [m for m, *_ in dsm.seen] == ["GET"]  # no attestation asked for


async def test_http_401_names_the_api_key(dsm: Dsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORTANIX_API_KEY", "d3Jvbmc6a2V5")
    with pytest.raises(AttestationError) as info:
        await provider(dsm).attest(request_for(new_key()), None)
    assert str(info.value) == "Fortanix DSM refused the API key (HTTP 401)."
    assert "d3Jvbmc6a2V5" not in str(info.value)


async def test_timeout_is_reported_with_the_endpoint(dsm: Dsm) -> None:
    key = new_key()
    dsm.keys = [{"name": "web-2026-01-01", "kid": KID}]
    dsm.attestation, _chain = attestation_doc(key.public_key())
    dsm.delay = 3.0
    with pytest.raises(AttestationError) as info:
        await provider(dsm, timeout=0.3).attest(request_for(key), None)
    assert str(info.value) == f"Fortanix DSM at {dsm.url} did not answer within 0.3 s."


async def test_statement_for_another_key_is_an_error(dsm: Dsm, tmp_path: Path) -> None:
    dsm.keys = [{"name": "web-2026-01-01", "kid": KID}]
    dsm.attestation, _chain = attestation_doc(new_key().public_key())
    out = tmp_path / "a.json"
    with pytest.raises(AttestationError) as info:
        save_attestation(await provider(dsm).attest(request_for(new_key()), None), out)
    assert "certifies a different public key than the CSR of 'web-2026-01-01'" in str(info.value)
    assert _matching(tmp_path, "a.json*") == []


async def test_other_http_failures_are_one_sentence(dsm: Dsm) -> None:
    dsm.keys = [{"name": "web-2026-01-01", "kid": KID}]
    dsm.status["/crypto/v1/keys/key_attestation"] = 403
    with pytest.raises(AttestationError, match=r"denied fetching the key attestation of "
                       r"'web-2026-01-01' \(HTTP 403\).*Access denied"):
        await provider(dsm).attest(request_for(new_key()), None)
    dsm.status["/crypto/v1/keys/key_attestation"] = 500
    with pytest.raises(AttestationError, match=r"answered HTTP 500 while fetching"):
        await provider(dsm).attest(request_for(new_key()), None)


async def test_redirect_is_not_followed_with_the_key(dsm: Dsm) -> None:
    dsm.status["/crypto/v1/keys"] = 302
    with pytest.raises(AttestationError, match=r"redirected to https://elsewhere.invalid/ "
                       r"\(HTTP 302\)"):
        await provider(dsm).attest(request_for(new_key()), None)
    assert len(dsm.seen) == 1


async def test_two_keys_with_the_label_are_refused(dsm: Dsm) -> None:
    dsm.keys = [{"name": "web-2026-01-01", "kid": KID}, {"name": "web-2026-01-01", "kid": "x"}]
    with pytest.raises(AttestationError, match="has 2 keys named 'web-2026-01-01'"):
        await provider(dsm).attest(request_for(new_key()), None)


async def test_unreachable_endpoint() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = FortanixProvider(FortanixSettings(endpoint=f"http://127.0.0.1:{port}", timeout=2),
                         env={"FORTANIX_API_KEY": API_KEY})
    with pytest.raises(AttestationError, match=f"Cannot reach Fortanix DSM at "
                       f"http://127.0.0.1:{port}"):
        await p.attest(request_for(new_key()), None)


async def test_api_key_from_file_and_its_problems(dsm: Dsm, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORTANIX_API_KEY")
    key = new_key()
    dsm.keys = [{"name": "web-2026-01-01", "kid": KID}]
    dsm.attestation, _chain = attestation_doc(key.public_key())
    key_file = tmp_path / "dsm.key"
    key_file.write_text(API_KEY + "\n")
    result = await provider(dsm, api_key_file=str(key_file)).attest(request_for(key), None)
    assert result.object_id == KID

    with pytest.raises(ConfigError, match="No Fortanix DSM API key: set the environment "
                       "variable FORTANIX_API_KEY or api_key_file"):
        await provider(dsm).attest(request_for(key), None)
    key_file.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        await provider(dsm, api_key_file=str(key_file)).attest(request_for(key), None)
    monkeypatch.setenv("DSM_KEY", "two words")
    with pytest.raises(ConfigError, match="environment variable DSM_KEY contains spaces"):
        await provider(dsm, api_key_env="DSM_KEY").attest(request_for(key), None)


@pytest.mark.parametrize(("endpoint", "message"), [
    ("", "needs the DSM address"),
    ("http://dsm.example.com", "must use https://"),
    ("ftp://dsm.example.com", "is not an https:// URL"),
])
async def test_endpoint_is_checked_before_any_call(endpoint: str, message: str) -> None:
    p = FortanixProvider(FortanixSettings(endpoint=endpoint), env={"FORTANIX_API_KEY": API_KEY})
    with pytest.raises(ConfigError, match=message):
        await p.attest(request_for(new_key()), None)


async def test_service_never_stores_the_api_key(dsm: Dsm, tmp_path: Path) -> None:
    key = new_key()
    request = request_for(key)
    dsm.keys = [{"name": request.label, "kid": KID}]
    dsm.attestation, _chain = attestation_doc(key.public_key())
    settings = Settings(data_dir=tmp_path / "data", attestation="fortanix",
                        fortanix=FortanixSettings(endpoint=dsm.url, timeout=5))
    store = Store.open(settings.data_dir)
    store.add_request(request)
    service = CsrService(settings, store)  # no token: Fortanix needs only the network
    assert service.attestation_available() is None and not service.attestation_needs_token
    result = await service.attestation(request.id)
    assert result.object_id == KID
    stored = settings.store_path.read_text()
    assert "attestation" in stored and API_KEY not in stored


def test_support_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_csr.hsm.token import TokenInfo

    def info(manufacturer: str, model: str = "") -> TokenInfo:
        return TokenInfo("t", "1", manufacturer, model, True)

    none = Settings(attestation="none")
    assert attestation_support(none, None) == (
        'This token does not support key attestation (attestation = "none").')
    assert attestation_support(none, info("SoftHSM project", "SoftHSM v2")) == (
        'This token does not support key attestation (attestation = "none").')
    assert attestation_support(none, info("Safenet, Inc.", "LunaSA 7")) == (
        'This token does not support key attestation (attestation = "none"; the token looks '
        'like a Thales Luna: set attestation = "luna").')
    assert 'set attestation = "fortanix"' in attestation_support(none, info("Fortanix"))
    assert attestation_support(Settings(attestation="luna"), info("SoftHSM project")) is None
    fx = Settings(attestation="fortanix")
    assert "needs the DSM address" in attestation_support(fx, None, env={})
    fx.fortanix.endpoint = "https://amer.smartkey.io"
    assert "FORTANIX_API_KEY" in attestation_support(fx, None, env={})
    assert attestation_support(fx, None, env={"FORTANIX_API_KEY": "k"}) is None
