"""Typed records that cross the store boundary (never raw TinyDB dicts).

``to_doc`` / ``from_doc`` are the only places that know the document layout.
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime


class Status(enum.StrEnum):
    """Lifecycle state of a request."""

    PENDING = "pending"
    ISSUED = "issued"
    #: Superseded by its renewal, whose certificate was imported: its key pair was destroyed
    #: (unless the renewal uses the same key), the record kept for the audit trail.
    RETIRED = "retired"


def utcnow() -> datetime:
    """Current time, UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Request:
    """A CSR whose key pair lives on the token.

    ``subject`` is the RFC 4514 string; ``subject_fields`` the CN/O/OU/L/ST/C view of it.
    ``sans`` is a list of ``(kind, value)`` pairs, kind in email/dns/ip/uri.
    """

    id: str
    label: str
    subject: str
    subject_fields: dict[str, str]
    sans: list[tuple[str, str]]
    key_spec: str
    hash: str
    scheme: str
    token_label: str
    key_id: str  # CKA_ID, lower-case hex
    pkcs11_uri: str
    csr_pem: str
    groups: list[str]
    owner: str | None
    created: datetime
    created_by: str
    status: Status = Status.PENDING
    token_serial: str | None = None
    certificate_pem: str | None = None
    issued: datetime | None = None
    #: A key attestation file imported with ``tui-csr attestation import`` (base64 of its
    #: bytes), checked against ``csr_pem`` before it was attached.
    attestation: str | None = None
    #: The id of the request this one renews (``tui-csr renew``), and of the request that
    #: renews this one; ``retired``: when it was retired after its renewal was issued.
    renews: str | None = None
    renewed_by: str | None = None
    retired: datetime | None = None
    #: The extensions the CSR requests besides the SAN (``RequestedExtensions.to_doc()``),
    #: None for none.
    extensions: dict | None = None
    #: The profiles applied when it was made: ``{"name", "version", "source"}`` each.
    profiles: list[dict] | None = None
    #: The private key's flags as the token reported them after generation (SENSITIVE,
    #: ALWAYS_AUTHENTICATE, DECRYPT ...), and those of them the token set against what a
    #: signing key should have (tpm2-pkcs11 forces DECRYPT=true): shown, never hidden.
    key_attributes: dict[str, bool] | None = None
    key_forced: dict[str, bool] | None = None

    def to_doc(self) -> dict:
        """Serialise to a JSON-able dict."""
        doc = asdict(self)
        doc["sans"] = [list(s) for s in self.sans]
        doc["created"] = _iso(self.created)
        doc["issued"] = _iso(self.issued) if self.issued else None
        doc["retired"] = _iso(self.retired) if self.retired else None
        doc["status"] = self.status.value
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> Request:
        """Parse a stored document (unknown keys are ignored, for forward compatibility).

        On the hot path of every list (10,000 calls for a large store), so: one C-level copy
        of the document, the field set and status lookup computed once, Python 3.11's
        ``fromisoformat`` reading the ``Z`` suffix itself, and no ``__init__`` call (it would
        only assign the same fields again).
        """
        data = dict(doc)
        if data.keys() != _REQUEST_FIELDS:  # an older or newer layout
            for key in data.keys() - _REQUEST_FIELDS:
                del data[key]
            for key in _REQUEST_FIELDS - data.keys():
                if key not in _REQUEST_DEFAULTS:
                    raise TypeError(f"stored request lacks the field {key!r}")
                data[key] = _REQUEST_DEFAULTS[key]
        data["sans"] = [tuple(s) for s in data["sans"]]
        data["created"] = datetime.fromisoformat(data["created"])
        issued = data["issued"]
        data["issued"] = datetime.fromisoformat(issued) if issued else None
        retired = data["retired"]
        data["retired"] = datetime.fromisoformat(retired) if retired else None
        status = data["status"]
        data["status"] = _STATUSES.get(status) or Status(status)
        data["groups"] = list(data["groups"])
        data["subject_fields"] = dict(data["subject_fields"])
        request = object.__new__(cls)
        request.__dict__ = data
        return request


_REQUEST_FIELDS = frozenset(Request.__dataclass_fields__)
_REQUEST_DEFAULTS = {f.name: f.default for f in fields(Request) if f.default is not MISSING}
_STATUSES = {s.value: s for s in Status}


@dataclass
class Group:
    """A certificate group; every request belongs to at least one. ``policy`` names its policy."""

    name: str
    description: str = ""
    policy: str = ""
    created: datetime = field(default_factory=utcnow)
    created_by: str = ""

    def to_doc(self) -> dict:
        """Serialise to a JSON-able dict."""
        doc = asdict(self)
        doc["created"] = _iso(self.created)
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> Group:
        """Parse a stored document."""
        names = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in doc.items() if k in names}
        if "created" in data:
            data["created"] = _parse_iso(data["created"])
        return cls(**data)


@dataclass
class AuditEntry:
    """Who did what, when. ``detail`` never holds a secret."""

    action: str  # generate / delete / group-add / group-rename / group-remove / edit-groups ...
    user: str
    subject: str  # what it concerned: request id, group name
    detail: str = ""
    at: datetime = field(default_factory=utcnow)

    def to_doc(self) -> dict:
        """Serialise to a JSON-able dict."""
        doc = asdict(self)
        doc["at"] = _iso(self.at)
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> AuditEntry:
        """Parse a stored document."""
        names = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in doc.items() if k in names}
        data["at"] = _parse_iso(data["at"])
        return cls(**data)


class IntentState(enum.StrEnum):
    """Where a key generation's write-ahead intent stands."""

    OPEN = "open"  # written before the key pair; the pair may or may not exist yet
    RECORDED = "recorded"  # closed by the write that added the request for the pair
    DESTROYED = "destroyed"  # closed once the pair was confirmed gone from the token
    ABANDONED = "abandoned"  # closed by an orphan scan: no pair was ever made (a crash before)


@dataclass
class Intent:
    """A write-ahead record of one key generation, written before the key pair exists.

    ``key_id`` is the CKA_ID the pair is created with; ``final_key_id`` the id it was rewritten
    to, written by the record that closes the intent (``None``: no rewrite, or not recorded; an
    open intent's rewritten pair is recognised by its label, see
    :mod:`tui_csr.services.orphans`). Both are lower-case hex. An open intent whose pair is on
    the token is an orphan to adopt or destroy.
    """

    id: str
    store_id: str
    label: str
    key_id: str
    key_spec: str
    token_label: str
    created_by: str
    created: datetime
    token_serial: str | None = None
    final_key_id: str | None = None
    state: IntentState = IntentState.OPEN
    closed: datetime | None = None
    request_id: str | None = None  # the request whose write closed it

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every CKA_ID (hex) the pair may carry: the first, then the rewrite target."""
        if self.final_key_id is None or self.final_key_id == self.key_id:
            return (self.key_id,)
        return (self.key_id, self.final_key_id)

    def to_doc(self) -> dict:
        """Serialise to a JSON-able dict."""
        doc = asdict(self)
        doc["created"] = _iso(self.created)
        doc["closed"] = _iso(self.closed) if self.closed else None
        doc["state"] = self.state.value
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> Intent:
        """Parse a stored document (unknown keys are ignored)."""
        names = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in doc.items() if k in names}
        data["created"] = _parse_iso(data["created"])
        data["closed"] = _parse_iso(data["closed"]) if data.get("closed") else None
        data["state"] = IntentState(data.get("state", IntentState.OPEN.value))
        return cls(**data)
