"""Turn python-pkcs11 exceptions into one sentence the user can act on, plus the CKR_* name."""

from __future__ import annotations

from tui_csr.errors import TokenError

# python-pkcs11 exception class name -> (CKR name, plain explanation). The explanation is a
# sentence fragment; ``token_error`` prefixes what we were doing and names the token.
_CKR: dict[str, tuple[str, str]] = {
    "PinIncorrect": ("CKR_PIN_INCORRECT", "the PIN is wrong"),
    "PinLocked": ("CKR_PIN_LOCKED", "the user PIN is locked; the security officer must unlock it"),
    "PinExpired": ("CKR_PIN_EXPIRED", "the user PIN has expired; set a new one first"),
    "PinInvalid": ("CKR_PIN_INVALID", "the PIN contains characters the token does not accept"),
    "PinLenRange": ("CKR_PIN_LEN_RANGE", "the PIN length is outside what the token accepts"),
    "UserPinNotInitialized": (
        "CKR_USER_PIN_NOT_INITIALIZED", "the token has no user PIN set; initialise it first"),
    "UserNotLoggedIn": ("CKR_USER_NOT_LOGGED_IN", "the session is not logged in"),
    "MechanismInvalid": ("CKR_MECHANISM_INVALID", "the token does not support this mechanism"),
    "MechanismParamInvalid": (
        "CKR_MECHANISM_PARAM_INVALID", "the token rejected the mechanism parameters"),
    "KeySizeRange": ("CKR_KEY_SIZE_RANGE", "the token does not support this key size"),
    "DomainParamsInvalid": (
        "CKR_DOMAIN_PARAMS_INVALID", "the token does not support this elliptic curve"),
    "TemplateInconsistent": (
        "CKR_TEMPLATE_INCONSISTENT", "the token refused the key template (vendor policy)"),
    "TemplateIncomplete": (
        "CKR_TEMPLATE_INCOMPLETE", "the token wants attributes the key template does not give"),
    "AttributeValueInvalid": (
        "CKR_ATTRIBUTE_VALUE_INVALID", "the token refused an attribute value in the key template"),
    "AttributeTypeInvalid": (
        "CKR_ATTRIBUTE_TYPE_INVALID", "the token does not know an attribute in the key template"),
    "AttributeReadOnly": ("CKR_ATTRIBUTE_READ_ONLY", "the token would not set a read-only attribute"),
    "AttributeSensitive": ("CKR_ATTRIBUTE_SENSITIVE", "the attribute is sensitive and cannot be read"),
    "TokenNotPresent": ("CKR_TOKEN_NOT_PRESENT", "the token is no longer present"),
    "TokenNotRecognised": ("CKR_TOKEN_NOT_RECOGNIZED", "the token is not recognised"),
    "DeviceRemoved": ("CKR_DEVICE_REMOVED", "the token was removed"),
    "DeviceError": ("CKR_DEVICE_ERROR", "the token reported a device error"),
    "DeviceMemory": ("CKR_DEVICE_MEMORY", "the token is out of memory"),
    "TokenWriteProtected": ("CKR_TOKEN_WRITE_PROTECTED", "the token is write-protected"),
    "SessionClosed": ("CKR_SESSION_CLOSED", "the session to the token was closed"),
    "SessionHandleInvalid": ("CKR_SESSION_HANDLE_INVALID", "the session to the token is gone"),
    "SessionCount": ("CKR_SESSION_COUNT", "the token has too many open sessions"),
    "ObjectHandleInvalid": ("CKR_OBJECT_HANDLE_INVALID", "the key object is gone from the token"),
    "KeyHandleInvalid": ("CKR_KEY_HANDLE_INVALID", "the key object is gone from the token"),
    "KeyFunctionNotPermitted": (
        "CKR_KEY_FUNCTION_NOT_PERMITTED", "the key is not allowed to perform this operation"),
    "FunctionFailed": ("CKR_FUNCTION_FAILED", "the token failed the operation"),
    "FunctionNotSupported": ("CKR_FUNCTION_NOT_SUPPORTED", "the module does not support this call"),
    "FunctionRejected": ("CKR_FUNCTION_REJECTED", "the token rejected the operation"),
    "GeneralError": ("CKR_GENERAL_ERROR", "the token reported a general error"),
    "HostMemory": ("CKR_HOST_MEMORY", "the module ran out of host memory"),
    "DataLenRange": ("CKR_DATA_LEN_RANGE", "the data to sign has a length the token refuses"),
    "DataInvalid": ("CKR_DATA_INVALID", "the token refused the data to sign"),
    "ArgumentsBad": ("CKR_ARGUMENTS_BAD", "the module rejected the call's arguments"),
}


def ckr_name(exc: BaseException) -> str | None:
    """The CKR_* name for a python-pkcs11 exception, or None when it is not one."""
    name = type(exc).__name__
    if name in _CKR:
        return _CKR[name][0]
    if type(exc).__module__.startswith("pkcs11"):
        return "CKR_" + "".join("_" + c if c.isupper() else c for c in name).lstrip("_").upper()
    return None


#: Codes that mean the token refused the key template itself (vendor policy).
TEMPLATE_REFUSALS = frozenset({"CKR_TEMPLATE_INCONSISTENT", "CKR_ATTRIBUTE_VALUE_INVALID",
                               "CKR_TEMPLATE_INCOMPLETE", "CKR_ATTRIBUTE_TYPE_INVALID"})


def template_hint(profile: str) -> str:
    """What to try when a token refuses the key template (appended to the error)."""
    return (f"; tokens may refuse CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP or CKA_DERIVE "
            f"set to false, CKA_VERIFY or CKA_PRIVATE on the public key, or "
            f"CKA_ALWAYS_AUTHENTICATE (profile in use: {profile}); set token_profile "
            "(or TUI_CSR_TOKEN_PROFILE) to another profile, e.g. generic, which leaves them "
            "to the token")


def token_error(exc: BaseException, doing: str, token: str | None = None,
                hint: str = "") -> TokenError:
    """Map ``exc`` (raised while ``doing``, e.g. "generating the key") to a :class:`TokenError`;
    ``hint`` (a fragment starting with "; ") is appended to the sentence."""
    where = f"token '{token}'" if token else "the token"
    name = type(exc).__name__
    if name in _CKR:
        code, plain = _CKR[name]
        return TokenError(f"While {doing} on {where}: {plain}{hint}.", field="token", code=code)
    detail = (str(exc).strip() or name).rstrip(".")
    return TokenError(f"While {doing} on {where}: {detail}{hint}.", field="token",
                      code=ckr_name(exc))
