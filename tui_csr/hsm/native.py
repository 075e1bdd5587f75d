"""The PKCS#11 module, slots, tokens, sessions and objects over the module's own function table
(ctypes), in the fewest calls the standard allows.

python-pkcs11's loader asks for the PKCS#11 3.0 and 3.2 interfaces (two C_GetInterface) beside
C_GetFunctionList, counts the slots before listing them (two C_GetSlotList) and reads every
slot's info (C_GetSlotInfo per slot) before a token can be opened; against a network HSM each
is a round trip. Here: one C_GetFunctionList, C_Initialize, C_GetInfo, one C_GetSlotList into a
buffer, C_GetTokenInfo per slot (the labels are needed to choose the token); C_GetSlotInfo only
when a slot's description is asked for (``tui-csr tokens``).

The classes answer the part of python-pkcs11's API that tui-csr uses (``lib.get_slots``,
``slot.get_token``, ``token.open``, ``session.get_objects``/``create_object``/``generate_keypair``,
``obj[Attribute.X]``, ``obj.sign`` ...), with python-pkcs11's enums and exceptions, so the token
code and the test stand-ins that wrap these objects stay one path; the hot calls (keygen, bulk
attribute reads, sign) are :class:`tui_csr.hsm.raw.RawModule`'s.

One instance per module path and process (:func:`load_library`): C_Initialize is called once,
and p11-kit's client hands out a new, uninitialised instance for each C_GetFunctionList. When
python-pkcs11 has loaded the module in this process first (tests, the bench's bare baseline),
its function table and its initialisation are shared instead of initialising twice. The
library is registered in ``pkcs11._loaded`` as python-pkcs11 registers its own, so that
:func:`tui_csr.hsm.worker.finalize_modules` finalises it and ``pkcs11.lib(path)`` in the same
process gets this instance instead of a second C_Initialize.

Every call runs on the token thread (:mod:`tui_csr.hsm.worker`), as all PKCS#11 calls do.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Iterator
from typing import Any

from tui_csr.hsm.raw import CK_ULONG, RawModule, RawObject, check

_CKR_BUFFER_TOO_SMALL = 0x150
_CKF_RW_SESSION, _CKF_SERIAL_SESSION = 0x2, 0x4
_CKU_USER = 1


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _Info(ctypes.Structure):
    _fields_ = [("cryptokiVersion", _Version), ("manufacturerID", ctypes.c_char * 32),
                ("flags", CK_ULONG), ("libraryDescription", ctypes.c_char * 32),
                ("libraryVersion", _Version)]


class _SlotInfo(ctypes.Structure):
    _fields_ = [("slotDescription", ctypes.c_char * 64), ("manufacturerID", ctypes.c_char * 32),
                ("flags", CK_ULONG), ("hardwareVersion", _Version),
                ("firmwareVersion", _Version)]


class _TokenInfo(ctypes.Structure):
    _fields_ = [("label", ctypes.c_char * 32), ("manufacturerID", ctypes.c_char * 32),
                ("model", ctypes.c_char * 16), ("serialNumber", ctypes.c_char * 16),
                ("flags", CK_ULONG), ("ulMaxSessionCount", CK_ULONG),
                ("ulSessionCount", CK_ULONG), ("ulMaxRwSessionCount", CK_ULONG),
                ("ulRwSessionCount", CK_ULONG), ("ulMaxPinLen", CK_ULONG),
                ("ulMinPinLen", CK_ULONG), ("ulTotalPublicMemory", CK_ULONG),
                ("ulFreePublicMemory", CK_ULONG), ("ulTotalPrivateMemory", CK_ULONG),
                ("ulFreePrivateMemory", CK_ULONG), ("hardwareVersion", _Version),
                ("firmwareVersion", _Version), ("utcTime", ctypes.c_char * 16)]


class _MechInfo(ctypes.Structure):
    _fields_ = [("ulMinKeySize", CK_ULONG), ("ulMaxKeySize", CK_ULONG), ("flags", CK_ULONG)]


def _text(raw: bytes) -> str:
    """A blank-padded CK_UTF8CHAR field as python-pkcs11 decodes it."""
    return raw.rstrip(b"\0").decode("utf-8", "replace").rstrip()


class LoadError(Exception):
    """The file could not be loaded as a PKCS#11 module (the loader's reason as text)."""


