"""Certificate objects and public-key reads on the token (request lifecycle: import, adopt).

A mixin of :class:`tui_csr.hsm.token.Pkcs11Token`; like it, only ever run on the token thread.
"""

from __future__ import annotations

from typing import Any

from tui_csr.errors import TokenError
from tui_csr.hsm.errors import token_error
from tui_csr.hsm.keys import ec_spki, find_objects
from tui_csr.hsm.profiles import TokenProfile


class CertificateMixin:
    """Certificate objects and public-key reads (request lifecycle: import, adopt)."""

    token_label: str | None

    def _s(self) -> Any: ...  # provided by Pkcs11Token

    @property
    def profile(self) -> TokenProfile:  # provided by Pkcs11Token
        raise NotImplementedError

    def store_certificate(self, key_id: bytes, label: str, cert_der: bytes, subject_der: bytes,
                          issuer_der: bytes, serial_der: bytes) -> None:
        """Store an X.509 certificate object next to the key (same CKA_ID and CKA_LABEL)."""
        from pkcs11 import Attribute, CertificateType, ObjectClass
        from pkcs11 import exceptions as px

        profile = self.profile
        if not profile.stores_certificates:
            raise TokenError(f"Token '{self.token_label}' ({profile.title}) cannot hold "
                             "certificate objects; the certificate is kept in the store only.",
                             field="token", code="CKR_TEMPLATE_INCONSISTENT")
        try:
            self._s().create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.ID: key_id,
                Attribute.LABEL: label, Attribute.SUBJECT: subject_der,
                Attribute.ISSUER: issuer_der, Attribute.SERIAL_NUMBER: serial_der,
                Attribute.VALUE: cert_der,
            })
        except px.PKCS11Error as exc:
            raise token_error(exc, "storing the certificate", self.token_label) from exc

    def certificates(self, key_id: bytes) -> list[bytes]:
        """DER of every certificate object with CKA_ID ``key_id``."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        try:
            return [bytes(o[Attribute.VALUE]) for o in find_objects(
                self._s(), {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id})]
        except px.PKCS11Error as exc:
            raise token_error(exc, "reading certificates", self.token_label) from exc

    def destroy_certificates(self, key_id: bytes) -> int:
        """Destroy the certificate objects with CKA_ID ``key_id`` (roll-back of an import)."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as px

        try:
            objs = find_objects(self._s(), {Attribute.CLASS: ObjectClass.CERTIFICATE,
                                            Attribute.ID: key_id})
            for obj in objs:
                obj.destroy()
            return len(objs)
        except px.PKCS11Error as exc:
            raise token_error(exc, "removing a certificate", self.token_label) from exc

    def public_key_spki(self, key_id: bytes) -> bytes:
        """SubjectPublicKeyInfo (DER) of the public key object with CKA_ID ``key_id``.

        Read from the public object found by CKA_ID: reading it through the private object
        fails on many tokens."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import KeyType as P11KeyType
        from pkcs11 import exceptions as px

        try:
            pubs = find_objects(self._s(), {Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                            Attribute.ID: key_id})
            if not pubs:
                raise TokenError(f"No public key with id {key_id.hex()} on token "
                                 f"'{self.token_label}'.", field="token")
            pub = pubs[0]
            if pub.key_type == P11KeyType.RSA:
                from asn1crypto import keys
                from pkcs11.util.rsa import encode_rsa_public_key

                rsa = keys.RSAPublicKey.load(encode_rsa_public_key(pub))
                return keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"},
                                           "public_key": rsa}).dump()
            return ec_spki(bytes(pub[Attribute.EC_PARAMS]), bytes(pub[Attribute.EC_POINT]))
        except px.PKCS11Error as exc:
            raise token_error(exc, "reading a public key", self.token_label) from exc
