"""UI test fixtures: the real SoftHSM2 service, a scripted token for deterministic login flows
and snapshots, records with fixed ids and times, and a helper that waits for workers.

The scripted token stands in where the real one cannot be deterministic in-process: login is
per token (a wrong PIN after another test logged in is not even checked), and key material and
creation times change with every run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from textual.pilot import Pilot

from tests.integration.conftest import GROUP, data_dir, make_settings, service  # noqa: F401
from tui_csr.config import Settings
from tui_csr.core.keyspec import HashAlg, KeySpec, Scheme
from tui_csr.core.models import Group, Request, Status
from tui_csr.errors import TokenError
from tui_csr.hsm.keys import KeyPair
from tui_csr.hsm.profiles import PROFILES, TokenProfile
from tui_csr.hsm.token import TokenInfo
from tui_csr.hsm.worker import AsyncToken
from tui_csr.service import CsrService
from tui_csr.store.repo import Store

if TYPE_CHECKING:
    from tui_csr.core.p11uri import KeySelector
    from tui_csr.hsm.existing import ExistingKey

FAKE_LABEL = "demo"
FAKE_PIN = "1234"
USER = "alice"
FIXED = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)

#: A real P-256 CSR for www.example.com (made once with `cryptography`), for fixed records.
PEM = """-----BEGIN CERTIFICATE REQUEST-----
MIIBJjCBzAIBADA9MRgwFgYDVQQDDA93d3cuZXhhbXBsZS5jb20xFDASBgNVBAoM
C0V4YW1wbGUgTHRkMQswCQYDVQQGEwJERTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABKt8/l4fcwWCi6diWWitrHnIyh/lB+lnTSsf7LbcIGblQIUcLayOZKb8imMw
Ek4RcWXga445pbIeCvY6z0i0fD+gLTArBgkqhkiG9w0BCQ4xHjAcMBoGA1UdEQQT
MBGCD3d3dy5leGFtcGxlLmNvbTAKBggqhkjOPQQDAgNJADBGAiEAsa7eK98ZLYuW
FKGnPypDlWV4ypm/f829lgym4TiQWewCIQC/60VvokylQ6aSDs+bGHMWtNQoROym
8iWEOxQ7wvKRdA==
-----END CERTIFICATE REQUEST-----
"""


class FakeToken:
    """A scripted token (the SyncToken protocol) that says what SoftHSM says on a wrong PIN."""

    def __init__(self, label: str = FAKE_LABEL, pin: str = FAKE_PIN,
                 login_required: bool = True, *, pin_hint: str | None = None,
                 protected_auth_path: bool = False) -> None:
        self.token_label: str | None = label
        self._pin = pin
        self._login_required = login_required
        self._pin_hint = pin_hint
        #: A PIN pad: the login takes no PIN; ``pad_accepts`` says whether the device's works.
        self._protected = protected_auth_path
        self.pad_accepts = True
        self.logged_in = False
        self.attempts = 0

    def open(self) -> TokenInfo:
        return self.info()

    def info(self) -> TokenInfo:
        return TokenInfo(label=self.token_label or "", serial="0001", manufacturer="Test",
                         model="Fake", login_required=self._login_required,
                         protected_auth_path=self._protected, pin_hint=self._pin_hint)

    def login(self, pin: str | None) -> TokenInfo:
        self.attempts += 1
        if self._protected:
            if pin is not None or not self.pad_accepts:
                raise TokenError(f"The PIN entered on the device for token "
                                 f"'{self.token_label}' was wrong.", field="pin",
                                 code="CKR_PIN_INCORRECT")
            self.logged_in = True
            return self.info()
        if self._login_required and pin != self._pin:
            raise TokenError(f"Wrong PIN for token '{self.token_label}'. Few tries are left "
                             "before the PIN locks.", field="pin", code="CKR_PIN_INCORRECT")
        self.logged_in = True
        return self.info()

    def close(self) -> None:
        self.logged_in = False

    def supports(self, spec: KeySpec, ec_sizes: bool = False) -> str | None:
        return None

    def list_keys(self) -> list:
        """The keys of the sample records (ids 1..9): the start-up orphan scan finds nothing."""
        from tui_csr.hsm.token import TokenKey

        return [TokenKey(bytes.fromhex(f"{n:040x}"), f"k{n}", True,
                         True, False) for n in range(1, 10)]

    def label_in_use(self, label: str) -> bool:
        return False

    # -- the rest of the SyncToken protocol: what these screens never reach ------------------
    # (tests/house/test_protocols.py checks that every member of the protocol is here).
    @property
    def profile(self) -> TokenProfile:
        return PROFILES["generic"]

    def _unscripted(self, what: str) -> NoReturn:
        raise TokenError(f"The scripted test token does not do {what}.", field="token")

    def labels_in_use(self, limit: int | None = None) -> set[str] | None:
        return set()

    def new_key_id(self) -> bytes:
        return bytes(20)

    def generate_keypair(self, spec: KeySpec, label: str, key_id: bytes = b"", *,
                         always_authenticate: bool = False) -> KeyPair:
        self._unscripted("key generation")

    def set_key_id(self, old: bytes, new: bytes) -> bytes:
        return old

    def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
             scheme: Scheme, pin: str | None = None) -> bytes:
        self._unscripted("signatures")

    def remove_legacy_markers(self, key_ids: list[bytes] | set[bytes]) -> int:
        return 0

    def read_vendor_attribute(self, key_id: bytes, attr_type: int,
                              object_class: str = "private") -> bytes | None:
        return None

    def describe(self) -> Any:
        self._unscripted("module descriptions")

    def destroy(self, key_id: bytes) -> int:
        return 0

    def key_exists(self, key_id: bytes) -> bool:
        return any(k.key_id == key_id for k in self.list_keys())

    def key_attributes(self, key_id: bytes) -> dict[str, bool]:
        self._unscripted("key attributes")

    def object_count(self) -> int:
        return 2 * len(self.list_keys())

    def store_certificate(self, key_id: bytes, label: str, cert_der: bytes, subject_der: bytes,
                          issuer_der: bytes, serial_der: bytes) -> None:
        self._unscripted("certificate objects")

    def certificates(self, key_id: bytes) -> list[bytes]:
        return []

    def destroy_certificates(self, key_id: bytes) -> int:
        return 0

    def public_key_spki(self, key_id: bytes) -> bytes:
        self._unscripted("public keys")

    def find_key(self, selector: KeySelector) -> ExistingKey:
        self._unscripted("existing keys")

    def destroy_certificate(self, key_id: bytes, cert_der: bytes) -> int:
        return 0


def fake_service(path: Path, *, groups: tuple[str, ...] = (GROUP,), login_required: bool = True,
                 attestation: str = "none", token: FakeToken | None = None) -> CsrService:
    """A service over a fresh store in ``path`` and a :class:`FakeToken`; the user is alice,
    an administrator."""
    store = Store.open(path)
    for name in groups:
        store.add_group(Group(name, policy="web-policy", created=FIXED, created_by=USER))
    settings = Settings(module="/fake/module.so", token=FAKE_LABEL, data_dir=path,
                        admins=[USER], attestation=attestation)
    fake = token if token is not None else FakeToken(login_required=login_required)
    return CsrService(settings, store, token=AsyncToken(fake), user=USER)


def make_request(n: int, label: str, cn: str, *, key_spec: str = "P-256", hash_: str = "SHA256",
                 scheme: str = "ECDSA", groups: tuple[str, ...] = (GROUP,),
                 owner: str | None = None, hours: int = 0) -> Request:
    """A request with a fixed id (``n``) and creation time (``hours`` after :data:`FIXED`)."""
    return Request(
        id=f"{n:032x}", label=label, subject=f"CN={cn}", subject_fields={"CN": cn}, sans=[],
        key_spec=key_spec, hash=hash_, scheme=scheme, token_label=FAKE_LABEL,
        key_id=f"{n:040x}", pkcs11_uri=f"pkcs11:token={FAKE_LABEL};object={label};type=private",
        csr_pem=PEM, groups=list(groups), owner=owner,
        created=FIXED.replace(hour=FIXED.hour + hours), created_by=USER, status=Status.PENDING)


SAMPLE = (
    make_request(1, "www-2026", "www.example.com", owner="bob", hours=0),
    make_request(2, "api-rsa", "api.example.com", key_spec="RSA3072", scheme="PKCS1v15",
                 groups=("Web", "Internal"), hours=1),
    make_request(3, "mail-pss", "mail.example.org", key_spec="RSA4096", hash_="SHA384",
                 scheme="PSS", groups=("Internal",), owner="carol", hours=2),
    make_request(4, "vpn-p384", "vpn.example.net", key_spec="P-384", hash_="SHA384",
                 owner="bob", hours=3),
)


def add_requests(svc: CsrService, requests: tuple[Request, ...] = SAMPLE) -> None:
    """Put ``requests`` straight into the service's store (groups they name are created)."""
    known = {g.name for g in svc.store.list_groups()}
    for request in requests:
        for name in request.groups:
            if name not in known:
                svc.store.add_group(Group(name, created=FIXED, created_by=USER))
                known.add(name)
        svc.store.add_request(request)


@pytest.fixture
def fake(tmp_path: Path) -> CsrService:
    """A fake-token service with the group Web and no requests."""
    return fake_service(tmp_path / "fake-data")


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC for the test (the Created column shows local time)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


async def settle(pilot: Pilot) -> None:
    """Wait until no worker runs and the messages they posted are handled (workers start
    workers: start-up, then login, then the table load)."""
    app = pilot.app
    for _ in range(10):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            break
    await pilot.pause()


@pytest.fixture
def real_settings(token, data_dir: Path) -> Settings:  # noqa: F811 - data_dir is the fixture
    """Settings on the session SoftHSM2 token (not logged in)."""
    return make_settings(token, data_dir)
