"""Checking one certificate's signature by hand, over the bytes the vendor signed.

``cryptography``'s certificate API would refuse the vendors' encodings before checking anything,
so the pieces are taken apart with asn1crypto and checked with ``cryptography``'s primitives:
RSA PKCS#1 v1.5, RSA-PSS (parameters from the algorithm identifier), ECDSA (``r`` and ``s`` read
as unsigned integers and re-encoded as DER: a Luna ECC PKC has an ``s`` whose leading zero is
missing, which a DER reader takes for a negative number), Ed25519 and Ed448. NULL parameters on
an ECDSA algorithm identifier are ignored, as a BER reader should.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_csr.attestation.reader import AttCert

_HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512")


def signature_problem(cert: AttCert, issuer_spki_der: bytes) -> str | None:
    """None when ``cert``'s signature verifies with the issuer's key; else why not."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(issuer_spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"the issuer's public key cannot be read ({exc})"
    algorithm = cert.asn1["signature_algorithm"]
    tbs = bytes(cert.tbs.dump())  # the original bytes: asn1crypto never re-encodes unchanged values
    signature = bytes(cert.asn1["signature_value"].native or b"")
    try:
        _verify(key, algorithm, tbs, signature)
    except InvalidSignature:
        return "the signature does not verify"
    except _Unsupported as exc:
        return str(exc)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"the signature cannot be checked ({exc})"
    return None


class _Unsupported(Exception):
    """A signature algorithm or a key/algorithm pairing this checker does not handle."""


def _verify(key: Any, algorithm: Any, tbs: bytes, signature: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

    name = algorithm["algorithm"].native
    try:
        kind = algorithm.signature_algo
    except ValueError as exc:
        raise _Unsupported(f"signature algorithm {name} is not supported") from exc
    if kind == "rsassa_pkcs1v15":
        _need(key, rsa.RSAPublicKey, name)
        key.verify(signature, tbs, padding.PKCS1v15(), _hash(algorithm.hash_algo))
    elif kind == "rsassa_pss":
        _need(key, rsa.RSAPublicKey, name)
        params = algorithm["parameters"]
        digest = _hash(params["hash_algorithm"]["algorithm"].native)
        mgf_hash = _hash(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
        salt = int(params["salt_length"].native)
        key.verify(signature, tbs, padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt),
                   digest)
    elif kind == "ecdsa":
        _need(key, ec.EllipticCurvePublicKey, name)
        key.verify(_der_ecdsa(signature), tbs, ec.ECDSA(_hash(algorithm.hash_algo)))
    elif kind in ("ed25519", "ed448"):
        _need(key, ed25519.Ed25519PublicKey if kind == "ed25519" else ed448.Ed448PublicKey, name)
        key.verify(signature, tbs)
    else:
        raise _Unsupported(f"signature algorithm {name} is not supported")


def _need(key: Any, kind: type, name: str) -> None:
    if not isinstance(key, kind):
        raise _Unsupported(f"a {name} signature cannot come from the issuer's "
                           f"{type(key).__name__.replace('PublicKey', '').lstrip('_')} key")


def _hash(name: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    if name not in _HASHES:
        raise _Unsupported(f"hash {name} is not supported")
    return getattr(hashes, name.upper())()


def _der_ecdsa(signature: bytes) -> bytes:
    """``SEQUENCE { r, s }`` re-encoded as DER with ``r`` and ``s`` read as unsigned."""
    from asn1crypto import algos
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    try:
        parsed = algos.DSASignature.load(signature)
        r, s = (int.from_bytes(bytes(parsed[part].contents), "big") for part in ("r", "s"))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"the ECDSA signature is not a SEQUENCE of two integers ({exc})") \
            from exc
    return encode_dss_signature(r, s)
