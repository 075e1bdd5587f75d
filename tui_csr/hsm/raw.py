"""The hot path of a CSR in as few PKCS#11 round trips as the standard allows.

python-pkcs11 asks the module twice for every variable-length answer (first the size, then
the value), reads ten capability attributes of every key it hands out (two more calls per
key), and reads CKA_KEY_TYPE before every signature (two more). Against a network HSM each
call is a round trip of 1-50 ms. This module makes the few calls a CSR needs itself, through
the CK_FUNCTION_LIST python-pkcs11 itself uses (ctypes), on the handles python-pkcs11's session already
has: C_GenerateKeyPair (the handles, nothing read), one C_GetAttributeValue per object with
buffers sized for the answer, C_SetAttributeValue, C_SignInit and one C_Sign, one
C_GetMechanismList, C_DestroyObject. A call that fails raises the python-pkcs11 exception of
its CKR code, so the callers' error handling stays one.

Used only on a real python-pkcs11 session (a test stand-in that wraps the session keeps
python-pkcs11's own path). Runs on the token thread, as every PKCS#11 call does.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from typing import Any

CK_ULONG = ctypes.c_ulong
CK_RV = CK_ULONG
_UNAVAILABLE = CK_ULONG(-1).value

#: Offsets of the functions used here in CK_FUNCTION_LIST (PKCS#11 2.40, after CK_VERSION).
_INDEX = {"C_Initialize": 0, "C_Finalize": 1, "C_GetInfo": 2, "C_GetSlotList": 4,
          "C_GetSlotInfo": 5, "C_GetTokenInfo": 6, "C_GetMechanismList": 7,
          "C_GetMechanismInfo": 8, "C_OpenSession": 12, "C_CloseSession": 13, "C_Login": 18,
          "C_CreateObject": 20, "C_DestroyObject": 22, "C_GetAttributeValue": 24,
          "C_SetAttributeValue": 25, "C_FindObjectsInit": 26, "C_FindObjects": 27,
          "C_FindObjectsFinal": 28, "C_SignInit": 42, "C_Sign": 43, "C_GenerateKeyPair": 59}

CKU_CONTEXT_SPECIFIC = 2
_CKR_BUFFER_TOO_SMALL = 0x150

#: CKR code -> python-pkcs11 exception class name (what python-pkcs11 itself raises for it).
_ERRORS = {
    0x02: "HostMemory", 0x03: "SlotIDInvalid", 0x05: "GeneralError", 0x06: "FunctionFailed",
    0x07: "ArgumentsBad", 0x10: "AttributeReadOnly", 0x11: "AttributeSensitive",
    0x12: "AttributeTypeInvalid", 0x13: "AttributeValueInvalid", 0x20: "DataInvalid",
    0x21: "DataLenRange", 0x30: "DeviceError", 0x31: "DeviceMemory", 0x32: "DeviceRemoved",
    0x50: "FunctionCancelled", 0x54: "FunctionNotSupported", 0x60: "KeyHandleInvalid",
    0x62: "KeySizeRange", 0x63: "KeyTypeInconsistent", 0x68: "KeyFunctionNotPermitted",
    0x70: "MechanismInvalid", 0x71: "MechanismParamInvalid", 0x82: "ObjectHandleInvalid",
    0x90: "OperationActive", 0x91: "OperationNotInitialized", 0xA0: "PinIncorrect",
    0xA1: "PinInvalid", 0xA2: "PinLenRange", 0xA3: "PinExpired", 0xA4: "PinLocked",
    0xB0: "SessionClosed", 0xB1: "SessionCount", 0xB3: "SessionHandleInvalid",
    0xB5: "SessionReadOnly", 0xD0: "TemplateIncomplete", 0xD1: "TemplateInconsistent",
    0xE0: "TokenNotPresent", 0xE1: "TokenNotRecognised", 0xE2: "TokenWriteProtected",
    0x100: "UserAlreadyLoggedIn", 0x101: "UserNotLoggedIn", 0x102: "UserPinNotInitialized",
    0x130: "DomainParamsInvalid", 0x200: "FunctionRejected",
}


class _Attr(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("pValue", ctypes.c_void_p), ("ulValueLen", CK_ULONG)]


class _Mech(ctypes.Structure):
    _fields_ = [("mechanism", CK_ULONG), ("pParameter", ctypes.c_void_p),
                ("ulParameterLen", CK_ULONG)]


class _PssParams(ctypes.Structure):
    _fields_ = [("hashAlg", CK_ULONG), ("mgf", CK_ULONG), ("sLen", CK_ULONG)]


def check(rv: int) -> None:
    """Raise the python-pkcs11 exception for a CKR code other than CKR_OK."""
    if rv == 0:
        return
    from pkcs11 import exceptions as px

    name = _ERRORS.get(rv)
    cls = getattr(px, name, None) if name else None
    if cls is None:
        raise px.PKCS11Error(f"Unmapped error code {hex(rv)}")
    raise cls()


#: Buffer sizes for one-call reads: large enough for any key tui-csr makes (RSA 8192, P-521,
#: Ed448); a longer value costs a second call for that attribute only.
_SIZES = {"MODULUS": 1024, "PUBLIC_EXPONENT": 16, "EC_PARAMS": 256, "EC_POINT": 256,
          "LABEL": 256, "ID": 256, "VALUE": 4096, "CLASS": 8, "KEY_TYPE": 8}


class RawModule:
    """The CK_FUNCTION_LIST python-pkcs11 has for a module (initialised, with its sessions)."""

    _loaded: dict[int, RawModule] = {}

    def __init__(self, address: int) -> None:
        from pkcs11.attributes import AttributeMapper

        table = ctypes.cast(address, ctypes.POINTER(ctypes.c_void_p))
        self.address = address
        self._fn: dict[str, Any] = {}
        proto = ctypes.CFUNCTYPE
        ptr, ulong_p, void_p = ctypes.POINTER, ctypes.POINTER(CK_ULONG), ctypes.c_void_p
        sigs = {
            "C_Initialize": proto(CK_RV, void_p),
            "C_Finalize": proto(CK_RV, void_p),
            "C_GetInfo": proto(CK_RV, void_p),
            "C_GetSlotList": proto(CK_RV, ctypes.c_ubyte, ulong_p, ulong_p),
            "C_GetSlotInfo": proto(CK_RV, CK_ULONG, void_p),
            "C_GetTokenInfo": proto(CK_RV, CK_ULONG, void_p),
            "C_GetMechanismInfo": proto(CK_RV, CK_ULONG, CK_ULONG, void_p),
            "C_OpenSession": proto(CK_RV, CK_ULONG, CK_ULONG, void_p, void_p, ulong_p),
            "C_CreateObject": proto(CK_RV, CK_ULONG, ptr(_Attr), CK_ULONG, ulong_p),
            "C_FindObjectsInit": proto(CK_RV, CK_ULONG, ptr(_Attr), CK_ULONG),
            "C_FindObjects": proto(CK_RV, CK_ULONG, ulong_p, CK_ULONG, ulong_p),
            "C_FindObjectsFinal": proto(CK_RV, CK_ULONG),
            "C_GetMechanismList": proto(CK_RV, CK_ULONG, ctypes.POINTER(CK_ULONG),
                                        ctypes.POINTER(CK_ULONG)),
            "C_Login": proto(CK_RV, CK_ULONG, CK_ULONG, ctypes.c_char_p, CK_ULONG),
            "C_CloseSession": proto(CK_RV, CK_ULONG),
            "C_DestroyObject": proto(CK_RV, CK_ULONG, CK_ULONG),
            "C_GetAttributeValue": proto(CK_RV, CK_ULONG, CK_ULONG, ctypes.POINTER(_Attr),
                                         CK_ULONG),
            "C_SetAttributeValue": proto(CK_RV, CK_ULONG, CK_ULONG, ctypes.POINTER(_Attr),
                                         CK_ULONG),
            "C_SignInit": proto(CK_RV, CK_ULONG, ctypes.POINTER(_Mech), CK_ULONG),
            "C_Sign": proto(CK_RV, CK_ULONG, ctypes.c_char_p, CK_ULONG, ctypes.c_char_p,
                            ctypes.POINTER(CK_ULONG)),
            "C_GenerateKeyPair": proto(CK_RV, CK_ULONG, ctypes.POINTER(_Mech),
                                       ctypes.POINTER(_Attr), CK_ULONG, ctypes.POINTER(_Attr),
                                       CK_ULONG, ctypes.POINTER(CK_ULONG),
                                       ctypes.POINTER(CK_ULONG)),
        }
        for name, sig in sigs.items():
            # +1: the table starts with CK_VERSION (two bytes, padded to a pointer).
            self._fn[name] = sig(table[_INDEX[name] + 1])
        self.mapper = AttributeMapper()

    @classmethod
    def of(cls, session: Any) -> RawModule | None:
        """The function table of ``session``'s module, or None when it cannot be read safely
        (see :func:`function_list_address`)."""
        address = function_list_address(session)
        if address is None:
            return None
        return cls.of_address(address)

    @classmethod
    def of_address(cls, address: int) -> RawModule:
        """The calls of the CK_FUNCTION_LIST at ``address`` (made once per table)."""
        if address not in cls._loaded:
            cls._loaded[address] = cls(address)
        return cls._loaded[address]

    @staticmethod
    def with_mapper(raw: RawModule, mapper: Any) -> RawModule:
        """The same calls, packing and unpacking values with ``mapper`` (a python-pkcs11
        AttributeMapper that knows a vendor attribute)."""
        import copy

        other = copy.copy(raw)
        other.mapper = mapper
        return other

    def fn(self, name: str) -> Any:
        """The function ``name`` of the table (ctypes, typed)."""
        return self._fn[name]

    # -- calls -----------------------------------------------------------------------------------
    def mechanisms(self, slot_id: int) -> list[int]:
        """The slot's mechanism list, in one call when it has at most 512 entries."""
        count = CK_ULONG(512)
        buf = (CK_ULONG * 512)()
        rv = self._fn["C_GetMechanismList"](slot_id, buf, ctypes.byref(count))
        if rv == _CKR_BUFFER_TOO_SMALL:
            buf = (CK_ULONG * count.value)()
            rv = self._fn["C_GetMechanismList"](slot_id, buf, ctypes.byref(count))
        check(rv)
        return list(buf[:count.value])

    def template(self, template: dict[Any, Any]) -> tuple[Any, int, list[bytes]]:
        """A CK_ATTRIBUTE array for ``template`` (python-pkcs11's ``DEFAULT`` values left out),
        its length, and the buffers that must live as long as it is used."""
        from pkcs11.constants import DEFAULT

        items = [(k, v) for k, v in template.items() if v is not DEFAULT]
        arr = (_Attr * max(len(items), 1))()
        keep: list[bytes] = []
        for i, (key, value) in enumerate(items):
            packed = self.mapper.pack_attribute(key, value)
            buf = ctypes.create_string_buffer(packed, len(packed))
            keep.append(buf)  # type: ignore[arg-type]
            arr[i].type = int(key)
            arr[i].pValue = ctypes.cast(buf, ctypes.c_void_p)
            arr[i].ulValueLen = len(packed)
        return arr, len(items), keep

    def generate_keypair(self, session: int, mechanism: int, public: dict[Any, Any],
                         private: dict[Any, Any]) -> tuple[int, int]:
        """C_GenerateKeyPair; the (public, private) handles. Nothing is read back here."""
        mech = _Mech(mechanism, None, 0)
        pub_t, pub_n, keep1 = self.template(public)
        priv_t, priv_n, keep2 = self.template(private)
        hpub, hpriv = CK_ULONG(), CK_ULONG()
        check(self._fn["C_GenerateKeyPair"](session, ctypes.byref(mech), pub_t, pub_n, priv_t,
                                            priv_n, ctypes.byref(hpub), ctypes.byref(hpriv)))
        del keep1, keep2
        return hpub.value, hpriv.value

    def get_attributes(self, session: int, handle: int, names: Iterable[str] | dict[str, Any],
                       strict: bool = False) -> dict[str, Any]:
        """The attributes ``names`` of object ``handle`` in one C_GetAttributeValue (buffers
        sized ahead: booleans one byte, the rest from :data:`_SIZES`); those the object does
        not have (or keeps secret) are left out. An attribute the token left unanswered while
        the call failed is asked again alone: some modules fail a whole bulk read for one
        unknown attribute. ``names`` may map each name to its attribute key; ``strict`` raises
        the token's refusal instead (python-pkcs11's ``get_attributes``)."""
        from pkcs11 import Attribute

        keys = dict(names) if isinstance(names, dict) else {
            name: getattr(Attribute, name) for name in names}
        arr = (_Attr * len(keys))()
        bufs = []
        for i, (name, key) in enumerate(keys.items()):
            size = _SIZES.get(name, 1)
            buf = ctypes.create_string_buffer(size)
            bufs.append(buf)
            arr[i].type = int(key)
            arr[i].pValue = ctypes.cast(buf, ctypes.c_void_p)
            arr[i].ulValueLen = size
        rv = self._fn["C_GetAttributeValue"](session, handle, arr, len(keys))
        if strict and rv not in (0, _CKR_BUFFER_TOO_SMALL):
            check(rv)
        if rv not in (0, 0x11, 0x12, _CKR_BUFFER_TOO_SMALL, 0x06):
            check(rv)
        out: dict[str, Any] = {}
        for i, (name, key) in enumerate(keys.items()):
            length = arr[i].ulValueLen
            if length != _UNAVAILABLE and length <= len(bufs[i]):
                out[name] = self._unpack(key, bufs[i].raw[:length])
            elif rv != 0:
                value = self._read_one(session, handle, key)
                if value is not None:
                    out[name] = value
        return out

    def _read_one(self, session: int, handle: int, key: Any) -> Any:
        try:
            return self.read_one(session, handle, key)
        except Exception:  # noqa: BLE001 - the bulk read's answer stands: left out
            return None

    def read_one(self, session: int, handle: int, key: Any) -> Any:
        """One attribute (its size, then its value), raising the token's refusal as
        python-pkcs11 does (AttributeTypeInvalid, AttributeSensitive ...)."""
        attr = _Attr(int(key), None, 0)
        check(self._fn["C_GetAttributeValue"](session, handle, ctypes.byref(attr), 1))
        if attr.ulValueLen == _UNAVAILABLE:
            check(0x11)
        buf = ctypes.create_string_buffer(max(attr.ulValueLen, 1))
        attr.pValue = ctypes.cast(buf, ctypes.c_void_p)
        check(self._fn["C_GetAttributeValue"](session, handle, ctypes.byref(attr), 1))
        return self._unpack(key, buf.raw[:attr.ulValueLen])

    def _unpack(self, key: Any, raw: bytes) -> Any:
        try:
            return self.mapper.unpack_attributes(key, raw)
        except (KeyError, ValueError, TypeError):
            return raw

    def set_attribute(self, session: int, handle: int, key: Any, value: Any) -> None:
        """C_SetAttributeValue of one attribute."""
        arr, count, keep = self.template({key: value})
        check(self._fn["C_SetAttributeValue"](session, handle, arr, count))
        del keep

    def destroy(self, session: int, handle: int) -> None:
        """C_DestroyObject."""
        check(self._fn["C_DestroyObject"](session, handle))

    def close_session(self, session: int) -> None:
        """C_CloseSession (closing the last session logs the token out: no C_Logout)."""
        check(self._fn["C_CloseSession"](session))

    def sign(self, session: int, key: int, mechanism: int, data: bytes,
             pss: tuple[int, int, int] | None = None, pin: str | None = None,
             size: int = 1024) -> bytes:
        """C_SignInit (+ the context-specific C_Login with ``pin``) and one C_Sign into a
        buffer of ``size`` bytes (again with the size the token names if that is short)."""
        params = _PssParams(*pss) if pss else None
        mech = _Mech(mechanism, ctypes.cast(ctypes.byref(params), ctypes.c_void_p)
                     if params is not None else None,
                     ctypes.sizeof(_PssParams) if params is not None else 0)
        check(self._fn["C_SignInit"](session, ctypes.byref(mech), key))
        if pin is not None:
            secret = pin.encode("utf-8")
            check(self._fn["C_Login"](session, CKU_CONTEXT_SPECIFIC, secret, len(secret)))
        out = ctypes.create_string_buffer(size)
        length = CK_ULONG(size)
        rv = self._fn["C_Sign"](session, data, len(data), out, ctypes.byref(length))
        if rv == _CKR_BUFFER_TOO_SMALL:  # the operation stays active: ask again
            out = ctypes.create_string_buffer(length.value)
            rv = self._fn["C_Sign"](session, data, len(data), out, ctypes.byref(length))
        check(rv)
        return out.raw[:length.value]


