"""The PKCS#11 token, synchronous. Only ever called on the token thread (see ``worker.py``).

python-pkcs11 calls ``C_Initialize(NULL)``, after which SoftHSM disables its own locking: two
threads in the module at once can crash the process. So this class is never used directly by
the rest of the program; :class:`tui_csr.hsm.worker.AsyncToken` runs each call on one thread.

What differs between PKCS#11 implementations (templates, CKA_ID rules, label limits, known
mechanism bugs) comes from the token's :class:`~tui_csr.hsm.profiles.TokenProfile`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from typing import Any, NoReturn

from tui_csr.core.keyspec import HashAlg, KeySpec, KeyType, Scheme
from tui_csr.errors import ConfigError, InputError, TokenError
from tui_csr.hsm.certificates import CertificateMixin
from tui_csr.hsm.errors import TEMPLATE_REFUSALS, ckr_name, template_hint, token_error
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
from tui_csr.hsm.legacy import create_marker, legacy_markers, remove_markers
from tui_csr.hsm.profiles import PROFILES, TokenProfile, choose_profile
from tui_csr.hsm.pubkey import PublicKeyProblem, checked_spki
from tui_csr.hsm.templates import forced_attributes, key_templates, promise_broken

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

    # -- opening ------------------------------------------------------------------------------
    def load(self) -> Any:
        """Load the module (once). Raises ConfigError with a sentence."""
        import pkcs11
        from pkcs11 import exceptions as px

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
            self._lib = pkcs11.lib(path)
        except (px.PKCS11Error, OSError, RuntimeError) as exc:
            # The loader's text repeats the path ("OS exception while loading P: P: why").
            why = str(exc).replace(f"OS exception while loading {path}: ", "").replace(
                f"{path}: ", "").strip().rstrip(".") or type(exc).__name__
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
            tokens = list(lib.get_tokens())
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing the module's tokens") from exc
        # An uninitialised token (SoftHSM's free slot, tpm2-pkcs11's second slot: empty label)
        # is never a candidate.
        tokens = [t for t in tokens if TokenFlag(t.flags) & TokenFlag.TOKEN_INITIALIZED]
        labels = [t.label for t in tokens if t.label]
        if self.token_label is None and self.token_serial is None:
            if len(tokens) > 1:
                raise TokenError(
                    f"{path} has {len(tokens)} tokens ({', '.join(repr(t.label) for t in tokens)}"
                    "); choose one with --token or TUI_CSR_TOKEN (tui-csr tokens lists them).",
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
        self._fresh = None
        if self._session is not None:
            # Closing a dead session must not mask the reason it died.
            with contextlib.suppress(Exception):
                self._session.close()
            self._session = None

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
        """The slot's mechanism list (read once per token)."""
        if self._mechanisms is None:
            self._mechanisms = set(self._token.slot.get_mechanisms())
        return self._mechanisms

    def mechanism_info(self, mech: Any) -> Any:
        """The slot's info for ``mech`` (read once per mechanism)."""
        if mech not in self._mechanism_info:
            self._mechanism_info[mech] = self._token.slot.get_mechanism_info(mech)
        return self._mechanism_info[mech]

    def supports(self, spec: KeySpec) -> str | None:
        """None when the token can make ``spec``; else a sentence saying why not."""
        from tui_csr.hsm.describe import spec_problem

        return spec_problem(spec, self.mechanisms(), self.mechanism_info,
                            self._profile.refused_specs, self._token.label)

    def label_in_use(self, label: str) -> bool:
        """True when any key object on the token already carries ``label``."""
        from pkcs11 import Attribute

        return settled(lambda: bool(find_objects(self._s(), {Attribute.LABEL: label}, limit=1)))

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

    def generate_keypair(self, spec: KeySpec, label: str, key_id: bytes | str = b"", *,
                         always_authenticate: bool = False) -> KeyPair:
        """Generate a non-extractable signing key pair with CKA_ID ``key_id`` in both templates.

        The private key's flags and the public key are read back and checked; a pair that
        breaks the security promise or has a public key other than asked for is destroyed and
        refused. A destroy that fails raises a TokenError naming ``tui-csr orphans``.
        (A ``str`` third argument is the older marker-based call; see ``legacy.py``.)
        """
        if isinstance(key_id, str):
            return self.generate_keypair_marked(spec, label, key_id)
        from pkcs11 import Attribute
        from pkcs11 import KeyType as P11KeyType
        from pkcs11 import exceptions as px

        reason = self.supports(spec)
        if reason:
            raise TokenError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
        problem = self._profile.label_problem(label)
        if problem:
            raise InputError(problem, field="label")
        if not key_id:
            key_id = self.new_key_id()
        if len(key_id) != self._profile.key_id_length:
            raise ValueError(f"CKA_ID of {len(key_id)} bytes; token_profile "
                             f"{self._profile.name} uses {self._profile.key_id_length}")
        session = self._s()
        public_template, private_template, left = key_templates(
            self._profile, spec, label, key_id, always_authenticate=always_authenticate)
        doing = f"creating the {spec.display} key pair"
        try:
            if spec.key_type is KeyType.RSA:
                pub, priv = session.generate_keypair(
                    P11KeyType.RSA, spec.bits, store=True,
                    public_template=public_template, private_template=private_template)
            else:
                from pkcs11.util.ec import encode_named_curve_parameters

                params = session.create_domain_parameters(
                    P11KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(spec.curve)},
                    local=True)
                pub, priv = params.generate_keypair(
                    store=True, public_template=public_template,
                    private_template=private_template)
        except px.PKCS11Error as exc:
            code = ckr_name(exc) or ""
            hint = (template_hint(self._profile.name) if code in TEMPLATE_REFUSALS
                    else self._profile.failure_hints.get(code, ""))
            error = token_error(exc, doing, self.token_label, hint)
            self._after_failed_generation(key_id, doing, error)
            raise error from exc

        checking = f"checking the new {spec.display} key pair"
        try:
            attrs = read_flags(priv)
            names = (("MODULUS", "PUBLIC_EXPONENT") if spec.key_type is KeyType.RSA
                     else ("EC_PARAMS", "EC_POINT")) + ("ENCRYPT", "WRAP", "VERIFY")
            public_values = read_attributes(pub, names)
        except px.PKCS11Error as exc:
            self._discard(pub, priv, token_error(exc, checking, self.token_label))
        bad = promise_broken(attrs)
        if always_authenticate and attrs.get("ALWAYS_AUTHENTICATE") is not True:
            bad.append(f"ALWAYS_AUTHENTICATE={attrs.get('ALWAYS_AUTHENTICATE', 'missing')}")
        if bad:
            self._discard(pub, priv, TokenError(
                f"Token '{self.token_label}' did not make the private key as asked "
                f"({', '.join(bad)}); the key pair was destroyed.",
                field="token", code="CKR_TEMPLATE_INCONSISTENT"))
        try:
            spki = checked_spki(spec, {k: bytes(v) for k, v in public_values.items()
                                       if isinstance(v, bytes | bytearray)})
        except PublicKeyProblem as exc:
            self._discard(pub, priv, TokenError(
                f"Token '{self.token_label}' returned a public key that is not a valid "
                f"{spec.name} key: {exc}; the key pair was destroyed.", field="token"))
        self._fresh = (key_id, priv, pub)
        self._fresh_attrs = attrs
        return KeyPair(key_id=key_id, label=label, spki_der=spki, attributes=attrs,
                       forced=forced_attributes(attrs, public_values), left_to_token=left,
                       always_authenticate=bool(attrs.get("ALWAYS_AUTHENTICATE")))

    def _after_failed_generation(self, key_id: bytes, doing: str, error: TokenError) -> None:
        """After C_GenerateKeyPair failed: the token must still be there, and no object with
        the new CKA_ID may stay (a remote token may have made the pair before the link died).
        Raises when that cannot be made sure of."""
        from pkcs11 import Attribute
        from pkcs11 import exceptions as px

        self._ensure_present(doing)
        try:
            for obj in find_objects(self._s(), {Attribute.ID: key_id}):
                obj.destroy()
        except px.PKCS11Error as cleanup:
            raise TokenError(
                f"{error.message.rstrip('.')}; tui-csr could not make sure that no key pair was "
                f"left ({ckr_name(cleanup)}): if one was, {_ORPHANS}.", field="token",
                code=error.code) from cleanup

    def _discard(self, pub: Any, priv: Any, error: TokenError) -> NoReturn:
        """Destroy a pair that failed a check and raise ``error``; when the destroy fails,
        raise a TokenError saying so (never swallowed)."""
        from pkcs11 import exceptions as px

        failures = []
        for obj in (priv, pub):
            try:
                obj.destroy()
            except (px.ObjectHandleInvalid, px.KeyHandleInvalid):
                continue  # already gone
            except px.PKCS11Error as exc:
                failures.append(ckr_name(exc) or type(exc).__name__)
        if failures:
            message = error.message.replace("; the key pair was destroyed.", "").rstrip(".")
            raise TokenError(f"{message}; the key pair could not be removed from token "
                             f"'{self.token_label}' ({failures[0]}): {_ORPHANS}.",
                             field="token", code=failures[0])
        raise error

    def set_key_id(self, old: bytes, new: bytes) -> bytes:
        """Rewrite the pair's CKA_ID from ``old`` to ``new`` where the token allows it; returns
        the id the pair has afterwards (``old`` when the profile or the token refuses: normal,
        not an error). Half a change (public done, private refused) is undone."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        if not self._profile.key_id_mutable or old == new:
            return old
        doing = "setting CKA_ID"
        fresh = self._fresh
        if fresh is not None and fresh[0] == old:
            priv, pub = fresh[1], fresh[2]
        else:
            objs = find_objects(self._s(), {Attribute.ID: old})
            privs = [o for o in objs if o.object_class == ObjectClass.PRIVATE_KEY]
            pubs = [o for o in objs if o.object_class == ObjectClass.PUBLIC_KEY]
            if len(privs) != 1 or len(pubs) != 1:
                raise TokenError(f"While {doing} on token '{self.token_label}': key pair "
                                 f"{old.hex()} is not there.", field="token")
            priv, pub = privs[0], pubs[0]
        try:
            pub[Attribute.ID] = new
        except px.PKCS11Error:
            self._ensure_present(doing)
            return old  # the token keeps ids as created
        try:
            priv[Attribute.ID] = new
        except px.PKCS11Error as exc:
            try:
                pub[Attribute.ID] = old
            except px.PKCS11Error as undo:
                raise TokenError(
                    f"While {doing} on token '{self.token_label}': the private key kept "
                    f"{old.hex()} but the public key now has {new.hex()} "
                    f"({ckr_name(undo)}); {_ORPHANS.replace('destroy it', 'repair it')}.",
                    field="token", code=ckr_name(exc)) from exc
            self._ensure_present(doing)
            return old
        if fresh is not None and fresh[0] == old:
            self._fresh = (new, priv, pub)
        return new

    def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
             scheme: Scheme, pin: str | None = None) -> bytes:
        """Sign ``data`` with the private key ``key_id``; ECDSA signatures come back DER-encoded.

        Uses the combined hash-and-sign mechanism where the slot lists it; otherwise hashes in
        software and uses the raw mechanism (SoftHSM 2.6 has no CKM_ECDSA_SHA256). ``pin`` is
        the context-specific login (C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit) that keys
        with CKA_ALWAYS_AUTHENTICATE need; it is not kept, and not used for other keys. Such a
        key without a PIN is refused before C_SignInit: on tpm2-pkcs11 a failed sign leaves the
        operation active and the key impossible to destroy in this process.
        """
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        session = self._s()
        doing = "signing the CSR"
        try:
            fresh = self._fresh
            if fresh is not None and fresh[0] == key_id:
                priv, always = fresh[1], bool(self._fresh_attrs.get("ALWAYS_AUTHENTICATE"))
            else:
                keys = find_objects(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                              Attribute.ID: key_id})
                if len(keys) != 1:
                    self._ensure_present(doing)
                    raise TokenError(
                        f"The private key {key_id.hex()} is not on token '{self.token_label}'.",
                        field="token", code="CKR_OBJECT_HANDLE_INVALID")
                priv = keys[0]
                always = bool(read_attributes(priv, ("ALWAYS_AUTHENTICATE",)).get(
                    "ALWAYS_AUTHENTICATE"))
        except px.PKCS11Error as exc:
            self._ensure_present(doing)
            raise token_error(exc, doing, self.token_label) from exc
        if always and pin is None:
            raise TokenError(f"Key {key_id.hex()} on token '{self.token_label}' needs the PIN "
                             "again before each signature (CKA_ALWAYS_AUTHENTICATE).",
                             field="pin", code="CKR_USER_NOT_LOGGED_IN")
        try:
            return self._sign_with(priv, data, hash_alg, scheme, pin if always else None)
        except px.PKCS11Error as exc:
            self._ensure_present(doing)
            self._fresh_session()
            if isinstance(exc, px.PinIncorrect):
                raise TokenError(f"Wrong PIN for the signature with key {key_id.hex()} on token "
                                 f"'{self.token_label}'.", field="pin",
                                 code="CKR_PIN_INCORRECT") from exc
            if isinstance(exc, px.UserNotLoggedIn):
                raise TokenError(f"Key {key_id.hex()} on token '{self.token_label}' needs the "
                                 "PIN again before each signature (CKA_ALWAYS_AUTHENTICATE).",
                                 field="pin", code="CKR_USER_NOT_LOGGED_IN") from exc
            raise token_error(exc, doing, self.token_label) from exc

    def _sign_with(self, priv: Any, data: bytes, hash_alg: HashAlg, scheme: Scheme,
                   pin: str | None) -> bytes:
        """One C_SignInit/C_Sign with the best mechanism the slot lists."""
        from pkcs11 import MGF, Mechanism

        extra: dict[str, Any] = {"pin": pin} if pin is not None else {}
        mechs = self.mechanisms()
        h = hash_alg.value  # SHA256 ...
        digest = hashlib.new(hash_alg.asn1_name, data).digest()
        if scheme is Scheme.ECDSA:
            from pkcs11.util.ec import encode_ecdsa_signature

            combined = getattr(Mechanism, f"ECDSA_{h}", None)
            if combined in mechs:
                raw = priv.sign(data, mechanism=combined, **extra)
            else:
                raw = priv.sign(digest, mechanism=Mechanism.ECDSA, **extra)
            return encode_ecdsa_signature(raw)
        if scheme is Scheme.PSS:
            param = (getattr(Mechanism, h), getattr(MGF, h), hash_alg.octets)
            combined = getattr(Mechanism, f"{h}_RSA_PKCS_PSS")
            if combined in mechs:
                return priv.sign(data, mechanism=combined, mechanism_param=param, **extra)
            return priv.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=param,
                             **extra)
        combined = getattr(Mechanism, f"{h}_RSA_PKCS")
        if combined in mechs:
            return priv.sign(data, mechanism=combined, **extra)
        return priv.sign(digest_info(hash_alg, digest), mechanism=Mechanism.RSA_PKCS, **extra)

    def _fresh_session(self) -> None:
        """Replace the session after a failed sign: some modules (tpm2-pkcs11) leave the sign
        operation active, and every later search in that session would fail. The new session
        is opened before the old one closes, so the login (per token) stays."""
        from pkcs11 import exceptions as px

        old = self._session
        try:
            self._session = self._token.open(rw=True)
        except px.PKCS11Error:
            return  # keep the old one: the caller reports the sign's own failure
        self._fresh = None
        with contextlib.suppress(Exception):  # closing must not mask the sign's failure
            old.close()

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

        keys = find_objects(self._s(), {Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                        Attribute.ID: key_id})
        if not keys:
            raise TokenError(f"The private key {key_id.hex()} is not on token "
                             f"'{self.token_label}'.", field="token")
        return read_flags(keys[0])

    def find_key(self, selector: Any) -> Any:
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
        mapper.register_handler(attr_type, bytes, bytes)
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

    # -- the marker-based generate path of earlier versions (until the service uses intents) --
    def generate_keypair_marked(self, spec: KeySpec, label: str, tag: str = "") -> KeyPair:
        """The older call: a CKO_DATA marker (store id ``tag``) before generation, then the
        pair under a random id rewritten to the SHA-1 of its public key where allowed."""
        from pkcs11 import exceptions as px

        temp_id = self.new_key_id()
        doing = f"creating the {spec.display} key pair"
        try:
            create_marker(self._s(), temp_id, tag or label)
        except px.PKCS11Error as exc:
            self._ensure_present(doing)
            raise token_error(exc, doing, self.token_label) from exc
        try:
            pair = self.generate_keypair(spec, label, temp_id)
        except BaseException:
            with contextlib.suppress(Exception):
                remove_markers(self._s(), {temp_id})
            raise
        final = key_id_for(pair.spki_der)[: self._profile.key_id_length]
        try:
            if self._profile.key_id_mutable:
                create_marker(self._s(), final, tag or label)
            key_id = self.set_key_id(temp_id, final)
            remove_markers(self._s(), {final} if key_id == temp_id else {temp_id})
        except BaseException:
            with contextlib.suppress(Exception):
                self.destroy(temp_id)
                self.destroy(final)
                remove_markers(self._s(), {temp_id, final})
            raise
        return KeyPair(key_id=key_id, label=label, spki_der=pair.spki_der,
                       attributes=pair.attributes, forced=pair.forced,
                       left_to_token=pair.left_to_token,
                       always_authenticate=pair.always_authenticate)

    def object_count(self) -> int:
        """How many objects the logged-in session sees (tests use it to prove nothing was left)."""
        return settled(lambda: len(find_objects(self._s())))

    def describe(self) -> Any:
        """Every slot and token of the module (``tui-csr tokens``); see :mod:`.describe`."""
        from tui_csr.hsm.describe import describe_module

        return describe_module(self.load(), self.module_path, self.profile_override)
