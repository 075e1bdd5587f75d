"""``tui-csr generate --batch FILE``: many requests in one process and one token session.

The file is JSON Lines (one object per line) or CSV with a header row; each request carries the
same fields as the ``generate`` flags, named as the flags are (``-`` or ``_``, any case):
``key_spec``, ``hash``, ``pss``, ``dn`` or the DN attributes (``cn``, ``o``, ``ou``, ``l``,
``st``, ``c``, ``dc``, ``uid``, ``serial_number``, ``email_address``, ``title``, ``given_name``,
``surname``, ``pseudonym``, ``street``, ``postal_code``, ``organization_identifier``,
``business_category``, ``jurisdiction_c``/``_st``/``_l``; the attribute's own name such as
``serialNumber`` or ``SN`` works too), ``email``/``dns``/``ip``/``uri``, ``group``/``groups``,
``owner``, ``label``, ``profile``, ``key_usage``, ``eku``, ``ca``, ``path_len``,
``always_authenticate``. Several values (``ou``, ``dc``, the SANs, the groups, ``key_usage`` and
``eku``): a JSON list, or in CSV one cell with ``;`` between the values (``key_usage`` and
``eku`` also take the comma-separated list of the flags). ``pss``, ``ca`` and
``always_authenticate`` are true/false (CSV: ``true``/``yes``/``1``, blank for false).

All or nothing up front: every line is validated (the same checks as ``generate``, the groups'
profiles included, duplicate labels within the batch, then, once logged in, labels already on
the token and key specs the token cannot make) before the first key exists. Then the requests
are generated one after another; each one is stored as soon as it is made (a store write per
request, so a failure midway keeps what was made), and the service destroys the key of a
request whose CSR or store step failed, so nothing half-made remains.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui_csr import crashpoint
from tui_csr.errors import InputError, TuiCsrError

if TYPE_CHECKING:
    from tui_csr.core.models import Intent, Request
    from tui_csr.core.rules import ValidatedRequest
    from tui_csr.service import CsrService, GenerateParams
    from tui_csr.store.leases import Lease

#: Canonical field names, each with the spellings accepted for it (case and -/_ ignored).
_SCALARS = ("key_spec", "hash", "dn", "owner", "label", "profile")
#: DN attribute fields, named as the ``generate`` flags (``--serial-number``: ``serial_number``),
#: and the attribute each one sets.
_SUBJECT = {"cn": "CN", "o": "O", "ou": "OU", "l": "L", "st": "ST", "c": "C", "dc": "DC",
            "uid": "UID", "serial_number": "serialNumber", "email_address": "emailAddress",
            "title": "title", "given_name": "givenName", "surname": "SN",
            "pseudonym": "pseudonym", "street": "street", "postal_code": "postalCode",
            "organization_identifier": "organizationIdentifier",
            "business_category": "businessCategory", "jurisdiction_c": "jurisdictionC",
            "jurisdiction_st": "jurisdictionST", "jurisdiction_l": "jurisdictionL"}
#: Subject fields that may hold several values, kept in the order given (ASN.1 order, as the
#: repeated flags).
_REPEATABLE_SUBJECT = frozenset({"ou", "dc"})
SAN_FIELDS = _SANS = ("email", "dns", "ip", "uri")
_BOOLS = ("pss", "ca", "always_authenticate")
_USAGES = ("key_usage", "eku")
_ALIASES = {"keyspec": "key_spec", "groups": "group", "keyusage": "key_usage",
            "extended_key_usage": "eku", "extendedkeyusage": "eku", "pathlen": "path_len",
            "alwaysauthenticate": "always_authenticate",
            # The attributes' own names (serialNumber, SN, givenName ...), lower-cased.
            **{attr.lower(): name for name, attr in _SUBJECT.items()
               if attr.lower() != name}}
KNOWN_FIELDS = (*_SCALARS, *_BOOLS, *_USAGES, "path_len", *_SUBJECT, *_SANS, "group")


@dataclass(frozen=True)
class BatchLine:
    """One request of the batch and the line of the file it came from (1-based)."""

    number: int
    params: GenerateParams

    @property
    def explicit_label(self) -> str | None:
        """The label the line asks for, if it names one."""
        label = (self.params.label or "").strip()
        return label or None


Problem = tuple[int, str]
"""(line number, one-sentence message)."""


class BatchRefused(InputError):
    """Some lines are invalid: nothing was generated (exit status 2)."""

    def __init__(self, problems: Sequence[Problem], total: int) -> None:
        lines = len({n for n, _ in problems})
        super().__init__(f"The batch was refused: {lines} of {total} "
                         f"{'request' if total == 1 else 'requests'} "
                         f"{'is' if lines == 1 else 'are'} invalid; nothing was generated.",
                         field="batch")
        self.problems = list(problems)


class BatchStopped(TuiCsrError):
    """Generation failed midway (exit status 1): ``made`` are stored, the failing line is not."""

    def __init__(self, line: BatchLine, cause: BaseException, made: Sequence[Request],
                 total: int, last_line: int) -> None:
        rest = (f"line {line.number}" if line.number == last_line
                else f"lines {line.number}-{last_line}")
        kept = ("nothing was generated" if not made else
                f"{len(made)} of {total} requests were generated and stored (tui-csr list)")
        super().__init__(f"The batch stopped at line {line.number}: {kept}; nothing of line "
                         f"{line.number} remains on the token and {rest} were not generated.",
                         field="batch")
        self.line = line
        self.cause = cause
        self.made = list(made)


# -- reading ----------------------------------------------------------------------------------

def read_batch(path: str, stdin: TextIO | None = None) -> list[BatchLine]:
    """Parse the batch file (``-`` for standard input). Raises :class:`BatchRefused` listing
    every line that cannot be read, or InputError when the file itself cannot be."""
    try:
        if path == "-":
            text = (stdin or sys.stdin).read()
        else:
            text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"Batch file {path} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}).", field="batch") from exc
    except OSError as exc:
        raise InputError(f"Batch file {path} cannot be read: {exc.strerror or exc}.",
                         field="batch") from exc
    lines, problems = parse_batch(text, batch_format(path, text))
    if problems:
        raise BatchRefused(problems, max(len(lines) + len({n for n, _ in problems}), 1))
    if not lines:
        raise InputError(f"Batch file {path} holds no requests.", field="batch")
    return lines


def batch_format(path: str, text: str) -> str:
    """``"jsonl"`` or ``"csv"``: by the file name's extension, else by the first character."""
    suffix = Path(path).suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def parse_batch(text: str, fmt: str) -> tuple[list[BatchLine], list[Problem]]:
    """The requests of ``text`` and the problems of the lines that could not be read."""
    return _parse_jsonl(text) if fmt == "jsonl" else _parse_csv(text)


