"""Key pair generation and the CKA_ID rewrite, for :class:`~tui_csr.hsm.token.Pkcs11Token`.

Templates come from the token's profile (:mod:`tui_csr.hsm.templates`); what comes back is
read in one C_GetAttributeValue per object and checked: the security promise
(:data:`~tui_csr.hsm.keys.REQUIRED_PRIVATE`), CKA_ALWAYS_AUTHENTICATE when asked for, and the
public key (:mod:`tui_csr.hsm.pubkey`). A pair that fails is destroyed; a destroy that fails is
said, naming ``tui-csr orphans``. Runs on the token thread, as the token's methods do.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, NoReturn

from tui_csr.core.keyspec import KeySpec, KeyType
from tui_csr.errors import InputError, TokenError
from tui_csr.hsm.errors import TEMPLATE_REFUSALS, ckr_name, template_hint, token_error
from tui_csr.hsm.keys import KeyPair, find_objects, read_attributes, read_flags
from tui_csr.hsm.native import raw_for
from tui_csr.hsm.pubkey import PublicKeyProblem, checked_spki
from tui_csr.hsm.raw import RawModule, RawObject
from tui_csr.hsm.templates import forced_attributes, key_templates, promise_broken

if TYPE_CHECKING:
    from tui_csr.hsm.token import Pkcs11Token

ORPHANS = "run `tui-csr orphans` to find and destroy it"


def generate_keypair(token: Pkcs11Token, spec: KeySpec, label: str, key_id: bytes,
                     always_authenticate: bool) -> KeyPair:
    """Generate a non-extractable signing key pair with CKA_ID ``key_id`` in both templates.

    The private key's flags and the public key are read back and checked; a pair that
    breaks the security promise or has a public key other than asked for is destroyed and
    refused. A destroy that fails raises a TokenError naming ``tui-csr orphans``. Without
    ``key_id`` one is drawn (:meth:`Pkcs11Token.new_key_id`).
    """
    from pkcs11 import Attribute
    from pkcs11 import KeyType as P11KeyType
    from pkcs11 import exceptions as px

    reason = token.supports(spec)
    if reason:
        raise TokenError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
    problem = token._profile.label_problem(label)
    if problem:
        raise InputError(problem, field="label")
    if not key_id:
        key_id = token.new_key_id()
    if len(key_id) != token._profile.key_id_length:
        raise TokenError(f"A CKA_ID of {len(key_id)} bytes was chosen for token "
                         f"'{token.token_label}', whose profile {token._profile.name} uses "
                         f"{token._profile.key_id_length}-byte ids; nothing was made.",
                         field="token")
    session = token._s()
    public_template, private_template, left = key_templates(
        token._profile, spec, label, key_id, always_authenticate=always_authenticate)
    doing = f"creating the {spec.display} key pair"
    raw = raw_for(session)
    try:
        if raw is not None:
            pub, priv = _generate_raw(raw, session, spec, public_template, private_template)
        elif spec.key_type is KeyType.RSA:
            pub, priv = session.generate_keypair(
                P11KeyType.RSA, spec.bits, store=True,
                public_template=public_template, private_template=private_template)
        elif spec.key_type is KeyType.EDDSA:
            from pkcs11 import Mechanism

            # CKA_EC_PARAMS: the curve's OID (PKCS#11 3.0; SoftHSM 2.6 also takes the
            # PrintableString name "edwards25519").
            params = session.create_domain_parameters(
                P11KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: _curve_params(spec)},
                local=True)
            pub, priv = params.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True,
                public_template=public_template, private_template=private_template)
        else:
            params = session.create_domain_parameters(
                P11KeyType.EC, {Attribute.EC_PARAMS: _curve_params(spec)}, local=True)
            pub, priv = params.generate_keypair(
                store=True, public_template=public_template,
                private_template=private_template)
    except px.PKCS11Error as exc:
        code = ckr_name(exc) or ""
        hint = (template_hint(token._profile.name) if code in TEMPLATE_REFUSALS
                else token._profile.failure_hints.get(code, ""))
        error = token_error(exc, doing, token.token_label, hint)
        _after_failed_generation(token, key_id, doing, error)
        if spec.key_type is KeyType.EC:  # the curve's size, asked only now (see supports)
            with contextlib.suppress(px.PKCS11Error):
                reason = token.supports(spec, ec_sizes=True)
                if reason:
                    raise TokenError(reason, field="key_spec",
                                     code=error.code or "CKR_MECHANISM_INVALID") from exc
        raise error from exc

    checking = f"checking the new {spec.display} key pair"
    try:
        attrs = read_flags(priv)
        names = (("MODULUS", "PUBLIC_EXPONENT") if spec.key_type is KeyType.RSA
                 else ("EC_PARAMS", "EC_POINT")) + ("ENCRYPT", "WRAP", "VERIFY")
        public_values = read_attributes(pub, names)
    except px.PKCS11Error as exc:
        _discard(token, pub, priv, token_error(exc, checking, token.token_label))
    bad = promise_broken(attrs)
    if always_authenticate and attrs.get("ALWAYS_AUTHENTICATE") is not True:
        bad.append(f"ALWAYS_AUTHENTICATE={attrs.get('ALWAYS_AUTHENTICATE', 'missing')}")
    if bad:
        _discard(token, pub, priv, TokenError(
            f"Token '{token.token_label}' did not make the private key as asked "
            f"({', '.join(bad)}); the key pair was destroyed.",
            field="token", code="CKR_TEMPLATE_INCONSISTENT"))
    try:
        spki = checked_spki(spec, {k: bytes(v) for k, v in public_values.items()
                                   if isinstance(v, bytes | bytearray)})
    except PublicKeyProblem as exc:
        _discard(token, pub, priv, TokenError(
            f"Token '{token.token_label}' returned a public key that is not a valid "
            f"{spec.name} key: {exc}; the key pair was destroyed.", field="token"))
    token._fresh = (key_id, priv, pub)
    token._fresh_attrs = attrs
    return KeyPair(key_id=key_id, label=label, spki_der=spki, attributes=attrs,
                   forced=forced_attributes(attrs, public_values), left_to_token=left,
                   always_authenticate=bool(attrs.get("ALWAYS_AUTHENTICATE")))


def _curve_params(spec: KeySpec) -> bytes:
    """CKA_EC_PARAMS of an EC or Edwards spec: the named curve's OID (DER)."""
    if spec.key_type is KeyType.EDDSA:
        from tui_csr.core.extensions import oid_der

        return oid_der(spec.oid or "")
    from pkcs11.util.ec import encode_named_curve_parameters

    return encode_named_curve_parameters(spec.curve or "")


