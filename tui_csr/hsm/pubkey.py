"""Public keys as read from a token, checked before anything is built on them.

A token may hand back an EC point that is not on the curve asked for (tpm2-pkcs11's P-521 keys
come back as ``04 85 04 …``: an OCTET STRING whose length octet is wrong), a point of another
curve, or an RSA modulus of another size. A CSR built on such a key fails later, at signing or
at the CA; so the key pair is refused here with a sentence saying what was wrong.

Pure functions over the attribute values: no PKCS#11 call happens here.
"""

from __future__ import annotations

from tui_csr.core.keyspec import KeySpec, KeyType

_CURVE_OIDS = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34",
               "secp521r1": "1.3.132.0.35"}
_COORD = {"secp256r1": 32, "secp384r1": 48, "secp521r1": 66}


class PublicKeyProblem(ValueError):
    """The token's public key does not match what was asked for; ``str()`` is the reason (a
    sentence fragment: "its EC point is not on curve P-256")."""


def unwrap_ec_point(value: bytes, curve: str) -> bytes:
    """The X9.62 point from CKA_EC_POINT, which most tokens wrap in a DER OCTET STRING and some
    return raw. Raises :class:`PublicKeyProblem` for anything else."""
    coord = _COORD[curve]
    sizes = {1 + 2 * coord, 1 + coord}  # uncompressed, compressed
    if len(value) >= 2 and value[0] == 0x04:
        body = _der_octet_string(value)
        if body is not None and len(body) in sizes and body[:1] in (b"\x02", b"\x03", b"\x04"):
            return body
    if len(value) in sizes and value[:1] in (b"\x02", b"\x03", b"\x04"):
        return value  # raw (a wrapped point is always longer than a raw one)
    head = value[:4].hex(" ")
    raise PublicKeyProblem(f"its CKA_EC_POINT ({len(value)} bytes, starting {head}) is neither "
                           "a DER OCTET STRING holding a point nor a raw point")


def _der_octet_string(value: bytes) -> bytes | None:
    """The contents of a definite-length DER OCTET STRING that spans all of ``value``."""
    if len(value) < 2 or value[0] != 0x04:
        return None
    first = value[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 2 or len(value) < 2 + count:
            return None
        length = int.from_bytes(value[2:2 + count], "big")
        if length < 0x80 or (count == 2 and length < 0x100):
            return None  # not the shortest form: not DER
        start = 2 + count
    if start + length != len(value):
        return None
    return value[start:]


def checked_ec_spki(spec: KeySpec, ec_params: bytes, ec_point: bytes) -> bytes:
    """SubjectPublicKeyInfo (DER) of an EC key of ``spec``'s curve, after checking that the
    token's CKA_EC_PARAMS names that curve and CKA_EC_POINT is a point on it."""
    from asn1crypto import core
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = spec.curve or ""
    want_oid = _CURVE_OIDS[curve]
    try:
        params = core.ObjectIdentifier.load(ec_params, strict=True).dotted
    except ValueError as exc:
        raise PublicKeyProblem("its CKA_EC_PARAMS is not a named curve") from exc
    if params != want_oid:
        raise PublicKeyProblem(f"its CKA_EC_PARAMS names curve {params}, not {spec.name}")
    point = unwrap_ec_point(ec_point, curve)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(),
             "secp521r1": ec.SECP521R1()}[curve], point)
    except ValueError as exc:
        raise PublicKeyProblem(f"its EC point is not a point on curve {spec.name}") from exc
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def checked_rsa_spki(spec: KeySpec, modulus: bytes, exponent: bytes) -> bytes:
    """SubjectPublicKeyInfo (DER) of an RSA key, after checking the modulus is ``spec.bits``
    long and the public exponent is usable."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    n = int.from_bytes(modulus, "big")
    e = int.from_bytes(exponent, "big")
    if n.bit_length() != spec.bits:
        raise PublicKeyProblem(f"its modulus is {n.bit_length()} bits, not {spec.bits}")
    if e < 3 or e % 2 == 0 or n % 2 == 0:
        raise PublicKeyProblem(f"its public exponent {e} or modulus is not a valid RSA key")
    key = rsa.RSAPublicNumbers(e, n).public_key()
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


_EDWARDS = {"ed25519": ("1.3.101.112", "edwards25519", 32),
            "ed448": ("1.3.101.113", "edwards448", 57)}


def checked_eddsa_spki(spec: KeySpec, ec_params: bytes, ec_point: bytes) -> bytes:
    """SubjectPublicKeyInfo (RFC 8410) of an Ed25519/Ed448 key, after checking that the
    token's CKA_EC_PARAMS names the curve (its OID or its PrintableString name) and
    CKA_EC_POINT holds a public key of the right length (in an OCTET STRING, or raw)."""
    from asn1crypto import core
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    oid, printable, size = _EDWARDS[spec.curve or ""]
    try:
        named = core.load(ec_params, strict=True)
    except ValueError as exc:
        raise PublicKeyProblem("its CKA_EC_PARAMS is not a curve OID or name") from exc
    value = named.dotted if isinstance(named, core.ObjectIdentifier) else str(named.native)
    if value not in (oid, printable):
        raise PublicKeyProblem(f"its CKA_EC_PARAMS names curve {value}, not {spec.name}")
    body = _der_octet_string(ec_point)
    point = body if body is not None and len(body) == size else ec_point
    if len(point) != size:
        raise PublicKeyProblem(f"its CKA_EC_POINT ({len(ec_point)} bytes) is not a "
                               f"{spec.name} public key")
    try:
        key = (ed25519.Ed25519PublicKey if size == 32 else ed448.Ed448PublicKey
               ).from_public_bytes(point)
    except ValueError as exc:
        raise PublicKeyProblem(f"its CKA_EC_POINT is not a {spec.name} public key") from exc
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def checked_spki(spec: KeySpec, values: dict[str, bytes]) -> bytes:
    """The SPKI for ``spec`` from the public object's attribute values (``MODULUS`` and
    ``PUBLIC_EXPONENT``, or ``EC_PARAMS`` and ``EC_POINT``); raises PublicKeyProblem."""
    if spec.key_type is KeyType.EDDSA:
        if not values.get("EC_PARAMS") or not values.get("EC_POINT"):
            raise PublicKeyProblem("the token did not return its CKA_EC_PARAMS and CKA_EC_POINT")
        return checked_eddsa_spki(spec, values["EC_PARAMS"], values["EC_POINT"])
    if spec.key_type is KeyType.RSA:
        if not values.get("MODULUS") or not values.get("PUBLIC_EXPONENT"):
            raise PublicKeyProblem("the token did not return its modulus and public exponent")
        return checked_rsa_spki(spec, values["MODULUS"], values["PUBLIC_EXPONENT"])
    if not values.get("EC_PARAMS") or not values.get("EC_POINT"):
        raise PublicKeyProblem("the token did not return its CKA_EC_PARAMS and CKA_EC_POINT")
    return checked_ec_spki(spec, values["EC_PARAMS"], values["EC_POINT"])