def _parse_jsonl(text: str) -> tuple[list[BatchLine], list[Problem]]:
    lines: list[BatchLine] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})."))
            continue
        if not isinstance(doc, dict):
            problems.append((number, "each line must be one JSON object, e.g. "
                                     '{"key_spec": "P-256", "cn": "www.example.com", '
                                     '"group": "Web"}.'))
            continue
        try:
            lines.append(BatchLine(number, _params(doc.items(), split_lists=False)))
        except InputError as exc:
            problems.append((number, str(exc)))
    return lines, problems


def _parse_csv(text: str) -> tuple[list[BatchLine], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    lines: list[BatchLine] = []
    problems: list[Problem] = []
    start = 1
    try:
        for row in reader:
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = row
                unknown = [c for c in header if _canonical(c) is None]
                if unknown:
                    problems.append((number, f"unknown column {_quote_list(unknown)}; the "
                                             f"columns are: {', '.join(KNOWN_FIELDS)}."))
                    return [], problems
                continue
            if len(row) > len(header):
                problems.append((number, f"{len(row)} cells but the header has {len(header)} "
                                         "columns."))
                continue
            try:
                lines.append(BatchLine(number, _params(zip(header, row, strict=False),
                                                       split_lists=True)))
            except InputError as exc:
                problems.append((number, str(exc)))
    except csv.Error as exc:
        problems.append((start, f"not valid CSV ({exc})."))
    return lines, problems


def _canonical(name: str) -> str | None:
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    return key if key in KNOWN_FIELDS else None


def _quote_list(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _params(items: Iterable[tuple[str, Any]], *, split_lists: bool) -> GenerateParams:
    """GenerateParams from one line's (field, value) pairs; InputError names a bad field."""
    from tui_csr.service import GenerateParams

    values: dict[str, Any] = {}
    for name, value in items:
        key = _canonical(str(name))
        if key is None:
            raise InputError(f"unknown field '{name}'; the fields are: "
                             f"{', '.join(KNOWN_FIELDS)}.", field="batch")
        if key in values:
            raise InputError(f"field '{key}' is given twice.", field=key)
        values[key] = value
    fields: list[tuple[str, str]] = []
    for k, attr in _SUBJECT.items():
        if k in _REPEATABLE_SUBJECT:  # several OUs/DCs: a JSON list, or `;` between them in CSV
            fields.extend((attr, v) for v in _list(values.get(k), k, split_lists))
        elif text := _text(values.get(k), k):
            fields.append((attr, text))
    sans = [(kind, v) for kind in _SANS for v in _list(values.get(kind), kind, split_lists)]
    usages = {k: _list(values.get(k), k, split_lists) or None for k in _USAGES}
    return GenerateParams(
        key_spec=_text(values.get("key_spec"), "key_spec") or "",
        hash=_text(values.get("hash"), "hash"),
        pss=_bool(values.get("pss"), "pss"),
        # Not stripped: a DN may end in an escaped space ('CN=a\\ '); parse_dn drops the
        # unescaped whitespace itself.
        dn=_text(values.get("dn"), "dn", strip=False),
        fields=fields, sans=sans,
        groups=_list(values.get("group"), "group", split_lists),
        owner=_text(values.get("owner"), "owner"),
        label=_text(values.get("label"), "label"),
        always_authenticate=_bool(values.get("always_authenticate"), "always_authenticate"),
        profile=_text(values.get("profile"), "profile"),
        key_usage=usages["key_usage"], eku=usages["eku"],
        ca=_bool(values.get("ca"), "ca"),
        path_len=_path_len(values.get("path_len")))


def _text(value: Any, name: str, *, strip: bool = True) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"field '{name}' must be text, not {type(value).__name__}.", field=name)
    if not value.strip():
        return None
    return value.strip() if strip else value


def _list(value: Any, name: str, split: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []  # an empty cell: no value
        parts = value.split(";") if split else [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise InputError(f"field '{name}' must be text or a list of text.", field=name)
    # An empty entry ("a;;b", or "" in a JSON list) is kept: validation refuses it as it
    # refuses an empty flag (`--email ''`), with the same sentence.
    return [p.strip() for p in parts]


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"", "0", "false", "no", "n"}:
        return False
    if text in {"1", "true", "yes", "y"}:
        return True
    raise InputError(f"field '{name}' must be true or false, not '{value}'.", field=name)


def _path_len(value: Any) -> int | str | None:
    """A JSON number or text (checked by the profiles' rules with the rest)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is not None and not isinstance(value, str):
        raise InputError(f"field 'path_len' must be a whole number, not "
                         f"{type(value).__name__}.", field="path_len")
    return _text(value, "path_len")


# -- validating -------------------------------------------------------------------------------

def validate_batch(service: CsrService, lines: Sequence[BatchLine]) -> list[Problem]:
    """Every check that needs no token, for every line; returns the problems (none: valid)."""
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    for line in lines:
        try:
            v = service.validate(line.params)
        except InputError as exc:
            if exc.field == "key_spec" and not line.params.key_spec.strip():
                problems.append((line.number, "key_spec is required (e.g. RSA3072 or P-256)."))
            else:
                problems.append((line.number, str(exc)))
            continue
        if not line.params.key_spec.strip():
            # A profile's default key spec (the line names none): written into the line, so
            # the token's checks and the generation see the spec the line was validated with.
            line.params.key_spec = v.spec.name
        label = line.explicit_label
        if label is not None:
            if label in first_use:
                problems.append((line.number, f"label '{label}' is also used on line "
                                              f"{first_use[label]}."))
            else:
                first_use[label] = line.number
    return problems


class TokenLabels:
    """The labels on the token, for a whole batch: one scan of the token
    (:meth:`AsyncToken.labels_in_use`) answers every line, and the labels the batch makes are
    added as it goes, so no request searches the token for its label. On a token with more
    objects than a few per line, reading every label would cost more round trips than asking
    label by label: ``taken`` is then None and each label is searched once."""

    #: Objects per line up to which the token is scanned (a search costs three calls).
    PER_LINE = 3

    def __init__(self, token: Any, taken: set[str] | None) -> None:
        self.token = token
        self.taken = taken
        self._asked: dict[str, bool] = {}

    @classmethod
    async def scan(cls, service: CsrService, lines: Sequence[BatchLine]) -> TokenLabels:
        """Scan the service's logged-in token once for ``lines``."""
        token = service.token
        if token is None:
            raise TuiCsrError("No token is open.", field="token")
        return cls(token, await token.labels_in_use(limit=cls.PER_LINE * max(len(lines), 1)))

    async def in_use(self, label: str) -> bool:
        """True when an object on the token carries ``label`` (or this batch made one)."""
        if self.taken is not None:
            return label in self.taken
        if label not in self._asked:
            self._asked[label] = await self.token.label_in_use(label)
        return self._asked[label]

    def add(self, label: str) -> None:
        """The batch made a key labelled ``label``."""
        if self.taken is not None:
            self.taken.add(label)
        self._asked[label] = True


async def token_labels(service: CsrService, lines: Sequence[BatchLine]) -> TokenLabels:
    """The one scan of the token's labels a batch makes (:class:`TokenLabels`); pass it to
    :func:`check_on_token` and :func:`run_batch`."""
    return await TokenLabels.scan(service, lines)


async def check_on_token(service: CsrService, lines: Sequence[BatchLine],
                         labels: TokenLabels | None = None) -> list[Problem]:
    """The checks that need the (logged-in) token: explicit labels already used by a key on it,
    and key specs it cannot make. Cheap (one scan of the token's labels, the mechanism list read
    once): no key is made."""
    from tui_csr.core.keyspec import parse_key_spec

    token = service.token
    if token is None:
        raise TuiCsrError("No token is open.", field="token")
    if labels is None:
        labels = await token_labels(service, lines)
    problems: list[Problem] = []
    reasons: dict[str, str | None] = {}
    for line in lines:
        spec = parse_key_spec(line.params.key_spec)
        if spec.name not in reasons:
            reasons[spec.name] = await token.supports(spec)
        if reasons[spec.name]:
            problems.append((line.number, str(reasons[spec.name])))
            continue
        label = line.explicit_label
        if label is not None and await labels.in_use(label):
            problems.append((line.number, f"Key label '{label}' is already used on token "
                                          f"'{token.label}'."))
    return problems


# -- generating -------------------------------------------------------------------------------

#: Requests whose intents one durable store write opens (see :func:`run_batch`).
CHUNK = 16


async def run_batch(service: CsrService, lines: Sequence[BatchLine],
                    on_made: Callable[[BatchLine, Request], None] | None = None,
                    on_start: Callable[[int, BatchLine], None] | None = None,
                    labels: TokenLabels | None = None) -> list[Request]:
    """Generate every line in order on the service's logged-in token.

    ``on_start(index, line)`` runs before each line, ``on_made(line, request)`` after each
    request is stored. Raises :class:`BatchStopped` on the first failure (what was made stays
    stored; the service has destroyed the failing line's key); an interruption (Ctrl-C) also
    stops after cleaning up the current line and is re-raised as it came.

    ``labels`` is the batch's one scan of the token (:func:`token_labels`; made here when not
    given): labels are checked against it, so a request makes no search of its own.

    The write-ahead intents of up to :data:`CHUNK` lines are opened in one durable store write
    before the first key of those lines is made (each with its CKA_ID and label); each record
    still closes its own intent in its own write. A crash leaves the lines not reached with an
    open intent and no key, which the next orphan scan closes as abandoned; when the batch
    stops, it closes them itself.
    """
    import asyncio

    if labels is None:
        labels = await token_labels(service, lines)
    reserved = {label for line in lines if (label := line.explicit_label) is not None}
    generation = service.generation
    made: list[Request] = []
    for first in range(0, len(lines), CHUNK):
        chunk = list(enumerate(lines[first:first + CHUNK], start=first))
        ready: list[tuple[int, BatchLine, ValidatedRequest]] = []
        refused: tuple[int, BatchLine, Exception] | None = None
        for index, line in chunk:
            try:
                ready.append((index, line, await generation.prepare(
                    await _line_params(service, line, reserved, labels), label_checked=True)))
            except Exception as exc:
                refused = (index, line, exc)  # the lines before it are still made
                break
            reserved.add(ready[-1][2].label)
        opened: list[tuple[Intent, Lease]] = []
        if ready:
            try:
                opened = await generation.open_intents([v for _i, _l, v in ready])
            except Exception as exc:
                index, line, _v = ready[0]
                if on_start is not None:
                    on_start(index, line)
                raise BatchStopped(line, exc, made, len(lines), lines[-1].number) from exc
            crashpoint.reached("batch:after-intents")
        for n, (index, line, v) in enumerate(ready):
            intent, lease = opened[n]
            started = n
            try:
                if on_start is not None:
                    on_start(index, line)
                started = n + 1  # from here on generate_opened settles this line's intent
                request = await generation.generate_opened(v, intent, lease)
            except BaseException as exc:
                # Shielded: a cancelled batch still closes the intents it will not use.
                await asyncio.shield(generation.abandon(opened[started:]))
                if not isinstance(exc, Exception):
                    raise
                raise BatchStopped(line, exc, made, len(lines), lines[-1].number) from exc
            made.append(request)
            labels.add(request.label)
            crashpoint.reached(f"batch:after-record-{len(made)}")
            if on_made is not None:
                on_made(line, request)
        if refused is not None:
            index, line, cause = refused
            if on_start is not None:
                on_start(index, line)
            raise BatchStopped(line, cause, made, len(lines), lines[-1].number) from cause
    return made


async def _line_params(service: CsrService, line: BatchLine, reserved: set[str],
                       labels: TokenLabels) -> GenerateParams:
    """The line's parameters with its label: the default one made unique, or the explicit
    one checked against the token's labels again (a key may have been made since the check)."""
    params = line.params
    if line.explicit_label is None:
        return replace(params, label=await _default_label(service, params, reserved, labels))
    if await labels.in_use(line.explicit_label):
        raise InputError(f"Key label '{line.explicit_label}' is already used on token "
                         f"'{service.token.label if service.token else ''}'.", field="label")
    return params


async def _default_label(service: CsrService, params: GenerateParams, reserved: set[str],
                         labels: TokenLabels) -> str:
    """The default label (CN and date) made unique in the store, on the token and against the
    labels other lines of the batch ask for, so a later line never finds its label taken."""
    import asyncio

    from tui_csr.service import default_label

    v = await asyncio.to_thread(service.validate, params)
    base = default_label(v.dn, service.today())
    label, n = base, 2
    while (label in reserved
           or await asyncio.to_thread(service.store.find_request_by_label, label) is not None
           or await labels.in_use(label)):
        label, n = f"{base}-{n}", n + 1
    return label


def refuse_if(problems: Sequence[Problem], total: int) -> None:
    if problems:
        raise BatchRefused(problems, total)
