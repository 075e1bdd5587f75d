"""Fortanix DSM: key attestation over DSM's REST API (not PKCS#11).

``GET /crypto/v1/keys?name=<label>`` finds the key's ``kid``; ``POST
/crypto/v1/keys/key_attestation`` with ``{"key": {"kid": ...}}`` returns ``{"authority_chain":
[base64 DER, ...], "attestation_statement": {"format": "x509_certificate", "statement": base64
DER}}``. The statement certificate certifies the key's public key; the authority chain runs from
the DSM's attestation authority up to Fortanix's root.

The app API key comes from an environment variable or a file named in the settings; it is sent
in the ``Authorization: Basic`` header only, never logged, never stored, and never sent after a
redirect. HTTP runs in a worker thread (``asyncio.to_thread``) with the configured timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from asn1crypto import pem

from tui_csr.attestation.base import (
    AttestationError,
    AttestationResult,
    check_same_spki,
    request_spki,
)
from tui_csr.config import FortanixSettings
from tui_csr.errors import ConfigError

if TYPE_CHECKING:
    from tui_csr.attestation.reader import AttCert
    from tui_csr.core.models import Request
    from tui_csr.hsm.worker import AsyncToken

#: Largest response body read (a real one is a few KB).
MAX_RESPONSE = 4 * 1024 * 1024
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class FortanixProvider:
    """Key attestation from Fortanix DSM (SaaS or on-premises)."""

    name = "fortanix"
    needs_token = False

    def __init__(self, settings: FortanixSettings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._env = env  # None: os.environ at call time

    async def attest(self, request: Request, token: AsyncToken | None = None) -> AttestationResult:
        """Find the key by its label on DSM, fetch its attestation, check it certifies the
        CSR's key."""
        endpoint = check_endpoint(self.settings.endpoint)
        env = os.environ if self._env is None else self._env
        api_key = await asyncio.to_thread(read_api_key, self.settings, env)
        client = _Client(endpoint, api_key, self.settings.timeout)
        kid, body = await asyncio.to_thread(client.attestation_for, request.label)
        return parse_response(body, request, kid, endpoint)


def check_endpoint(raw: str) -> str:
    """The DSM base URL without a trailing slash; ConfigError when unset or not https.

    Plain http is accepted only for a loopback address (a local test server): anywhere else
    the API key would cross the network in clear text.
    """
    value = (raw or "").strip()
    if not value:
        raise ConfigError("Key attestation with Fortanix DSM needs the DSM address: set endpoint "
                          "in the [fortanix] table of the configuration (e.g. "
                          "https://amer.smartkey.io).", field="fortanix.endpoint")
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError(f"Fortanix endpoint '{value}' is not an https:// URL.",
                          field="fortanix.endpoint")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError(f"Fortanix endpoint '{value}' must use https://; over http the API "
                          "key would travel in clear text.", field="fortanix.endpoint")
    return value.rstrip("/")


def api_key_problem(settings: FortanixSettings, env: Mapping[str, str]) -> str | None:
    """None when an API key is configured (variable set or file named); else the reason.

    Cheap (no file read): for showing the action as unavailable before anything is tried.
    """
    name = settings.api_key_env or "FORTANIX_API_KEY"
    if env.get(name, "").strip() or settings.api_key_file.strip():
        return None
    return (f"No Fortanix DSM API key: set the environment variable {name} or api_key_file in "
            "the [fortanix] table of the configuration.")