def _generate_raw(raw: RawModule, session: Any, spec: KeySpec, public: dict[Any, Any],
                  private: dict[Any, Any]) -> tuple[RawObject, RawObject]:
    """C_GenerateKeyPair with the templates python-pkcs11 would send (CKA_CLASS on both, the
    curve or the modulus size on the public one), and nothing read back: the caller reads
    each object once."""
    from pkcs11 import Attribute, Mechanism, ObjectClass

    public = {Attribute.CLASS: ObjectClass.PUBLIC_KEY, **public}
    private = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, **private}
    if spec.key_type is KeyType.RSA:
        mechanism = Mechanism.RSA_PKCS_KEY_PAIR_GEN
        public.setdefault(Attribute.PUBLIC_EXPONENT, b"\x01\x00\x01")
        public[Attribute.MODULUS_BITS] = spec.bits
    else:
        mechanism = (Mechanism.EC_EDWARDS_KEY_PAIR_GEN if spec.key_type is KeyType.EDDSA
                     else Mechanism.EC_KEY_PAIR_GEN)
        public[Attribute.EC_PARAMS] = _curve_params(spec)
    hpub, hpriv = raw.generate_keypair(session.handle, int(mechanism), public, private)
    return RawObject(raw, session, hpub), RawObject(raw, session, hpriv)


def _after_failed_generation(token: Pkcs11Token, key_id: bytes, doing: str,
                             error: TokenError) -> None:
    """After C_GenerateKeyPair failed: the token must still be there, and no object with
    the new CKA_ID may stay (a remote token may have made the pair before the link died).
    Raises when that cannot be made sure of."""
    from pkcs11 import Attribute
    from pkcs11 import exceptions as px

    token._ensure_present(doing)
    try:
        for obj in find_objects(token._s(), {Attribute.ID: key_id}):
            obj.destroy()
    except px.PKCS11Error as cleanup:
        raise TokenError(
            f"{error.message.rstrip('.')}; tui-csr could not make sure that no key pair was "
            f"left ({ckr_name(cleanup)}): if one was, {ORPHANS}.", field="token",
            code=error.code) from cleanup


def _discard(token: Pkcs11Token, pub: Any, priv: Any, error: TokenError) -> NoReturn:
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
                         f"'{token.token_label}' ({failures[0]}): {ORPHANS}.",
                         field="token", code=failures[0])
    raise error


def set_key_id(token: Pkcs11Token, old: bytes, new: bytes) -> bytes:
    """Rewrite the pair's CKA_ID from ``old`` to ``new`` where the token allows it; returns
    the id the pair has afterwards (``old`` when the profile or the token refuses: normal,
    not an error). Half a change (public done, private refused) is undone."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as px

    if not token._profile.key_id_mutable or old == new:
        return old
    doing = "setting CKA_ID"
    fresh = token._fresh
    if fresh is not None and fresh[0] == old:
        priv, pub = fresh[1], fresh[2]
    else:
        objs = find_objects(token._s(), {Attribute.ID: old})
        privs = [o for o in objs if o.object_class == ObjectClass.PRIVATE_KEY]
        pubs = [o for o in objs if o.object_class == ObjectClass.PUBLIC_KEY]
        if len(privs) == 1 and not pubs and len(find_objects(token._s(), {
                Attribute.ID: new, Attribute.CLASS: ObjectClass.PUBLIC_KEY})) == 1:
            # A rewrite cut short (the public key is rewritten first): finish it.
            try:
                privs[0][Attribute.ID] = new
            except px.PKCS11Error as exc:
                raise token_error(exc, doing, token.token_label) from exc
            return new
        if len(privs) != 1 or len(pubs) != 1:
            raise TokenError(f"While {doing} on token '{token.token_label}': key pair "
                             f"{old.hex()} is not there.", field="token")
        priv, pub = privs[0], pubs[0]
    try:
        pub[Attribute.ID] = new
    except px.PKCS11Error:
        token._ensure_present(doing)
        return old  # the token keeps ids as created
    try:
        priv[Attribute.ID] = new
    except px.PKCS11Error as exc:
        try:
            pub[Attribute.ID] = old
        except px.PKCS11Error as undo:
            raise TokenError(
                f"While {doing} on token '{token.token_label}': the private key kept "
                f"{old.hex()} but the public key now has {new.hex()} "
                f"({ckr_name(undo)}); {ORPHANS.replace('destroy it', 'repair it')}.",
                field="token", code=ckr_name(exc)) from exc
        token._ensure_present(doing)
        return old
    if fresh is not None and fresh[0] == old:
        token._fresh = (new, priv, pub)
    return new