class NativeLib:
    """A loaded, initialised PKCS#11 module (python-pkcs11's ``lib``, as far as tui-csr uses it)."""

    def __init__(self, so: str, raw: RawModule, handle: Any, shared: Any = None) -> None:
        self.so = so
        self.raw = raw
        self._handle = handle  # the dlopen handle (never closed: the module stays mapped)
        self._shared = shared  # python-pkcs11's lib whose table and initialisation are used
        self._initialized = False
        self.manufacturer_id = self.library_description = ""
        self.cryptoki_version = self.library_version = (0, 0)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        """Whether C_Initialize was called and C_Finalize not since."""
        if self._shared is not None:
            return bool(self._shared.initialized)
        return self._initialized

    def initialize(self) -> None:
        """C_Initialize(NULL) (as python-pkcs11 calls it), once."""
        if self._shared is not None:
            if not self._shared.initialized:
                self._shared.initialize()
            return
        if not self._initialized:
            check(self.raw.fn("C_Initialize")(None))
            self._initialized = True

    def finalize(self) -> None:
        """C_Finalize(NULL): every session of the process ends with it."""
        if self._shared is not None:
            self._shared.finalize()
            return
        if self._initialized:
            self._initialized = False
            check(self.raw.fn("C_Finalize")(None))

    def unload(self) -> None:
        """Finalise (python-pkcs11's ``pkcs11.unload`` calls this)."""
        import contextlib

        with contextlib.suppress(Exception):
            self.finalize()

    def _read_info(self) -> None:
        if self._shared is not None:
            lib = self._shared
            self.manufacturer_id, self.library_description = (lib.manufacturer_id,
                                                              lib.library_description)
            self.cryptoki_version, self.library_version = (lib.cryptoki_version,
                                                           lib.library_version)
            return
        info = _Info()
        check(self.raw.fn("C_GetInfo")(ctypes.byref(info)))
        self.manufacturer_id = _text(info.manufacturerID)
        self.library_description = _text(info.libraryDescription)
        self.cryptoki_version = (info.cryptokiVersion.major, info.cryptokiVersion.minor)
        self.library_version = (info.libraryVersion.major, info.libraryVersion.minor)

    # -- slots ------------------------------------------------------------------------------------
    def get_slots(self, token_present: bool = False) -> list[NativeSlot]:
        """The slots (with a token present when ``token_present``): one C_GetSlotList into a
        buffer of 64 (again with the count the module names when that is short)."""
        count = CK_ULONG(64)
        buf = (CK_ULONG * 64)()
        call = self.raw.fn("C_GetSlotList")
        rv = call(1 if token_present else 0, buf, ctypes.byref(count))
        if rv == _CKR_BUFFER_TOO_SMALL:
            buf = (CK_ULONG * count.value)()
            rv = call(1 if token_present else 0, buf, ctypes.byref(count))
        check(rv)
        return [NativeSlot(self, slot_id) for slot_id in buf[:count.value]]

    def __repr__(self) -> str:
        return f"<NativeLib ({self.so})>"


class NativeSlot:
    """One slot (python-pkcs11's ``Slot``); its info is read only when asked for."""

    def __init__(self, lib: NativeLib, slot_id: int) -> None:
        self.lib = lib
        self.raw = lib.raw
        self.slot_id = slot_id
        self._info: _SlotInfo | None = None

    def _slot_info(self) -> _SlotInfo:
        if self._info is None:
            info = _SlotInfo()
            check(self.raw.fn("C_GetSlotInfo")(self.slot_id, ctypes.byref(info)))
            self._info = info
        return self._info

    @property
    def slot_description(self) -> str:
        """CK_SLOT_INFO.slotDescription (one C_GetSlotInfo, when first asked)."""
        return _text(self._slot_info().slotDescription)

    @property
    def manufacturer_id(self) -> str:
        """CK_SLOT_INFO.manufacturerID."""
        return _text(self._slot_info().manufacturerID)

    @property
    def flags(self) -> Any:
        """CK_SLOT_INFO.flags (:class:`pkcs11.SlotFlag`)."""
        from pkcs11 import SlotFlag

        return SlotFlag(self._slot_info().flags)

    def get_token(self) -> NativeToken:
        """C_GetTokenInfo (TokenNotPresent for an empty slot)."""
        info = _TokenInfo()
        check(self.raw.fn("C_GetTokenInfo")(self.slot_id, ctypes.byref(info)))
        return NativeToken(self, info)

    def get_mechanisms(self) -> set[Any]:
        """The mechanism list (one C_GetMechanismList), as python-pkcs11's enums where known."""
        from pkcs11 import Mechanism

        out: set[Any] = set()
        for value in self.raw.mechanisms(self.slot_id):
            try:
                out.add(Mechanism(value))
            except ValueError:
                out.add(value)
        return out

    def get_mechanism_info(self, mechanism: Any) -> Any:
        """C_GetMechanismInfo, as python-pkcs11's ``MechanismInfo``."""
        from pkcs11.types import MechanismInfo

        info = _MechInfo()
        check(self.raw.fn("C_GetMechanismInfo")(self.slot_id, int(mechanism),
                                                ctypes.byref(info)))
        return MechanismInfo(self, mechanism, ulMinKeySize=info.ulMinKeySize,  # type: ignore[arg-type]
                             ulMaxKeySize=info.ulMaxKeySize, flags=info.flags)

    def __repr__(self) -> str:
        return f"<NativeSlot (slotID={self.slot_id})>"


