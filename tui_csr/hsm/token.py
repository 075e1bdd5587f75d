"""The PKCS#11 token, synchronous. Only ever called on the token thread (see ``worker.py``).

python-pkcs11 calls ``C_Initialize(NULL)``, after which SoftHSM disables its own locking: two
threads in the module at once can crash the process. So this class is never used directly by
the rest of the program; :class:`tui_csr.hsm.worker.AsyncToken` runs each call on one thread.

What differs between PKCS#11 implementations (templates, CKA_ID rules, label limits, known
mechanism bugs) comes from the token's :class:`~tui_csr.hsm.profiles.TokenProfile`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import TYPE_CHECKING, Any

from tui_csr.core.keyspec import HashAlg, KeySpec, Scheme
from tui_csr.errors import ConfigError, TokenError
from tui_csr.hsm.certificates import CertificateMixin
from tui_csr.hsm.errors import ckr_name, token_error
from tui_csr.hsm.keys import (  # noqa: F401 - re-exported: the token layer's public names
    MARKER_APPLICATION,
    REQUIRED_PRIVATE,
    KeyPair,
    TokenInfo,
    TokenKey,
    digest_info,
    ec_spki,
    find_objects,
    key_id_for,
    pkcs11_uri,
    read_attributes,
    read_flags,
    serial_of,
    settled,
    spki_der_of,
)
from tui_csr.hsm.legacy import legacy_markers, remove_markers
from tui_csr.hsm.profiles import PROFILES, TokenProfile, choose_profile

if TYPE_CHECKING:
    from tui_csr.core.p11uri import KeySelector
    from tui_csr.hsm.existing import ExistingKey

_ORPHANS = "run `tui-csr orphans` to find and destroy it"


class Pkcs11Token(CertificateMixin):
    """One PKCS#11 token, selected by label (or serial), with one logged-in session.

    The PIN is passed to :meth:`login` (or to :meth:`sign` for a context-specific login) and not
    kept. ``profile`` names a :data:`~tui_csr.hsm.profiles.PROFILES` entry; None chooses one
    from the module and token info at :meth:`open`.
    """

    def __init__(self, module_path: str, token_label: str | None = None,
                 token_serial: str | None = None, profile: str | None = None) -> None:
        self.module_path = module_path
        self.token_label = token_label
        self.token_serial = token_serial
        self.profile_override = profile
        self._lib: Any = None
        self._token: Any = None
        self._session: Any = None
        self._mechanisms: set[Any] | None = None
        self._mechanism_info: dict[Any, Any] = {}
        self._profile: TokenProfile = PROFILES["generic"]
        self._profile_reason = "no token is open yet"
        #: (CKA_ID, private key, public key) of the pair generated last: setting its CKA_ID
        #: and signing the CSR use these handles without searching the token again.
        self._fresh: tuple[bytes, Any, Any] | None = None
        self._fresh_attrs: dict[str, bool] = {}
        #: Sessions left behind by a failed sign (see :meth:`_fresh_session`).
        self._spent: list[Any] = []

    # -- opening ------------------------------------------------------------------------------
    def load(self) -> Any:
        """Load the module (once per process: :func:`tui_csr.hsm.native.load_library`).
        Raises ConfigError with a sentence."""
        from pkcs11 import exceptions as px

        from tui_csr.hsm.native import LoadError, load_library

        if self._lib is not None:
            return self._lib
        path = self.module_path
        if not path:
            raise ConfigError(
                "No PKCS#11 module is configured; set --module or TUI_CSR_MODULE.", field="module")
        if not os.path.exists(path):
            raise ConfigError(f"PKCS#11 module {path} does not exist.", field="module")
        if not os.path.isfile(path):
            raise ConfigError(f"PKCS#11 module {path} is not a file.", field="module")
        try:
            self._lib = load_library(path)
        except (LoadError, px.PKCS11Error, OSError, RuntimeError) as exc:
            why = str(exc).replace(f"{path}: ", "").strip().rstrip(".") or type(exc).__name__
            raise ConfigError(f"{path} is not a PKCS#11 module that can be loaded ({why}).",
                              field="module") from exc
        return self._lib

    def open(self) -> TokenInfo:
        """Load the module and find the token. Raises ConfigError/TokenError with a sentence."""
        from pkcs11 import TokenFlag
        from pkcs11 import exceptions as px

        lib = self.load()
        path = self.module_path
        try:
            # Not lib.get_tokens(): it reads every slot's mechanism list too (two round trips
            # per slot); the chosen token's list is read once, when first needed.
            tokens = []
            for slot in lib.get_slots(token_present=True):
                with contextlib.suppress(px.TokenNotPresent, px.TokenNotRecognised):
                    tokens.append(slot.get_token())
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing the module's tokens") from exc
        # An uninitialised token (SoftHSM's free slot, tpm2-pkcs11's second slot: empty label)
        # is never a candidate.
        tokens = [t for t in tokens if TokenFlag(t.flags) & TokenFlag.TOKEN_INITIALIZED]
        labels = [t.label for t in tokens if t.label]
        if self.token_label is None and self.token_serial is None and len(tokens) > 1:
            names = ", ".join(repr(t.label) for t in tokens)
            raise TokenError(f"{path} has {len(tokens)} tokens ({names}); choose one with "
                             "--token or TUI_CSR_TOKEN (tui-csr tokens lists them).",
                             field="token")
        match = [t for t in tokens
                 if (self.token_label is None or t.label == self.token_label)
                 and (self.token_serial is None or serial_of(t) == self.token_serial)]
        if not match:
            want = (f"label '{self.token_label}'" if self.token_label is not None
                    else f"serial '{self.token_serial}'" if self.token_serial is not None
                    else "an initialised token")
            have = ", ".join(f"'{label}'" for label in labels) or "none"
            raise TokenError(
                f"No token with {want} in {path}; tokens present: {have}.",
                field="token", code="CKR_TOKEN_NOT_PRESENT")
        if len(match) > 1:
            raise TokenError(
                f"{len(match)} tokens are labelled '{self.token_label}'; select one by serial.",
                field="token")
        self._token = match[0]
        self.token_label = self._token.label
        self._profile, self._profile_reason = choose_profile(
            module_path=path, library=self._library_text(),
            token_manufacturer=self._token.manufacturer_id.strip(),
            token_model=self._token.model.strip(), override=self.profile_override)
        return self.info()

    def _library_text(self) -> str:
        return f"{self._lib.manufacturer_id.strip()} {self._lib.library_description.strip()}"

    def info(self) -> TokenInfo:
        """Re-read the token's flags (the PIN counters change after a failed login)."""
        from pkcs11 import TokenFlag

        tok = self._token
        flags = TokenFlag(tok.flags)
        return TokenInfo(
            label=tok.label, serial=serial_of(tok), manufacturer=tok.manufacturer_id.strip(),
            model=tok.model.strip(),
            login_required=bool(flags & TokenFlag.LOGIN_REQUIRED),
            pin_count_low=bool(flags & TokenFlag.USER_PIN_COUNT_LOW),
            pin_final_try=bool(flags & TokenFlag.USER_PIN_FINAL_TRY),
            pin_locked=bool(flags & TokenFlag.USER_PIN_LOCKED),
            module_description=self._library_text(),
            protected_auth_path=bool(flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH),
            profile=self._profile.name, profile_reason=self._profile_reason,
            pin_hint=self._profile.pin_hint,
        )

    @property
    def profile(self) -> TokenProfile:
        """The profile in use (generic until :meth:`open` chose one)."""
        return self._profile

    @property
    def logged_in(self) -> bool:
        """True once a session is open (and logged in when the token needs it)."""
        return self._session is not None

    def login(self, pin: str | None) -> TokenInfo:
        """Open the one read-write session, logging in with ``pin`` (not kept). With no PIN on
        a token with a protected authentication path, the PIN is entered on the device."""
        from pkcs11 import PROTECTED_AUTH, TokenFlag
        from pkcs11 import exceptions as px

        if self._token is None:
            self.open()
        if self._session is not None:
            return self.info()
        label = self._token.label
        user_pin: Any = pin or None
        if user_pin is None and TokenFlag(self._token.flags) & (
                TokenFlag.PROTECTED_AUTHENTICATION_PATH) and TokenFlag(
                self._token.flags) & TokenFlag.LOGIN_REQUIRED:
            user_pin = PROTECTED_AUTH
        try:
            self._session = self._token.open(user_pin=user_pin, rw=True)
        except px.UserAlreadyLoggedIn:
            # Login is per token: another session of this process already logged in.
            self._session = self._token.open(rw=True)
        except px.PinIncorrect as exc:
            info = self.info()
            hint = ""
            if info.pin_locked:
                hint = " The PIN is now locked."
            elif info.pin_final_try:
                hint = " One try is left before the PIN locks."
            elif info.pin_count_low:
                hint = " Few tries are left before the PIN locks."
            if self._profile.pin_hint:
                hint += f" {self._profile.pin_hint}"
            raise TokenError(f"Wrong PIN for token '{label}'.{hint}", field="pin",
                             code="CKR_PIN_INCORRECT") from exc
        except px.PinLocked as exc:
            raise TokenError(f"The user PIN of token '{label}' is locked; the security officer "
                             "must unlock it.", field="pin", code="CKR_PIN_LOCKED") from exc
        except px.PKCS11Error as exc:
            hint = (f"; {self._profile.pin_hint}" if self._profile.pin_hint
                    and ckr_name(exc) in ("CKR_PIN_INVALID", "CKR_PIN_LEN_RANGE") else "")
            raise token_error(exc, "logging in", label, hint) from exc
        return self.info()

    def close(self) -> None:
        """Close the session (logs out when it was the last one)."""
        from tui_csr.hsm.native import raw_for

        self._fresh = None
        for session in [self._session, *self._spent]:
            if session is not None:
                # Closing a dead session must not mask the reason it died.
                with contextlib.suppress(Exception):
                    raw = raw_for(session)
                    if raw is None:
                        session.close()
                    else:  # C_CloseSession alone: closing the last session logs out
                        raw.close_session(session.handle)
        self._session = None
        self._spent = []

    def abandon(self) -> None:
        """Forget the sessions without closing them, when C_Finalize follows at once (the end
        of the process, :class:`~tui_csr.hsm.worker.TokenThread`): finalising the module ends
        every session it has, so a C_CloseSession before it is a round trip for nothing."""
        self._fresh = None
        self._session = None
        self._spent = []

    def _s(self) -> Any:
        if self._session is None:
            raise TokenError("Not logged in to the token.", field="token",
                             code="CKR_USER_NOT_LOGGED_IN")
        return self._session

    def _ensure_present(self, doing: str) -> None:
        """Raise a TokenError when the token no longer answers. A search on a token that was
        removed (SoftHSM: its folder deleted) finds nothing instead of failing, and that
        "nothing" must not be taken for "the key is already gone"."""
        from pkcs11 import exceptions as px

        try:
            self._token.slot.get_token()
        except px.PKCS11Error as exc:
            raise TokenError(f"While {doing} on token '{self.token_label}': the token is no "
                             "longer there (removed or disconnected).", field="token",
                             code=ckr_name(exc)) from exc

    # -- capabilities --------------------------------------------------------------------------
    def mechanisms(self) -> set[Any]:
        """The slot's mechanism list (read once per token, in one call on a native slot)."""
        if self._mechanisms is None:
            self._mechanisms = set(self._token.slot.get_mechanisms())
        return self._mechanisms

    def mechanism_info(self, mech: Any) -> Any:
        """The slot's info for ``mech`` (read once per mechanism)."""
        if mech not in self._mechanism_info:
            self._mechanism_info[mech] = self._token.slot.get_mechanism_info(mech)
        return self._mechanism_info[mech]

    def supports(self, spec: KeySpec, ec_sizes: bool = False) -> str | None:
        """None when the token can make ``spec``; else a sentence saying why not. An EC curve's
        size is checked against C_GetMechanismInfo only with ``ec_sizes`` (a token that lacks
        the curve refuses the key pair, and generation then asks, for the sentence): one round
        trip less before every first key."""
        from tui_csr.hsm.describe import spec_problem

        return spec_problem(spec, self.mechanisms(), self.mechanism_info,
                            self._profile.refused_specs, self._token.label, ec_sizes=ec_sizes)

    def label_in_use(self, label: str) -> bool:
        """True when any key object on the token already carries ``label``."""
        from pkcs11 import Attribute
        from pkcs11 import exceptions as px

        try:
            return settled(lambda: bool(find_objects(self._s(), {Attribute.LABEL: label},
                                                     limit=1)))
        except px.PKCS11Error as exc:
            raise token_error(exc, "looking for a key label", self.token_label) from exc

    def labels_in_use(self, limit: int | None = None) -> set[str] | None:
        """The CKA_LABEL of every object on the token, for a batch: one search (C_FindObjects
        in batches of 256) and one C_GetAttributeValue per object, once, instead of a search
        per request. None when the token holds more than ``limit`` objects: reading them all
        would then cost more round trips than asking label by label (:meth:`label_in_use`)."""
        from pkcs11 import exceptions as px

        from tui_csr.hsm.native import raw_for

        session = self._s()
        raw = raw_for(session)

        def scan() -> set[str] | None:
            objs = find_objects(session, batch_size=256)
            if limit is not None and len(objs) > limit:
                return None
            labels: set[str] = set()
            for obj in objs:
                values = (raw.get_attributes(session.handle, obj.handle, ("LABEL",))
                          if raw is not None else read_attributes(obj, ("LABEL",)))
                if values.get("LABEL"):
                    labels.add(str(values["LABEL"]))
            return labels

        try:
            return settled(scan)
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing key labels", self.token_label) from exc

    # -- keys ------------------------------------------------------------------------------------
    def new_key_id(self) -> bytes:
        """A random CKA_ID of the profile's length, not in use on the token (a short id, as
        YubiHSM 2's 16-bit object ids, is checked with one search; zero is never chosen)."""
        from pkcs11 import Attribute

        length = self._profile.key_id_length
        for _ in range(64):
            key_id = secrets.token_bytes(length)
            if not any(key_id):
                continue
            if length >= 8 or not find_objects(self._s(), {Attribute.ID: key_id}, limit=1):
                return key_id
        raise TokenError(f"No free {length}-byte CKA_ID found on token '{self.token_label}'.",
                         field="token")

    def generate_keypair(self, spec: KeySpec, label: str, key_id: bytes = b"", *,
                         always_authenticate: bool = False) -> KeyPair:
        """Generate a non-extractable signing key pair with CKA_ID ``key_id`` (drawn when
        empty) in both templates, read back and checked; a pair that fails a check is
        destroyed, and a destroy that fails raises a TokenError naming ``tui-csr orphans``
        (see :mod:`tui_csr.hsm.generation`)."""
        from tui_csr.hsm.generation import generate_keypair

        return generate_keypair(self, spec, label, key_id or self.new_key_id(),
                                always_authenticate)

    def set_key_id(self, old: bytes, new: bytes) -> bytes:
        """Rewrite the pair's CKA_ID from ``old`` to ``new`` where the token allows it; the id
        the pair has afterwards (``old`` when refused: normal, not an error)."""
        from tui_csr.hsm.generation import set_key_id

        return set_key_id(self, old, new)

    def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
             scheme: Scheme, pin: str | None = None) -> bytes:
        """Sign ``data`` with the private key ``key_id`` (ECDSA signatures DER-encoded). ``pin``
        is the context-specific login of a key with CKA_ALWAYS_AUTHENTICATE, not kept and not
        used for other keys; such a key without it is refused before C_SignInit (see
        :mod:`tui_csr.hsm.signing`)."""
        from tui_csr.hsm.signing import sign

        return sign(self, key_id, data, hash_alg, scheme, pin)

    def _fresh_session(self) -> None:
        """Move to a new session after a failed sign: SoftHSM and tpm2-pkcs11 leave the sign
        operation active (every later call in that session fails with CKR_OPERATION_ACTIVE).
        The spent session stays open until :meth:`close`: on SoftHSM, closing a session whose
        context-specific login failed logs the whole token out."""
        from pkcs11 import exceptions as px

        try:
            new = self._token.open(rw=True)  # shares the token's login
        except px.PKCS11Error:
            return  # keep the old one: the caller reports the sign's own failure
        self._spent.append(self._session)
        self._session = new
        self._fresh = None

    def destroy(self, key_id: bytes) -> int:
        """Destroy every object with CKA_ID ``key_id`` (keys, certificates) and any legacy
        marker naming it. Returns how many objects with that id were destroyed."""
        from pkcs11 import Attribute
        from pkcs11 import exceptions as px

        session = self._s()
        if self._fresh is not None and self._fresh[0] == key_id:
            self._fresh = None
        doing = f"destroying key {key_id.hex()}"
        try:
            objs = find_objects(session, {Attribute.ID: key_id})
            marks = [obj for kid, _tag, obj in legacy_markers(session) if kid == key_id]
            if not objs and not marks:
                self._ensure_present(doing)
            for obj in objs + marks:
                obj.destroy()
            return len(objs)
        except px.PKCS11Error as exc:
            raise token_error(exc, doing, self.token_label) from exc

    def key_exists(self, key_id: bytes) -> bool:
        """True when a private key with CKA_ID ``key_id`` is on the token."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        try:
            return settled(lambda: bool(find_objects(self._s(), {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}, limit=1)))
        except px.PKCS11Error as exc:
            raise token_error(exc, "looking for a key", self.token_label) from exc

    def key_attributes(self, key_id: bytes) -> dict[str, bool]:
        """The security flags of the private key ``key_id`` as the token reports them now."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        try:
            keys = find_objects(self._s(), {Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                            Attribute.ID: key_id})
            if not keys:
                raise TokenError(f"The private key {key_id.hex()} is not on token "
                                 f"'{self.token_label}'.", field="token")
            return read_flags(keys[0])
        except px.PKCS11Error as exc:
            raise token_error(exc, "reading the key's attributes", self.token_label) from exc

    def find_key(self, selector: KeySelector) -> ExistingKey:
        """The existing key pair ``selector`` (a :class:`~tui_csr.core.p11uri.KeySelector`)
        names, as an :class:`~tui_csr.hsm.existing.ExistingKey` (see :mod:`.existing`)."""
        from tui_csr.hsm.existing import find_existing_key

        return find_existing_key(self._s(), self.token_label or "", selector)

    def destroy_certificate(self, key_id: bytes, cert_der: bytes) -> int:
        """Destroy the certificate object(s) with CKA_ID ``key_id`` and value ``cert_der``."""
        from tui_csr.hsm.existing import destroy_certificate

        return destroy_certificate(self._s(), self.token_label or "", key_id, cert_der)

    def read_vendor_attribute(self, key_id: bytes, attr_type: int,
                              object_class: str = "private") -> bytes | None:
        """Raw value of attribute number ``attr_type`` (e.g. Luna's CKA_PKC_ECC 0x80000007) of
        the ``"private"`` or ``"public"`` key ``key_id``; None when the token does not know the
        attribute for it (CKR_ATTRIBUTE_TYPE_INVALID). Used for key attestation.
        """
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px
        from pkcs11.attributes import AttributeMapper

        cls = {"private": ObjectClass.PRIVATE_KEY, "public": ObjectClass.PUBLIC_KEY}[object_class]
        self._s()  # logged in: the short session below shares the login
        # python-pkcs11 decodes values through a per-session mapper that refuses attribute
        # numbers it does not know; a short-lived session whose mapper passes this one through
        # as bytes reads it without touching the main session or the library's globals.
        mapper = AttributeMapper()
        mapper.register_handler(attr_type, bytes, bytes)  # type: ignore[arg-type]
        doing = f"reading attribute 0x{attr_type:08X} of key {key_id.hex()}"
        try:
            session = self._token.open(attribute_mapper=mapper)
        except px.PKCS11Error as exc:
            raise token_error(exc, doing, self.token_label) from exc
        try:
            objs = find_objects(session, {Attribute.CLASS: cls, Attribute.ID: key_id})
            if not objs:
                raise TokenError(f"The {object_class} key {key_id.hex()} is not on token "
                                 f"'{self.token_label}'.", field="token")
            try:
                return bytes(objs[0][attr_type])
            except px.AttributeTypeInvalid:
                return None
        except px.PKCS11Error as exc:
            raise token_error(exc, doing, self.token_label) from exc
        finally:
            with contextlib.suppress(Exception):  # closing must not mask the read's outcome
                session.close()

    def list_keys(self) -> list[TokenKey]:
        """Every key pair on the token (by CKA_ID), with whether a legacy tui-csr marker (a
        CKO_DATA object made by earlier versions) names it."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        session = self._s()

        def search() -> tuple[dict[bytes, dict[str, Any]], dict[bytes, str]]:
            found: dict[bytes, dict[str, Any]] = {}
            for cls, kind in ((ObjectClass.PRIVATE_KEY, "private"),
                              (ObjectClass.PUBLIC_KEY, "public")):
                for obj in find_objects(session, {Attribute.CLASS: cls}):
                    values = read_attributes(obj, ("ID", "LABEL"))
                    kid = bytes(values.get("ID") or b"")
                    entry = found.setdefault(kid, {"label": values.get("LABEL") or "",
                                                   "kinds": set()})
                    entry["kinds"].add(kind)
            return found, {kid: tag for kid, tag, _obj in legacy_markers(session)}

        try:
            found, marked = settled(search)
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing keys", self.token_label) from exc
        self._ensure_present("listing keys")  # an empty list from a vanished token is no answer
        return [TokenKey(kid, e["label"], "private" in e["kinds"], "public" in e["kinds"],
                         kid in marked, marked.get(kid)) for kid, e in found.items()]

    def remove_legacy_markers(self, key_ids: list[bytes] | set[bytes]) -> int:
        """Destroy the legacy CKO_DATA markers naming ``key_ids``; returns how many."""
        from pkcs11 import exceptions as px

        try:
            return remove_markers(self._s(), set(key_ids))
        except px.PKCS11Error as exc:
            raise token_error(exc, "removing old tui-csr markers", self.token_label) from exc

    def object_count(self) -> int:
        """How many objects the logged-in session sees (tests use it to prove nothing was left)."""
        from pkcs11 import exceptions as px

        try:
            return settled(lambda: len(find_objects(self._s())))
        except px.PKCS11Error as exc:
            raise token_error(exc, "counting objects", self.token_label) from exc

    def describe(self) -> Any:
        """Every slot and token of the module (``tui-csr tokens``); see :mod:`.describe`."""
        from tui_csr.hsm.describe import describe_module

        return describe_module(self.load(), self.module_path, self.profile_override)
