"""The PKCS#11 token, synchronous. Only ever called on the token thread (see ``worker.py``).

python-pkcs11 calls ``C_Initialize(NULL)``, after which SoftHSM disables its own locking: two
threads in the module at once can crash the process. So this class is never used directly by
the rest of the program; :class:`tui_csr.hsm.worker.AsyncToken` runs each call on one thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from typing import Any

from tui_csr.core.keyspec import HashAlg, KeySpec, KeyType, Scheme
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
    key_id_for,
    pkcs11_uri,
    read_flags,
    serial_of,
    settled,
    spki_der_of,
)


class Pkcs11Token(CertificateMixin):
    """One PKCS#11 token, selected by label (or serial), with one logged-in session.

    The PIN is passed to :meth:`login` and not kept.
    """

    def __init__(self, module_path: str, token_label: str | None = None,
                 token_serial: str | None = None) -> None:
        self.module_path = module_path
        self.token_label = token_label
        self.token_serial = token_serial
        self._lib: Any = None
        self._token: Any = None
        self._session: Any = None
        self._mechanisms: set[Any] | None = None
        #: (CKA_ID, private key object) of the pair generated last: the CSR's signature uses it
        #: without searching the token again (a search walks every object: ~1 ms per 100).
        self._fresh: tuple[bytes, Any] | None = None

    # -- opening ------------------------------------------------------------------------------
    def open(self) -> TokenInfo:
        """Load the module and find the token. Raises ConfigError/TokenError with a sentence."""
        import pkcs11
        from pkcs11 import exceptions as px

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
        try:
            tokens = list(self._lib.get_tokens())
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing the module's tokens") from exc
        labels = [t.label for t in tokens if t.label]
        match = [t for t in tokens
                 if (self.token_label is None or t.label == self.token_label)
                 and (self.token_serial is None or serial_of(t) == self.token_serial)]
        if not match:
            want = (f"label '{self.token_label}'" if self.token_label is not None
                    else f"serial '{self.token_serial}'")
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
        return self.info()

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
            module_description=f"{self._lib.manufacturer_id.strip()} "
                               f"{self._lib.library_description.strip()}",
        )

    @property
    def logged_in(self) -> bool:
        """True once a session is open (and logged in when the token needs it)."""
        return self._session is not None

    def login(self, pin: str | None) -> TokenInfo:
        """Open the one read-write session, logging in with ``pin`` (not kept)."""
        from pkcs11 import exceptions as px

        if self._token is None:
            self.open()
        if self._session is not None:
            return self.info()
        label = self._token.label
        try:
            self._session = self._token.open(user_pin=pin or None, rw=True)
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
            raise TokenError(f"Wrong PIN for token '{label}'.{hint}", field="pin",
                             code="CKR_PIN_INCORRECT") from exc
        except px.PinLocked as exc:
            raise TokenError(f"The user PIN of token '{label}' is locked; the security officer "
                             "must unlock it.", field="pin", code="CKR_PIN_LOCKED") from exc
        except px.PKCS11Error as exc:
            raise token_error(exc, "logging in", label) from exc
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
        """The slot's mechanism list (cached)."""
        if self._mechanisms is None:
            self._mechanisms = set(self._token.slot.get_mechanisms())
        return self._mechanisms

    def supports(self, spec: KeySpec) -> str | None:
        """None when the token can make ``spec``; else a sentence saying why not."""
        from pkcs11 import Mechanism

        mech = (Mechanism.RSA_PKCS_KEY_PAIR_GEN if spec.key_type is KeyType.RSA
                else Mechanism.EC_KEY_PAIR_GEN)
        label = self._token.label
        if mech not in self.mechanisms():
            return f"Token '{label}' cannot generate {spec.key_type.value} keys ({mech.name} is not listed)."
        info = self._token.slot.get_mechanism_info(mech)
        lo, hi = info.min_key_length, info.max_key_length
        if spec.key_type is KeyType.RSA:
            if not lo <= spec.bits <= hi:
                return (f"Token '{label}' supports RSA keys of {lo} to {hi} bits, not {spec.bits}.")
        elif hi and not lo <= spec.bits <= hi:
            return f"Token '{label}' supports EC curves of {lo} to {hi} bits, not {spec.name}."
        sign = Mechanism.RSA_PKCS if spec.key_type is KeyType.RSA else Mechanism.ECDSA
        if sign not in self.mechanisms() and not self._combined_any(spec):
            return f"Token '{label}' cannot sign with {spec.key_type.value} keys."
        return None

    def _combined_any(self, spec: KeySpec) -> bool:
        names = {m.name for m in self.mechanisms()}
        suffix = "RSA_PKCS" if spec.key_type is KeyType.RSA else ""
        return any(n.startswith("SHA") and n.endswith(suffix) for n in names) if suffix else any(
            n.startswith("ECDSA_SHA") for n in names)

    def label_in_use(self, label: str) -> bool:
        """True when any key object on the token already carries ``label``."""
        from pkcs11 import Attribute

        return settled(lambda: any(True for _ in self._s().get_objects({Attribute.LABEL: label})))

    # -- keys ------------------------------------------------------------------------------------
    def generate_keypair(self, spec: KeySpec, label: str, tag: str = "") -> KeyPair:
        """Generate a non-extractable signing key pair; returns its CKA_ID and public key.

        The private template is explicit (real HSMs differ in their defaults), and the attributes
        are read back: a pair the token did not make as asked is destroyed again.
        """
        from pkcs11 import Attribute
        from pkcs11 import KeyType as P11KeyType
        from pkcs11 import exceptions as px

        reason = self.supports(spec)
        if reason:
            raise TokenError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
        session = self._s()
        temp_id = secrets.token_bytes(20)
        public_template = {
            Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True,
            Attribute.ENCRYPT: False, Attribute.WRAP: False, Attribute.LABEL: label,
            Attribute.ID: temp_id,
        }
        private_template = {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
            Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.LABEL: label,
            Attribute.ID: temp_id,
        }
        doing = f"generating an {spec.display} key"  # an RSA ..., an EC ...
        # The marker comes first: a process killed at any later point leaves a key pair that an
        # orphan scan finds (a marker naming a key that never came is ignored by the scan).
        try:
            self._mark(temp_id, tag or label)
        except px.PKCS11Error as exc:
            self._ensure_present(doing)
            raise token_error(exc, doing, self.token_label) from exc
        key_id = temp_id
        try:
            if spec.key_type is KeyType.RSA:
                public_template[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
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
            self._destroy_by_id(temp_id)
            self._ensure_present(doing)
            raise token_error(exc, doing, self.token_label) from exc

        try:
            attrs = read_flags(priv)
            bad = [name for name, want in REQUIRED_PRIVATE.items() if attrs.get(name) is not want]
            if bad:
                raise TokenError(
                    f"Token '{self.token_label}' did not make the private key as asked "
                    f"({', '.join(f'{n}={attrs.get(n)}' for n in bad)}); the key pair was destroyed.",
                    field="token", code="CKR_TEMPLATE_INCONSISTENT")
            spki = spki_der_of(pub, spec)
            key_id = key_id_for(spki)
            if any(True for _ in session.get_objects({Attribute.ID: key_id})):
                raise TokenError("A key with the same public key id already exists on token "
                                 f"'{self.token_label}'.", field="token")
            self._mark(key_id, tag or label)  # before the ids change: see the first marker
            try:
                pub[Attribute.ID] = key_id
                priv[Attribute.ID] = key_id
            except px.PKCS11Error:
                self._unmark(key_id)
                key_id = temp_id  # tokens may refuse CKA_ID changes; the random id stays unique
                pub[Attribute.ID] = temp_id
            if key_id != temp_id:
                self._unmark(temp_id)
            self._fresh = (key_id, priv)
            return KeyPair(key_id=key_id, label=label, spki_der=spki, attributes=attrs)
        except BaseException as exc:
            # Whatever went wrong after generation, no half-made key pair stays on the token.
            self._destroy_quietly(pub, priv)
            with contextlib.suppress(Exception):
                self._unmark(temp_id, key_id)
            if isinstance(exc, px.PKCS11Error):
                raise token_error(exc, doing, self.token_label) from exc
            if isinstance(exc, ValueError):  # an attribute that does not parse (seen: empty)
                raise TokenError(f"While {doing} on token '{self.token_label}': the token "
                                 f"returned a public key that cannot be read ({exc}); the key "
                                 "pair was destroyed.", field="token") from exc
            raise

    def _mark(self, key_id: bytes, tag: str) -> None:
        """A private data object naming the key id, labelled with the store's id (``tag``): lets
        an orphan scan tell the keys of its own store from other stores' and other tools'."""
        from pkcs11 import Attribute, ObjectClass

        self._s().create_object({
            Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.PRIVATE: True,
            Attribute.APPLICATION: MARKER_APPLICATION, Attribute.LABEL: tag,
            Attribute.VALUE: key_id.hex().encode(),
        })

    def _unmark(self, *key_ids: bytes) -> None:
        """Destroy the markers naming ``key_ids``."""
        from pkcs11 import Attribute, ObjectClass

        for key_id in dict.fromkeys(key_ids):
            for obj in list(self._s().get_objects({
                    Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: MARKER_APPLICATION,
                    Attribute.VALUE: key_id.hex().encode()})):
                obj.destroy()

    def _destroy_quietly(self, *objs: Any) -> None:
        for obj in objs:
            with contextlib.suppress(Exception):  # best-effort clean-up after a failure
                obj.destroy()

    def _destroy_by_id(self, key_id: bytes) -> None:
        with contextlib.suppress(Exception):  # best-effort clean-up after a failure
            self.destroy(key_id)

    def sign(self, key_id: bytes, data: bytes, spec: KeySpec, hash_alg: HashAlg,
             scheme: Scheme) -> bytes:
        """Sign ``data`` with the private key ``key_id``; ECDSA signatures come back DER-encoded.

        Uses the combined hash-and-sign mechanism where the slot lists it; otherwise hashes in
        software and uses the raw mechanism (SoftHSM 2.6 has no CKM_ECDSA_SHA256).
        """
        from pkcs11 import MGF, Attribute, Mechanism, ObjectClass
        from pkcs11 import exceptions as px

        session = self._s()
        try:
            fresh = self._fresh
            if fresh is not None and fresh[0] == key_id:
                priv = fresh[1]
            else:
                keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                 Attribute.ID: key_id}))
                if len(keys) != 1:
                    self._ensure_present("signing the CSR")
                    raise TokenError(
                        f"The private key {key_id.hex()} is not on token '{self.token_label}'.",
                        field="token", code="CKR_OBJECT_HANDLE_INVALID")
                priv = keys[0]
            mechs = self.mechanisms()
            h = hash_alg.value  # SHA256 ...
            digest = hashlib.new(hash_alg.asn1_name, data).digest()
            if scheme is Scheme.ECDSA:
                from pkcs11.util.ec import encode_ecdsa_signature

                combined = getattr(Mechanism, f"ECDSA_{h}", None)
                if combined in mechs:
                    raw = priv.sign(data, mechanism=combined)
                else:
                    raw = priv.sign(digest, mechanism=Mechanism.ECDSA)
                return encode_ecdsa_signature(raw)
            if scheme is Scheme.PSS:
                param = (getattr(Mechanism, h), getattr(MGF, h), hash_alg.octets)
                combined = getattr(Mechanism, f"{h}_RSA_PKCS_PSS")
                if combined in mechs:
                    return priv.sign(data, mechanism=combined, mechanism_param=param)
                return priv.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=param)
            combined = getattr(Mechanism, f"{h}_RSA_PKCS")
            if combined in mechs:
                return priv.sign(data, mechanism=combined)
            return priv.sign(digest_info(hash_alg, digest), mechanism=Mechanism.RSA_PKCS)
        except px.PKCS11Error as exc:
            self._ensure_present("signing the CSR")
            raise token_error(exc, "signing the CSR", self.token_label) from exc

    def destroy(self, key_id: bytes) -> int:
        """Destroy every object with CKA_ID ``key_id`` (keys, certificates) and its marker.

        Returns how many objects were destroyed.
        """
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        session = self._s()
        if self._fresh is not None and self._fresh[0] == key_id:
            self._fresh = None
        try:
            objs = list(session.get_objects({Attribute.ID: key_id}))
            marks = list(session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                              Attribute.APPLICATION: MARKER_APPLICATION,
                                              Attribute.VALUE: key_id.hex().encode()}))
            if not objs and not marks:
                self._ensure_present(f"destroying key {key_id.hex()}")
            for obj in objs + marks:
                obj.destroy()
            return len(objs)
        except px.PKCS11Error as exc:
            raise token_error(exc, f"destroying key {key_id.hex()}", self.token_label) from exc

    def key_exists(self, key_id: bytes) -> bool:
        """True when a private key with CKA_ID ``key_id`` is on the token."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        try:
            return settled(lambda: any(True for _ in self._s().get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})))
        except px.PKCS11Error as exc:
            raise token_error(exc, "looking for a key", self.token_label) from exc

    def key_attributes(self, key_id: bytes) -> dict[str, bool]:
        """The security flags of the private key ``key_id`` as the token reports them now."""
        from pkcs11 import Attribute, ObjectClass

        keys = list(self._s().get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                           Attribute.ID: key_id}))
        if not keys:
            raise TokenError(f"The private key {key_id.hex()} is not on token "
                             f"'{self.token_label}'.", field="token")
        return read_flags(keys[0])

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
            objs = list(session.get_objects({Attribute.CLASS: cls, Attribute.ID: key_id}))
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
        """Every key pair on the token (by CKA_ID), with whether tui-csr's marker names it."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        session = self._s()

        def search() -> tuple[dict[bytes, dict[str, Any]], dict[bytes, str]]:
            found: dict[bytes, dict[str, Any]] = {}
            for cls, kind in ((ObjectClass.PRIVATE_KEY, "private"),
                              (ObjectClass.PUBLIC_KEY, "public")):
                for obj in session.get_objects({Attribute.CLASS: cls}):
                    kid = bytes(obj[Attribute.ID] or b"")
                    entry = found.setdefault(kid, {"label": obj.label or "", "kinds": set()})
                    entry["kinds"].add(kind)
            marked: dict[bytes, str] = {}
            for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                          Attribute.APPLICATION: MARKER_APPLICATION}):
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    marked[bytes.fromhex(bytes(o[Attribute.VALUE]).decode())] = str(
                        o[Attribute.LABEL] or "")
            return found, marked

        try:
            found, marked = settled(search)
        except px.PKCS11Error as exc:
            raise token_error(exc, "listing keys", self.token_label) from exc
        self._ensure_present("listing keys")  # an empty list from a vanished token is no answer
        return [TokenKey(kid, e["label"], "private" in e["kinds"], "public" in e["kinds"],
                         kid in marked, marked.get(kid)) for kid, e in found.items()]

    def object_count(self) -> int:
        """How many objects the logged-in session sees (tests use it to prove nothing was left)."""
        return settled(lambda: sum(1 for _ in self._s().get_objects()))