class NativeToken:
    """The token in a slot, as C_GetTokenInfo described it (python-pkcs11's ``Token``)."""

    def __init__(self, slot: NativeSlot, info: _TokenInfo) -> None:
        self.slot = slot
        self.label = _text(info.label)
        self.serial = info.serialNumber.rstrip(b"\0").rstrip()
        self.manufacturer_id = _text(info.manufacturerID)
        self.model = _text(info.model)
        self.token_flags = int(info.flags)

    @property
    def flags(self) -> Any:
        """CK_TOKEN_INFO.flags (:class:`pkcs11.TokenFlag`)."""
        from pkcs11 import TokenFlag

        return TokenFlag(self.token_flags)

    def open(self, rw: bool = False, user_pin: Any = None, attribute_mapper: Any = None,
             **_ignored: Any) -> NativeSession:
        """C_OpenSession, then C_Login as the user with ``user_pin`` (``pkcs11.PROTECTED_AUTH``:
        on the device's PIN pad). Like python-pkcs11, a failed login leaves the session to
        C_Finalize."""
        from pkcs11 import PROTECTED_AUTH

        raw = self.slot.raw
        flags = _CKF_SERIAL_SESSION | (_CKF_RW_SESSION if rw else 0)
        handle = CK_ULONG()
        check(raw.fn("C_OpenSession")(self.slot.slot_id, flags, None, None,
                                      ctypes.byref(handle)))
        session = NativeSession(self, handle.value, rw, attribute_mapper)
        if user_pin is PROTECTED_AUTH:
            check(raw.fn("C_Login")(handle.value, _CKU_USER, None, 0))
        elif user_pin is not None:
            secret = str(user_pin).encode("utf-8")
            check(raw.fn("C_Login")(handle.value, _CKU_USER, secret, len(secret)))
        return session

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"<NativeToken (label={self.label!r})>"