def read_api_key(settings: FortanixSettings, env: Mapping[str, str]) -> str:
    """The app API key from the environment variable, else from the file; never logged."""
    name = settings.api_key_env or "FORTANIX_API_KEY"
    value = env.get(name, "").strip()
    source = f"environment variable {name}"
    if not value and settings.api_key_file.strip():
        path = Path(settings.api_key_file.strip()).expanduser()
        source = f"file {path}"
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"The Fortanix API key file {path} cannot be read: {reason}.",
                              field="fortanix.api_key_file") from exc
        if not value:
            raise ConfigError(f"The Fortanix API key file {path} is empty.",
                              field="fortanix.api_key_file")
    if not value:
        raise ConfigError(api_key_problem(settings, {}) or "", field="fortanix.api_key_env")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigError(f"The Fortanix API key in {source} contains spaces or control "
                          "characters.", field="fortanix.api_key_env")
    return value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would resend the Authorization header to wherever a redirect points.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _Client:
    """Blocking DSM calls; run in a worker thread."""

    def __init__(self, endpoint: str, api_key: str, timeout: float) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:  # never show the key, e.g. in a traceback's locals
        return f"_Client({self.endpoint!r})"

    def attestation_for(self, label: str) -> tuple[str, bytes]:
        """(kid, raw JSON body of the key attestation) of the key named ``label``."""
        kid = self.find_kid(label)
        body = self.request("POST", "/crypto/v1/keys/key_attestation",
                            json.dumps({"key": {"kid": kid}}).encode(),
                            doing=f"fetching the key attestation of '{label}'")
        return kid, body

    def find_kid(self, label: str) -> str:
        """The kid of the one security object named ``label``."""
        doing = f"looking up key '{label}'"
        body = self.request("GET", "/crypto/v1/keys?" + urlencode({"name": label}), None,
                            doing=doing)
        listing = _json(body, self.endpoint, doing)
        items = listing.get("items") if isinstance(listing, dict) else listing
        if not isinstance(items, list):
            raise AttestationError(f"Fortanix DSM at {self.endpoint} answered {doing} with an "
                                   "unexpected document (no list of keys).")
        found = [o for o in items if isinstance(o, dict) and o.get("kid")
                 and o.get("name", label) == label]
        if not found:
            raise AttestationError(f"Fortanix DSM at {self.endpoint} has no key named '{label}' "
                                   "that this app's API key can see.")
        if len(found) > 1:
            raise AttestationError(f"Fortanix DSM at {self.endpoint} has {len(found)} keys named "
                                   f"'{label}'; tui-csr cannot tell which one the CSR belongs to.")
        return str(found[0]["kid"])

    def request(self, method: str, path: str, data: bytes | None, *, doing: str) -> bytes:
        """One HTTP exchange; every failure becomes one sentence."""
        headers = {"Authorization": f"Basic {self._api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                body = resp.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, self.endpoint, doing) from None
        except TimeoutError:
            raise self._timeout() from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timeout() from None
            raise AttestationError(f"Cannot reach Fortanix DSM at {self.endpoint}: "
                                   f"{_reason(exc.reason)}.") from None
        except OSError as exc:  # connection reset or closed mid-answer
            raise AttestationError(f"The connection to Fortanix DSM at {self.endpoint} failed "
                                   f"while {doing}: {_reason(exc)}.") from None
        if len(body) > MAX_RESPONSE:
            raise AttestationError(f"Fortanix DSM at {self.endpoint} sent more than "
                                   f"{MAX_RESPONSE // (1024 * 1024)} MB while {doing}.")
        return body

    def _timeout(self) -> AttestationError:
        return AttestationError(f"Fortanix DSM at {self.endpoint} did not answer within "
                                f"{self.timeout:g} s.")


def _http_error(exc: urllib.error.HTTPError, endpoint: str, doing: str) -> AttestationError:
    status = exc.code
    detail = _detail(exc)
    if status == 401:
        return AttestationError("Fortanix DSM refused the API key (HTTP 401).")
    if status == 403:
        return AttestationError(f"Fortanix DSM denied {doing} (HTTP 403): the app may lack "
                                f"permission for this key{detail}.")
    if 300 <= status < 400:
        where = exc.headers.get("Location", "another address") if exc.headers else "elsewhere"
        return AttestationError(f"Fortanix DSM at {endpoint} redirected to {where} (HTTP "
                                f"{status}); set endpoint in [fortanix] to the final address.")
    return AttestationError(f"Fortanix DSM at {endpoint} answered HTTP {status} while "
                            f"{doing}{detail}.")


def _detail(exc: urllib.error.HTTPError) -> str:
    # DSM explains errors in a short text body; show its first line, bounded.
    try:
        text = exc.read(400).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the status alone is still a good message
        return ""
    line = " ".join(text.split())[:200]
    return f": {line}" if line else ""


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _json(body: bytes, endpoint: str, doing: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise AttestationError(f"Fortanix DSM at {endpoint} answered {doing} with something "
                               "that is not JSON.") from None


def parse_response(body: bytes, request: Request, kid: str, endpoint: str) -> AttestationResult:
    """Check a key attestation response and turn it into an :class:`AttestationResult`."""
    from tui_csr.attestation.check import check_attestation

    doc = _json(body, endpoint, "the key attestation request")
    statement = doc.get("attestation_statement") if isinstance(doc, dict) else None
    authority = doc.get("authority_chain") if isinstance(doc, dict) else None
    if not isinstance(statement, dict) or not isinstance(authority, list):
        raise AttestationError(f"Fortanix DSM at {endpoint} sent a key attestation without "
                               "attestation_statement and authority_chain.")
    fmt = statement.get("format")
    if fmt != "x509_certificate":
        raise AttestationError(f"Fortanix DSM sent an attestation statement in format '{fmt}'; "
                               "tui-csr reads only x509_certificate.")
    report = check_attestation(body, request_spki(request), vendor="Fortanix DSM")
    spki = check_same_spki(report.attested_spki_der, request,
                           "The Fortanix DSM key attestation statement")

    # The statement, then the whole authority chain as DSM sent it (issuer first).
    pem_chain = b"".join(pem.armor("CERTIFICATE", c.der)
                         for c in [report.leaf, *_authority(authority)])
    return AttestationResult(
        provider="fortanix", format="fortanix-json", data=body,
        chain=[item.cert.summary(item.role) for item in reversed(report.chain)],
        attested_spki_der=spki, request_id=request.id, key_label=request.label,
        description="Fortanix DSM key attestation", object_id=report.facts.object_id or kid,
        extra_files={".chain.pem": pem_chain}, report=report)


def _authority(items: list[Any]) -> list[AttCert]:
    from tui_csr.attestation.reader import AttCert, decode_base64_der

    return [AttCert.load(decode_base64_der(item, f"authority certificate {n}"),
                         f"authority certificate {n}") for n, item in enumerate(items, 1)]