class RawObject:
    """A key object known by its handle (from C_GenerateKeyPair), without python-pkcs11's
    capability reads; offers what generation, the CKA_ID rewrite and signing use."""

    def __init__(self, raw: RawModule, session: Any, handle: int) -> None:
        self.raw = raw
        self.session = session
        self.handle = handle

    def get_attributes(self, names: Iterable[str]) -> dict[str, Any]:
        """One C_GetAttributeValue (see :meth:`RawModule.get_attributes`)."""
        return self.raw.get_attributes(self.session.handle, self.handle, names)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.raw.set_attribute(self.session.handle, self.handle, key, value)

    def destroy(self) -> None:
        """C_DestroyObject."""
        self.raw.destroy(self.session.handle, self.handle)


#: python-pkcs11's HasFuncList: the object header, then ``funclist`` (CK_FUNCTION_LIST *),
#: ``funclist30``, ``funclist32``. The table is read from there, not asked of the module again:
#: a second C_GetFunctionList of p11-kit's client module returns a new, uninitialised instance
#: (its calls answer CKR_CRYPTOKI_NOT_INITIALIZED), and python-pkcs11 has no accessor for it.
_HEADER = 2 * ctypes.sizeof(ctypes.c_void_p)
_HAS_FUNC_LIST_SIZE = _HEADER + 3 * ctypes.sizeof(ctypes.c_void_p)


def function_list_address(session: Any) -> int | None:
    """The CK_FUNCTION_LIST address python-pkcs11 uses for ``session``, or None when this
    python-pkcs11 is not laid out as 0.10.1 is (pinned in pyproject.toml; a unit test compares
    the address with C_GetFunctionList's answer on SoftHSM) or the table is not a PKCS#11 2.x/3.x
    one. None means: use python-pkcs11's own calls."""
    from pkcs11 import _pkcs11

    base = getattr(_pkcs11, "HasFuncList", None)
    if (base is None or not isinstance(session, base)
            or getattr(base, "__basicsize__", 0) != _HAS_FUNC_LIST_SIZE):
        return None
    address = ctypes.c_void_p.from_address(id(session) + _HEADER).value
    if not address:
        return None
    major = ctypes.c_ubyte.from_address(address).value
    return address if major in (2, 3) else None