class NativeSession:
    """An open session (python-pkcs11's ``Session``, as far as tui-csr uses it)."""

    def __init__(self, token: NativeToken, handle: int, rw: bool, mapper: Any = None) -> None:
        self.token = token
        self.handle = handle
        self.rw = rw
        self.raw = token.slot.raw if mapper is None else RawModule.with_mapper(
            token.slot.raw, mapper)

    def close(self) -> None:
        """C_CloseSession (closing the token's last session logs it out: no C_Logout)."""
        self.raw.close_session(self.handle)

    def __enter__(self) -> NativeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- objects -----------------------------------------------------------------------------------
    def find(self, attrs: dict[Any, Any] | None = None, limit: int | None = None,
             batch_size: int = 16) -> list[NativeObject]:
        """C_FindObjectsInit, C_FindObjects (``batch_size`` handles a call, until the search
        ends or ``limit`` objects are found), and C_FindObjectsFinal on every path."""
        raw = self.raw
        template, count, keep = raw.template(attrs or {})
        check(raw.fn("C_FindObjectsInit")(self.handle, template, count))
        del keep
        found: list[int] = []
        try:
            buf = (CK_ULONG * batch_size)()
            got = CK_ULONG()
            while limit is None or len(found) < limit:
                check(raw.fn("C_FindObjects")(self.handle, buf, batch_size, ctypes.byref(got)))
                found.extend(buf[:got.value])
                if got.value < batch_size:
                    break
        except BaseException:
            raw.fn("C_FindObjectsFinal")(self.handle)  # the search's own failure is raised
            raise
        check(raw.fn("C_FindObjectsFinal")(self.handle))
        if limit is not None:
            found = found[:limit]
        return [NativeObject(raw, self, h) for h in found]

    def get_objects(self, attrs: dict[Any, Any] | None = None,
                    batch_size: int = 16) -> Iterator[NativeObject]:
        """The objects matching ``attrs`` (the search is finished before the first is given)."""
        return iter(self.find(attrs, batch_size=batch_size))

    def create_object(self, attrs: dict[Any, Any]) -> NativeObject:
        """C_CreateObject."""
        template, count, keep = self.raw.template(attrs)
        handle = CK_ULONG()
        check(self.raw.fn("C_CreateObject")(self.handle, template, count, ctypes.byref(handle)))
        del keep
        return NativeObject(self.raw, self, handle.value)

    def generate_pair(self, mechanism: int, public: dict[Any, Any], private: dict[Any, Any]
                      ) -> tuple[NativeObject, NativeObject]:
        """C_GenerateKeyPair with CKA_CLASS added to both templates; nothing read back."""
        from pkcs11 import Attribute, ObjectClass

        public = {Attribute.CLASS: ObjectClass.PUBLIC_KEY, **public}
        private = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, **private}
        hpub, hpriv = self.raw.generate_keypair(self.handle, int(mechanism), public, private)
        return NativeObject(self.raw, self, hpub), NativeObject(self.raw, self, hpriv)

    def generate_keypair(self, key_type: Any, key_length: int | None = None, *,
                         store: bool = False, public_template: dict[Any, Any] | None = None,
                         private_template: dict[Any, Any] | None = None, **_ignored: Any
                         ) -> tuple[NativeObject, NativeObject]:
        """python-pkcs11's RSA ``generate_keypair``: the modulus size and exponent on the
        public template, CKA_TOKEN=store where the templates do not say."""
        from pkcs11 import Attribute, KeyType, Mechanism

        if key_type != KeyType.RSA:
            raise NotImplementedError("only RSA key pairs are generated without parameters")
        public = {Attribute.TOKEN: store, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01",
                  **(public_template or {}), Attribute.MODULUS_BITS: key_length}
        private = {Attribute.TOKEN: store, **(private_template or {})}
        return self.generate_pair(Mechanism.RSA_PKCS_KEY_PAIR_GEN, public, private)

    def create_domain_parameters(self, key_type: Any, attrs: dict[Any, Any],
                                 local: bool = True) -> NativeDomainParameters:
        """Domain parameters held here only (``local=True`` is all tui-csr uses)."""
        return NativeDomainParameters(self, key_type, dict(attrs))


class NativeDomainParameters:
    """EC or Edwards curve parameters for :meth:`generate_keypair` (python-pkcs11's
    ``LocalDomainParameters``)."""

    def __init__(self, session: NativeSession, key_type: Any, attrs: dict[Any, Any]) -> None:
        self.session = session
        self.key_type = key_type
        self.attrs = attrs

    def generate_keypair(self, mechanism: Any = None, *, store: bool = False,
                         public_template: dict[Any, Any] | None = None,
                         private_template: dict[Any, Any] | None = None, **_ignored: Any
                         ) -> tuple[NativeObject, NativeObject]:
        """C_GenerateKeyPair with the parameters on the public template."""
        from pkcs11 import Attribute, KeyType, Mechanism

        if mechanism is None:
            mechanism = (Mechanism.EC_EDWARDS_KEY_PAIR_GEN
                         if self.key_type == KeyType.EC_EDWARDS else Mechanism.EC_KEY_PAIR_GEN)
        public = {Attribute.TOKEN: store, **(public_template or {}), **self.attrs}
        private = {Attribute.TOKEN: store, **(private_template or {})}
        return self.session.generate_pair(mechanism, public, private)


