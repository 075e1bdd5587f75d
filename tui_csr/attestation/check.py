"""Checking an attestation file got any way (tui-csr, ``cmu getpkc``, a DSM call) against a key.

Formats read: a PKCS#7 SignedData of certificates (DER or PEM; Thales Luna PKC, any order), a
Fortanix DSM key-attestation response (JSON: ``authority_chain`` issuer first, root last, and
``attestation_statement``), or PEM certificates (leaf first or in any order).

The checks, in the order reported: every link's signature verifies (the failing link is named);
the chain ends in a self-signed root whose key is pinned (:mod:`tui_csr.attestation.roots`);
every certificate is within its validity; the attested key is the CSR's key (SubjectPublicKeyInfo
equal byte for byte once both are DER-normalised). Not checked, left to the CA: basicConstraints
and key usage (Luna roots have no basicConstraints, Fortanix's authority is CA:FALSE),
certificate policies, revocation, and whether the HSM model and firmware are acceptable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tui_csr.attestation.base import AttestationError
from tui_csr.attestation.reader import (
    MAX_INPUT,
    AttCert,
    decode_base64_der,
    read_pkcs7,
    unarmor_all,
)
from tui_csr.attestation.roots import PINNED_ROOTS, PinnedRoot, find_root, spki_hash
from tui_csr.attestation.signatures import signature_problem
from tui_csr.attestation.vendors import (
    HsmFacts,
    fortanix_facts,
    is_fortanix,
    is_luna,
    luna_facts,
    roles,
)

#: More certificates than any vendor chain has (Luna: 5) are refused: building a chain tries
#: every same-named candidate's signature, so the count bounds the work.
MAX_CERTS = 16
#: Names of the checks, as the CLI reports them.
CHAIN, ROOT, VALIDITY, KEY = "chain", "root", "validity", "key"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` and one sentence saying what was found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ChainCert:
    """A certificate of the checked chain with its role."""

    cert: AttCert
    role: str

    @property
    def label(self) -> str:
        """How a link is named in a message: ``PKC '41000000ae...'``."""
        return f"{self.role} '{self.cert.common_name}'" if self.role else \
            f"'{self.cert.common_name}'"


@dataclass(frozen=True)
class AttestationReport:
    """Everything found in one attestation file, and the verdict of each check."""

    format: str  # "pkcs7" | "fortanix-json" | "pem"
    chain: list[ChainCert]  # leaf first
    facts: HsmFacts
    root: PinnedRoot | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (the key check included, when a key was given)."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def leaf(self) -> AttCert:
        return self.chain[0].cert

    @property
    def attested_spki_der(self) -> bytes:
        return self.leaf.spki_der

    def fact_lines(self) -> list[str]:
        """The facts a CA looks at, one per line."""
        f = self.facts
        what = {"pkcs7": "PKCS#7 certificate bag", "fortanix-json": "DSM key attestation "
                "response", "pem": "PEM certificates"}[self.format]
        vendor = f.vendor if f.vendor != "unknown" else "Unknown vendor"
        lines = [f"{vendor}: {what}, {len(self.chain)} certificate"
                 f"{'s' if len(self.chain) != 1 else ''}"]
        if f.vendor == "Thales Luna":
            lines.append(f"HSM: model {f.model or '(not stated)'}, serial "
                         f"{f.serial or '(not stated)'}, firmware {f.firmware or '(not stated)'}")
        key_name = "kid" if f.vendor == "Fortanix DSM" else "object id"
        lines.append(f"Key: {self.leaf.key_description}, {key_name} "
                     f"{f.object_id or '(not stated)'}, SHA-256 "
                     f"{hashlib.sha256(self.attested_spki_der).hexdigest()}")
        if f.key_origin:
            lines.append("Key origin: " + ", ".join(f.key_origin))
        for item in self.chain:
            cert = item.cert
            lines.append(f"  {item.role or 'certificate'}: {cert.subject} ({cert.key_description}, "
                         f"valid {_day(cert.not_before)} to {_day(cert.not_after)})")
        return lines

    def check_lines(self) -> list[str]:
        """``ok   chain: ...`` / ``FAIL root: ...`` per check."""
        return [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]

    def lines(self) -> list[str]:
        return self.fact_lines() + self.check_lines()


# -- reading -------------------------------------------------------------------------------------

def read_attestation(data: bytes) -> tuple[str, list[AttCert], AttCert | None]:
    """(format, certificates, leaf if the format names it) of an attestation file."""
    if len(data) > MAX_INPUT:
        raise AttestationError(f"The attestation file is larger than {MAX_INPUT // 1024} KB.")
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        return _read_fortanix(stripped)
    if stripped.startswith(b"-----BEGIN"):
        blocks = unarmor_all(stripped)
        kinds = {kind for kind, _der in blocks}
        if len(blocks) == 1 and kinds <= {"PKCS7", "CMS"}:
            return "pkcs7", read_pkcs7(blocks[0][1]), None
        if kinds != {"CERTIFICATE"}:
            raise AttestationError("The attestation file holds PEM blocks of type "
                                   f"{', '.join(sorted(kinds))}; expected PKCS7 or CERTIFICATE.")
        return "pem", [AttCert.load(der, f"PEM certificate {n}")
                       for n, (_k, der) in enumerate(blocks, 1)], None
    if stripped[:1] == b"\x30":
        return "pkcs7", read_pkcs7(data), None
    raise AttestationError("The attestation file is neither a PKCS#7 certificate bag (DER or "
                           "PEM), PEM certificates, nor a Fortanix DSM JSON response.")


def _read_fortanix(data: bytes) -> tuple[str, list[AttCert], AttCert | None]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttestationError(f"The attestation file is not valid JSON ({exc}).") from exc
    statement = doc.get("attestation_statement") if isinstance(doc, dict) else None
    authority = doc.get("authority_chain") if isinstance(doc, dict) else None
    if not isinstance(statement, dict) or not isinstance(authority, list):
        raise AttestationError("The JSON attestation lacks attestation_statement and "
                               "authority_chain (the fields of a Fortanix DSM response).")
    fmt = statement.get("format")
    if fmt != "x509_certificate":
        raise AttestationError(f"The Fortanix attestation statement is in format '{fmt}'; "
                               "tui-csr reads only x509_certificate.")
    leaf = AttCert.load(decode_base64_der(statement.get("statement"), "the attestation "
                                          "statement"), "the attestation statement")
    chain = [AttCert.load(decode_base64_der(item, f"authority certificate {n}"),
                          f"authority certificate {n}")
             for n, item in enumerate(authority, 1)]
    return "fortanix-json", [leaf, *chain], leaf


# -- chain building ------------------------------------------------------------------------------

def build_chain(certs: list[AttCert], leaf: AttCert | None = None
                ) -> tuple[list[AttCert], list[tuple[AttCert, AttCert, str]]]:
    """The path from the leaf up (leaf first), and the links whose signature fails.

    The leaf is the certificate no other one was issued to (unless the format names it). A
    parent is found by name; among several candidates (a root re-issued with the same name),
    the one whose key verifies the signature wins. Returns (path, [(child, parent, reason)]).
    """
    if not certs:
        raise AttestationError("The attestation holds no certificate.")
    if leaf is None:
        leaves = [c for c in certs if not any(c.subject_matches_issuer_of(o)
                                               for o in certs if o is not c)]
        if len(leaves) != 1:
            raise AttestationError(f"The attestation's {len(certs)} certificates do not form "
                                   f"one chain ({len(leaves)} end certificates).")
        leaf = leaves[0]
    path = [leaf]
    bad: list[tuple[AttCert, AttCert, str]] = []
    while True:
        child = path[-1]
        if child.self_issued:
            problem = signature_problem(child, child.spki_der)
            if problem:
                bad.append((child, child, problem))
            break
        candidates = [c for c in certs if c.subject_matches_issuer_of(child)
                      and c not in path]
        if not candidates:
            break
        checked = [(c, signature_problem(child, c.spki_der)) for c in candidates]
        parent, problem = next(((c, p) for c, p in checked if p is None), checked[0])
        if problem:
            bad.append((child, parent, problem))
        path.append(parent)
    return path, bad


# -- the check -----------------------------------------------------------------------------------

def check_attestation(data: bytes, csr_spki_der: bytes | None = None, *,
                      roots: tuple[PinnedRoot, ...] = PINNED_ROOTS,
                      extra_certs: list[AttCert] | None = None,
                      at: datetime | None = None,
                      vendor: str | None = None) -> AttestationReport:
    """Read ``data`` and run every check; ``csr_spki_der`` is the key it must attest.

    ``extra_certs`` (e.g. a root the user supplies) join the file's certificates when the chain
    is built. Reading failures raise :class:`AttestationError`; check failures are in the
    report's ``checks``. ``vendor`` ("Thales Luna", "Fortanix DSM") is known when the file
    came from that vendor's provider; else it is told from the certificates.
    """
    fmt, certs, leaf = read_attestation(data)
    if len(certs) > MAX_CERTS:
        raise AttestationError(f"The attestation holds {len(certs)} certificates; a vendor "
                               f"chain has at most {MAX_CERTS}.")
    path, bad = build_chain(certs + list(extra_certs or []), leaf)
    vendor = vendor or ("Fortanix DSM" if fmt == "fortanix-json" or is_fortanix(path)
                        else "Thales Luna" if is_luna(path) else "unknown")
    role_of = roles(path, vendor)
    chain = [ChainCert(c, r) for c, r in zip(path, role_of, strict=True)]
    facts = (luna_facts(path, role_of) if vendor == "Thales Luna"
             else fortanix_facts(path) if vendor == "Fortanix DSM" else HsmFacts(vendor=vendor))
    label = {id(item.cert): item.label for item in chain}

    checks = [_chain_check(chain, bad, label)]
    top = path[-1]
    root = find_root(top.spki_der, roots) if top.self_issued else None
    checks.append(_root_check(top, root, label))
    checks.append(_validity_check(chain, at or datetime.now(UTC)))
    if csr_spki_der is not None:
        checks.append(_key_check(chain[0], csr_spki_der))
    return AttestationReport(format=fmt, chain=chain, facts=facts, root=root, checks=checks)


def _chain_check(chain: list[ChainCert], bad: list[tuple[AttCert, AttCert, str]],
                 label: dict[int, str]) -> Check:
    if bad:
        child, parent, reason = bad[0]
        if child is parent:
            text = f"the self-signature of {label[id(child)]}: {reason}"
        else:
            text = (f"the signature on {label[id(child)]} by {label[id(parent)]}: {reason}")
        more = f" ({len(bad) - 1} more link{'s' if len(bad) > 2 else ''} fail)" \
            if len(bad) > 1 else ""
        return Check(CHAIN, False, f"link fails: {text}{more}.")
    n = len(chain)
    return Check(CHAIN, True, f"{n} certificate{'s' if n != 1 else ''}, every signature "
                 "verifies.")


def _root_check(top: AttCert, root: PinnedRoot | None, label: dict[int, str]) -> Check:
    if root is not None:
        return Check(ROOT, True, f"verified to {root.name} ({root.vendor}, pinned key).")
    if not top.self_issued:
        return Check(ROOT, False, f"the chain ends at {label[id(top)]}, whose issuer "
                     f"'{top.issuer}' is not in the file: the root is unknown.")
    return Check(ROOT, False, f"the root is unknown: {label[id(top)]} (key SHA-256 "
                 f"{spki_hash(top.spki_der)}) is not a pinned vendor root.")


def _validity_check(chain: list[ChainCert], now: datetime) -> Check:
    for item in chain:
        cert = item.cert
        if now > cert.not_after:
            return Check(VALIDITY, False, f"{item.label} expired on {_day(cert.not_after)}.")
        if now < cert.not_before:
            return Check(VALIDITY, False, f"{item.label} is not valid before "
                         f"{_day(cert.not_before)}.")
    return Check(VALIDITY, True, f"every certificate is valid on {_day(now)}.")


def _key_check(leaf: ChainCert, csr_spki_der: bytes) -> Check:
    attested, wanted = spki_hash(leaf.cert.spki_der), spki_hash(csr_spki_der)
    if attested == wanted:
        return Check(KEY, True, f"the key of {leaf.label} is the CSR's key (SHA-256 "
                     f"{attested[:16]}...).")
    return Check(KEY, False, f"key mismatch: {leaf.label} attests another key than the CSR's "
                 f"(attested SHA-256 {attested[:16]}..., CSR SHA-256 {wanted[:16]}...).")


def _day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")
