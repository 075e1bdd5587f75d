"""Key specifications, hash algorithms and RSA signature schemes (EJBCA-style names).

Pure data: no I/O. ``parse_key_spec("prime256v1")`` and ``parse_key_spec("p-256")`` give the same
:class:`KeySpec`. Nothing weaker than RSA-2048 / SHA-256 is accepted. Ed25519 and Ed448 are
offered only where the token lists CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA
(``hsm.describe.spec_problem``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tui_csr.errors import InputError


class KeyType(enum.StrEnum):
    """The key algorithm family."""

    RSA = "RSA"
    EC = "EC"
    #: Edwards curves (Ed25519, Ed448): CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA, RFC 8410.
    EDDSA = "EdDSA"


@dataclass(frozen=True)
class KeySpec:
    """A key type with its size (RSA) or named curve (EC)."""

    name: str  # canonical name: RSA2048 / P-256 ...
    key_type: KeyType
    bits: int  # modulus size or curve field size
    curve: str | None = None  # asn1crypto / OpenSSL curve name (secp256r1, ed25519 ...)

    @property
    def display(self) -> str:
        """Human form for tables: ``RSA 3072``, ``EC P-384`` or ``Ed25519``."""
        if self.key_type is KeyType.RSA:
            return f"RSA {self.bits}"
        if self.key_type is KeyType.EDDSA:
            return self.name
        return f"EC {self.name}"

    @property
    def oid(self) -> str | None:
        """The curve's OID for EC and EdDSA keys (for EdDSA also the signature algorithm)."""
        return _CURVE_OIDS.get(self.curve or "")


_CURVE_OIDS = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34",
               "secp521r1": "1.3.132.0.35", "ed25519": "1.3.101.112", "ed448": "1.3.101.113"}


KEY_SPECS: dict[str, KeySpec] = {
    "RSA2048": KeySpec("RSA2048", KeyType.RSA, 2048),
    "RSA3072": KeySpec("RSA3072", KeyType.RSA, 3072),
    "RSA4096": KeySpec("RSA4096", KeyType.RSA, 4096),
    "P-256": KeySpec("P-256", KeyType.EC, 256, "secp256r1"),
    "P-384": KeySpec("P-384", KeyType.EC, 384, "secp384r1"),
    "P-521": KeySpec("P-521", KeyType.EC, 521, "secp521r1"),
    # bits: what CKM_EC_EDWARDS_KEY_PAIR_GEN's mechanism info measures (SoftHSM: 256 to 456).
    "Ed25519": KeySpec("Ed25519", KeyType.EDDSA, 256, "ed25519"),
    "Ed448": KeySpec("Ed448", KeyType.EDDSA, 448, "ed448"),
}

_ALIASES: dict[str, str] = {
    "RSA2048": "RSA2048", "RSA-2048": "RSA2048", "RSA_2048": "RSA2048",
    "RSA3072": "RSA3072", "RSA-3072": "RSA3072", "RSA_3072": "RSA3072",
    "RSA4096": "RSA4096", "RSA-4096": "RSA4096", "RSA_4096": "RSA4096",
    "P-256": "P-256", "P256": "P-256", "SECP256R1": "P-256", "PRIME256V1": "P-256",
    "P-384": "P-384", "P384": "P-384", "SECP384R1": "P-384",
    "P-521": "P-521", "P521": "P-521", "SECP521R1": "P-521",
    "ED25519": "Ed25519", "EDWARDS25519": "Ed25519",
    "ED448": "Ed448", "EDWARDS448": "Ed448",
}

_WEAK_HINT = "RSA below 2048 bits is not accepted"


def parse_key_spec(text: str) -> KeySpec:
    """Return the :class:`KeySpec` named by ``text`` (case-insensitive, aliases allowed)."""
    key = (text or "").strip().upper()
    if key in _ALIASES:
        return KEY_SPECS[_ALIASES[key]]
    if key.startswith("RSA") and key[3:].lstrip("-_").isdigit():
        raise InputError(
            f"Key spec '{text}' is not supported: {_WEAK_HINT}; use RSA2048, RSA3072 or RSA4096.",
            field="key_spec",
        )
    raise InputError(
        f"Key spec '{text}' is not known; use one of {', '.join(KEY_SPECS)}.", field="key_spec"
    )


class HashAlg(enum.StrEnum):
    """Message digest used for the CSR signature."""

    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"

    @property
    def octets(self) -> int:
        """Digest length in bytes (also the PSS salt length we use)."""
        return {"SHA256": 32, "SHA384": 48, "SHA512": 64}[self.value]

    @property
    def asn1_name(self) -> str:
        """asn1crypto's digest algorithm name (``sha256`` ...)."""
        return self.value.lower()

    @property
    def display(self) -> str:
        """``SHA-256`` etc."""
        return f"SHA-{self.value[3:]}"


_HASH_ALIASES = {
    "SHA256": HashAlg.SHA256, "SHA-256": HashAlg.SHA256, "SHA2-256": HashAlg.SHA256,
    "SHA384": HashAlg.SHA384, "SHA-384": HashAlg.SHA384, "SHA2-384": HashAlg.SHA384,
    "SHA512": HashAlg.SHA512, "SHA-512": HashAlg.SHA512, "SHA2-512": HashAlg.SHA512,
}


def parse_hash(text: str | None) -> HashAlg:
    """Return the :class:`HashAlg` named by ``text``; ``None`` or empty gives SHA256."""
    if text is None or not text.strip():
        return HashAlg.SHA256
    key = text.strip().upper()
    if key in _HASH_ALIASES:
        return _HASH_ALIASES[key]
    if key.replace("-", "") in {"SHA1", "MD5", "SHA224", "MD2", "MD4"}:
        raise InputError(
            f"Hash '{text}' is too weak; use SHA256, SHA384 or SHA512.", field="hash"
        )
    raise InputError(f"Hash '{text}' is not known; use SHA256, SHA384 or SHA512.", field="hash")


class Scheme(enum.StrEnum):
    """Signature scheme: PKCS#1 v1.5 or RSASSA-PSS for RSA keys; ECDSA for EC keys; PureEdDSA
    (RFC 8032, no separate hash) for Edwards keys."""

    PKCS1V15 = "PKCS1v15"
    PSS = "PSS"
    ECDSA = "ECDSA"
    EDDSA = "EdDSA"


def scheme_for(spec: KeySpec, pss: bool) -> Scheme:
    """The scheme for ``spec``; PSS is only valid with RSA keys."""
    if spec.key_type is not KeyType.RSA and pss:
        kind = "EC" if spec.key_type is KeyType.EC else spec.name
        raise InputError(f"PSS padding applies to RSA keys only, not to {kind} keys.",
                         field="pss")
    if spec.key_type is KeyType.EC:
        return Scheme.ECDSA
    if spec.key_type is KeyType.EDDSA:
        return Scheme.EDDSA
    return Scheme.PSS if pss else Scheme.PKCS1V15


def signature_name(spec: KeySpec, hash_alg: HashAlg, scheme: Scheme) -> str:
    """Java-style signature algorithm name, as admins read it: ``SHA256withRSA``, ``RSASSA-PSS``."""
    if scheme is Scheme.PSS:
        return "RSASSA-PSS"
    if spec.key_type is KeyType.EDDSA:
        return spec.name
    if spec.key_type is KeyType.EC:
        return f"{hash_alg.value}withECDSA"
    return f"{hash_alg.value}withRSA"
