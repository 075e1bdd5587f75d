"""One path to the token: a single worker thread and the async facade the program awaits.

Every PKCS#11 call in the process runs on :data:`TOKEN_THREAD`. The calls release the GIL, so the
asyncio loop (the TUI) keeps running while a key is generated; because there is only one thread,
the module (which runs without its own locking after ``C_Initialize(NULL)``) is never entered
twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tui_csr.core.keyspec import HashAlg, KeySpec, Scheme
from tui_csr.hsm.profiles import TokenProfile
from tui_csr.hsm.token import KeyPair, TokenInfo, TokenKey

if TYPE_CHECKING:
    from tui_csr.core.p11uri import KeySelector
    from tui_csr.hsm.existing import ExistingKey

T = TypeVar("T")


class TokenThread:
    """The single thread that owns the PKCS#11 module."""

    #: How long :meth:`shutdown` waits for a call still running on the token (a keygen that an
    #: interrupt left behind) before giving up on an orderly finish.
    SHUTDOWN_WAIT = 60.0

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._guard = threading.Lock()
        self.thread_ident: int | None = None
        #: The facades whose token may hold an open session (see :meth:`shutdown`).
        self._open: weakref.WeakSet[AsyncToken] = weakref.WeakSet()

    def _ensure(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="pkcs11",
                    initializer=self._note_thread)
            return self._executor

    def _note_thread(self) -> None:
        self.thread_ident = threading.get_ident()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the token thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ensure(), functools.partial(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking variant for code outside any event loop (never call it from the loop)."""
        return self._ensure().submit(fn, *args, **kwargs).result()

    # -- orderly shutdown ------------------------------------------------------------------------
    # A process must not exit while a thread is inside the module or the module is still
    # initialised: glibc then unwinds threads through C/C++ frames at interpreter exit, and a
    # frame that catches the unwind aborts the process ("FATAL: exception not rethrown", exit
    # -6). So the sessions are closed and C_Finalize runs on this thread, then the thread ends.

    def shutdown(self) -> None:
        """Close every open session, finalise the PKCS#11 modules (C_Finalize) on the token
        thread, and stop the thread. Idempotent; waits for a call still running on the token.

        For the end of a process (the CLI calls it after every command, and it runs at
        interpreter exit in any case). A later call starts a new thread; tokens must then be
        opened again (their sessions are gone)."""
        with self._guard:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        future = executor.submit(self._finish, list(self._open))
        with contextlib.suppress(FutureTimeout):
            future.result(timeout=self.SHUTDOWN_WAIT)
        executor.shutdown(wait=future.done())
        self.thread_ident = None

    def _finish(self, tokens: list[AsyncToken]) -> None:
        """On the token thread: finalise every loaded module. C_Finalize ends every session
        of the process (PKCS#11: the application is done with the library; SoftHSM and
        p11-kit's client close them), so the sessions are forgotten, not closed one by one
        first; a token that cannot be forgotten so is closed."""
        for token in tokens:
            token._close_here(finalizing=True)
        finalize_modules()


def finalize_modules() -> None:
    """C_Finalize every module python-pkcs11 has initialised (on the calling thread, which must
    be the token thread). python-pkcs11 keeps its loaded modules in ``pkcs11._loaded`` and
    initialises one again on the next ``pkcs11.lib(path)``; it would finalise a module only when
    the lib object is freed, at interpreter teardown, too late."""
    pkcs11 = sys.modules.get("pkcs11")
    loaded = getattr(pkcs11, "_loaded", None) if pkcs11 is not None else None
    for lib in list((loaded or {}).values()):
        if getattr(lib, "initialized", False):
            with contextlib.suppress(Exception):  # a module that fails to finalise: nothing to do
                lib.finalize()


#: The process-wide token thread.
TOKEN_THREAD = TokenThread()


def shutdown_token_thread() -> None:
    """Close the sessions and finalise the module on the token thread (:meth:`TokenThread.shutdown`
    of :data:`TOKEN_THREAD`); the CLI calls it on every path out of ``main``."""
    TOKEN_THREAD.shutdown()


# The same at interpreter exit, for every other way out (a script calling the CLI's main in a
# loop, the test suite, an uncaught exception): threading's exit hooks run on the main thread
# before the interpreter starts tearing down, last registered first, so this runs while the
# token thread (whose executor registered its own hook when concurrent.futures.thread was
# imported above) still takes work.
_register_exit = getattr(threading, "_register_atexit", None)
if _register_exit is not None:
    _register_exit(shutdown_token_thread)


class SyncToken(Protocol):
    """What :class:`AsyncToken` needs of a token: :class:`~tui_csr.hsm.token.Pkcs11Token`, or a
    stand-in in tests of vendor features that SoftHSM lacks."""

    token_label: str | None

    @property
    def profile(self) -> TokenProfile: ...
    def open(self) -> TokenInfo: ...
    def info(self) -> TokenInfo: ...
    def login(self, pin: str | None) -> TokenInfo: ...
    def close(self) -> None: ...
    def supports(self, spec: KeySpec, ec_sizes: bool = False) -> str | None: ...
    def label_in_use(self, label: str) -> bool: ...
    def labels_in_use(self, limit: int | None = None) -> set[str] | None: ...
    def new_key_id(self) -> bytes: ...
    def generate_keypair(self, spec: KeySpec, label: str, key_id: bytes = b"", *,
                         always_authenticate: bool = False) -> KeyPair: ...
    def set_key_id(self, old: bytes, new: bytes) -> bytes: ...
    def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
             scheme: Scheme, pin: str | None = None) -> bytes: ...
    def remove_legacy_markers(self, key_ids: list[bytes] | set[bytes]) -> int: ...
    def read_vendor_attribute(self, key_id: bytes, attr_type: int,
                              object_class: str = "private") -> bytes | None: ...
    def describe(self) -> Any: ...
    def destroy(self, key_id: bytes) -> int: ...
    def key_exists(self, key_id: bytes) -> bool: ...
    def key_attributes(self, key_id: bytes) -> dict[str, bool]: ...
    def list_keys(self) -> list[TokenKey]: ...
    def object_count(self) -> int: ...
    def store_certificate(self, key_id: bytes, label: str, cert_der: bytes, subject_der: bytes,
                          issuer_der: bytes, serial_der: bytes) -> None: ...
    def certificates(self, key_id: bytes) -> list[bytes]: ...
    def destroy_certificates(self, key_id: bytes) -> int: ...
    def public_key_spki(self, key_id: bytes) -> bytes: ...
    def find_key(self, selector: KeySelector) -> ExistingKey: ...
    def destroy_certificate(self, key_id: bytes, cert_der: bytes) -> int: ...


class AsyncToken:
    """The async facade: each method runs the matching :class:`SyncToken` call on the token
    thread. This is the only object the services use to reach a token."""

    def __init__(self, token: SyncToken, thread: TokenThread = TOKEN_THREAD) -> None:
        from tui_csr.hsm.interprocess import serialised

        # Each call under the inter-process lock where the token's profile needs one (SoftHSM).
        self._token = serialised(token)
        self._thread = thread

    async def shutdown(self) -> None:
        """Close this token's session on the token thread and, when no other token of the
        process has one open, finalise the module there too (C_Finalize). The token must be
        opened again to be used after this."""
        await self._thread.run(self._shutdown_here)

    def _shutdown_here(self) -> None:
        last = not any(token is not self for token in self._thread._open)
        self._close_here(finalizing=last)  # the last one: C_Finalize ends the session
        if last:
            finalize_modules()

    def _close_here(self, finalizing: bool = False) -> None:
        """On the token thread: close the session (never raises: a dying session is closed);
        when ``finalizing`` (C_Finalize follows and ends it), only forget it."""
        self._thread._open.discard(self)
        abandon = getattr(self._token, "abandon", None) if finalizing else None
        with contextlib.suppress(Exception):
            if abandon is not None:
                abandon()
            else:
                self._token.close()

    @property
    def label(self) -> str:
        """The selected token's label (after :meth:`open`)."""
        return self._token.token_label or ""

    async def open(self) -> TokenInfo:
        """Load the module and select the token."""
        self._thread._open.add(self)  # before: a shutdown must see a token that is opening
        return await self._thread.run(self._token.open)

    async def info(self) -> TokenInfo:
        """Token label, serial and PIN flags."""
        return await self._thread.run(self._token.info)

    async def login(self, pin: str | None) -> TokenInfo:
        """Log in once; the PIN is not kept."""
        self._thread._open.add(self)
        return await self._thread.run(self._token.login, pin)

    async def close(self) -> None:
        """Close the session."""
        await self._thread.run(self._token.close)
        self._thread._open.discard(self)

    async def supports(self, spec: KeySpec, ec_sizes: bool = False) -> str | None:
        """None when the token can make ``spec``, else the reason it cannot; ``ec_sizes``
        checks an EC curve's size against the slot's mechanism info too (one more call, read
        once: the wizard's list of key specs; generation asks only when the token refuses)."""
        if ec_sizes:
            return await self._thread.run(functools.partial(self._token.supports, spec,
                                                            ec_sizes=True))
        return await self._thread.run(self._token.supports, spec)

    async def label_in_use(self, label: str) -> bool:
        """True when a key object on the token has this label."""
        return await self._thread.run(self._token.label_in_use, label)

    async def labels_in_use(self, limit: int | None = None) -> set[str] | None:
        """Every CKA_LABEL on the token in one scan (None when it holds more than ``limit``
        objects); a batch checks its labels against it instead of searching per request."""
        return await self._thread.run(self._token.labels_in_use, limit)

    @property
    def profile(self) -> TokenProfile:
        """The token's profile (chosen at :meth:`open`; plain data, no token call)."""
        return self._token.profile

    async def new_key_id(self) -> bytes:
        """A random CKA_ID of the profile's length, free on the token."""
        return await self._thread.run(self._token.new_key_id)

    async def generate_keypair(self, spec: KeySpec, label: str, key_id: bytes = b"", *,
                               always_authenticate: bool = False) -> KeyPair:
        """Generate a non-extractable signing key pair with CKA_ID ``key_id`` (drawn when
        empty), read back and checked; a pair that fails a check is destroyed (a failed
        destroy raises a TokenError naming ``tui-csr orphans``)."""
        return await self._thread.run(
            functools.partial(self._token.generate_keypair, spec, label, key_id,
                              always_authenticate=always_authenticate))

    async def set_key_id(self, old: bytes, new: bytes) -> bytes:
        """Rewrite the pair's CKA_ID where the token allows it; the id it has afterwards."""
        return await self._thread.run(self._token.set_key_id, old, new)

    async def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
                   scheme: Scheme, pin: str | None = None) -> bytes:
        """Sign ``data`` on the token with key ``key_id``; ``pin`` is the context-specific
        login of a key with CKA_ALWAYS_AUTHENTICATE (not kept)."""
        if pin is None:
            return await self._thread.run(self._token.sign, key_id, data, spec, hash_alg,
                                          scheme)
        return await self._thread.run(self._token.sign, key_id, data, spec, hash_alg, scheme,
                                      pin)

    async def remove_legacy_markers(self, key_ids: list[bytes] | set[bytes]) -> int:
        """Destroy the CKO_DATA markers of earlier versions that name ``key_ids``."""
        return await self._thread.run(self._token.remove_legacy_markers, key_ids)

    async def describe(self) -> Any:
        """Every slot and token of the module (:class:`~tui_csr.hsm.describe.ModuleDescription`);
        needs no login and selects no token."""
        return await self._thread.run(self._token.describe)

    async def read_vendor_attribute(self, key_id: bytes, attr_type: int,
                                    object_class: str = "private") -> bytes | None:
        """Raw value of a vendor attribute (e.g. Luna's CKA_PKC_ECC) of key ``key_id``; None
        when the token does not know it for that key (key attestation)."""
        return await self._thread.run(self._token.read_vendor_attribute, key_id, attr_type,
                                      object_class)

    async def destroy(self, key_id: bytes) -> int:
        """Destroy the objects with CKA_ID ``key_id``; returns the count destroyed."""
        return await self._thread.run(self._token.destroy, key_id)

    async def key_exists(self, key_id: bytes) -> bool:
        """True when the private key ``key_id`` is on the token."""
        return await self._thread.run(self._token.key_exists, key_id)

    async def key_attributes(self, key_id: bytes) -> dict[str, bool]:
        """SENSITIVE, EXTRACTABLE, ... of the private key ``key_id``."""
        return await self._thread.run(self._token.key_attributes, key_id)

    async def list_keys(self) -> list[TokenKey]:
        """Every key pair on the token, with tui-csr's marker flag."""
        return await self._thread.run(self._token.list_keys)

    async def object_count(self) -> int:
        """Objects visible to the session."""
        return await self._thread.run(self._token.object_count)

    async def store_certificate(self, key_id: bytes, label: str, cert_der: bytes,
                                subject_der: bytes, issuer_der: bytes, serial_der: bytes) -> None:
        """Store a certificate object beside the key (same CKA_ID)."""
        await self._thread.run(self._token.store_certificate, key_id, label, cert_der,
                               subject_der, issuer_der, serial_der)

    async def certificates(self, key_id: bytes) -> list[bytes]:
        """DER of the certificate objects with CKA_ID ``key_id``."""
        return await self._thread.run(self._token.certificates, key_id)

    async def destroy_certificates(self, key_id: bytes) -> int:
        """Remove certificate objects with CKA_ID ``key_id``."""
        return await self._thread.run(self._token.destroy_certificates, key_id)

    async def public_key_spki(self, key_id: bytes) -> bytes:
        """SubjectPublicKeyInfo of the public key ``key_id``."""
        return await self._thread.run(self._token.public_key_spki, key_id)

    async def find_key(self, selector: KeySelector) -> ExistingKey:
        """The existing key pair a :class:`~tui_csr.core.p11uri.KeySelector` names
        (:class:`~tui_csr.hsm.existing.ExistingKey`: CKA_ID, label, SPKI, private-key flags)."""
        return await self._thread.run(self._token.find_key, selector)

    async def destroy_certificate(self, key_id: bytes, cert_der: bytes) -> int:
        """Destroy the certificate object with CKA_ID ``key_id`` and this DER value."""
        return await self._thread.run(self._token.destroy_certificate, key_id, cert_der)


async def list_tokens(module_path: str, profile: str | None = None) -> Any:
    """Every slot and token of the module at ``module_path``
    (:class:`~tui_csr.hsm.describe.ModuleDescription`), without selecting a token or logging in:
    ``tui-csr tokens`` and the TUI's token picker. Runs on the token thread; ConfigError for a
    module that cannot be loaded, TokenError for one that cannot list its slots."""
    from pkcs11 import exceptions as px

    from tui_csr.hsm.errors import token_error
    from tui_csr.hsm.token import Pkcs11Token

    token = AsyncToken(Pkcs11Token(module_path, profile=profile))
    try:
        return await token.describe()
    except px.PKCS11Error as exc:
        raise token_error(exc, "listing the module's slots and tokens") from exc