class NativeObject(RawObject):
    """An object known by its handle (python-pkcs11's ``Object``, as tui-csr uses it)."""

    def get_attributes(self, names: Iterable[Any]) -> dict[Any, Any]:
        """One C_GetAttributeValue. With names (``"LABEL"``): what the object has, by name.
        With python-pkcs11's ``Attribute`` keys: by key, raising as python-pkcs11 does
        (AttributeTypeInvalid, AttributeSensitive ...) when the token refuses the read."""
        names = list(names)
        if all(isinstance(n, str) for n in names):
            return super().get_attributes(names)
        by_name = {key.name: key for key in names}
        got = self.raw.get_attributes(self.session.handle, self.handle, by_name, strict=True)
        return {by_name[name]: value for name, value in got.items()}

    def __getitem__(self, key: Any) -> Any:
        """One attribute, raising as python-pkcs11 does when the token refuses it."""
        return self.raw.read_one(self.session.handle, self.handle, key)

    @property
    def object_class(self) -> Any:
        """CKA_CLASS (:class:`pkcs11.ObjectClass`)."""
        from pkcs11 import Attribute, ObjectClass

        return ObjectClass(self[Attribute.CLASS])

    @property
    def key_type(self) -> Any:
        """CKA_KEY_TYPE (:class:`pkcs11.KeyType`)."""
        from pkcs11 import Attribute, KeyType

        return KeyType(self[Attribute.KEY_TYPE])

    def sign(self, data: bytes, mechanism: Any = None, mechanism_param: Any = None,
             pin: str | None = None, **_ignored: Any) -> bytes:
        """C_SignInit (+ the context-specific login with ``pin``) and C_Sign; PSS parameters
        as python-pkcs11 takes them: (hash mechanism, MGF, salt length)."""
        pss = tuple(int(v) for v in mechanism_param) if mechanism_param else None
        return self.raw.sign(self.session.handle, self.handle, int(mechanism), bytes(data),
                             pss=pss, pin=pin)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<NativeObject (handle={self.handle})>"


def _dlopen(so: str) -> tuple[int, Any]:
    """``dlopen(so, RTLD_LAZY | RTLD_LOCAL)`` and its C_GetFunctionList, as python-pkcs11 and
    most PKCS#11 consumers open a module. (``ctypes.CDLL`` would add RTLD_NOW: a vendor module
    with an optional symbol its own dependencies do not provide would then fail to load here
    although every other tool loads it.) The handle is never closed: the module stays mapped
    for the process, as its function table must."""
    libdl = ctypes.CDLL(None)
    libdl.dlopen.restype = ctypes.c_void_p
    libdl.dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libdl.dlsym.restype = ctypes.c_void_p
    libdl.dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    libdl.dlerror.restype = ctypes.c_char_p
    libdl.dlerror.argtypes = []
    handle = libdl.dlopen(os.fsencode(so), os.RTLD_LAZY | os.RTLD_LOCAL)
    if not handle:
        reason = (libdl.dlerror() or b"it cannot be loaded").decode("utf-8", "replace")
        raise LoadError(reason.replace(f"{so}: ", "").strip())
    libdl.dlerror()  # clear, then look the symbol up
    address = libdl.dlsym(handle, b"C_GetFunctionList")
    if not address:
        raise LoadError("it has no C_GetFunctionList")
    prototype = ctypes.CFUNCTYPE(CK_ULONG, ctypes.POINTER(ctypes.c_void_p))
    return handle, prototype(address)


def load_library(so: str) -> NativeLib:
    """The initialised module at ``so``, loaded once per process (see the module text). Raises
    :class:`LoadError` for a file that is not a PKCS#11 module, python-pkcs11's exceptions
    for a module that refuses to initialise."""
    import pkcs11

    loaded = pkcs11._loaded.get(so)
    if isinstance(loaded, NativeLib):
        loaded.initialize()
        return loaded
    if loaded is not None:  # python-pkcs11 loaded it first in this process: share its table
        from tui_csr.hsm.raw import function_list_address

        address = function_list_address(loaded)
        if address is None:
            raise LoadError("python-pkcs11 holds this module in a layout tui-csr cannot read")
        lib = NativeLib(so, RawModule.of_address(address), None, shared=loaded)
        lib.initialize()
        lib._read_info()
        return lib
    handle, get_list = _dlopen(so)
    table = ctypes.c_void_p()
    check(get_list(ctypes.byref(table)))
    if not table.value or ctypes.c_ubyte.from_address(table.value).value not in (2, 3):
        raise LoadError("its C_GetFunctionList gave no PKCS#11 2.x/3.x function table")
    lib = NativeLib(so, RawModule.of_address(table.value), handle)
    lib.initialize()
    pkcs11._loaded[so] = lib  # finalised with python-pkcs11's own (worker.finalize_modules)
    lib._read_info()
    return lib


def raw_for(session: Any) -> RawModule | None:
    """The raw calls for ``session``, or None when it is not a real python-pkcs11 session (a
    test stand-in: python-pkcs11's own path keeps its wrappers in the loop) or its function
    table cannot be read."""
    if isinstance(session, NativeSession):
        return session.raw
    from pkcs11 import _pkcs11

    if session is None or not isinstance(session, _pkcs11.Session):  # type: ignore[attr-defined]
        return None
    return RawModule.of(session)
