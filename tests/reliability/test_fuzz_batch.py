"""Fuzzing `generate --batch` lines (no token): a line holding what a user would type into
`generate` is read into the same request. Hostile GenerateParams are written as one JSON Lines
object and as one CSV row; each must validate exactly as the parameters themselves do (the same
normalised request, or the same one-sentence refusal), or be refused while being read with a
sentence naming the field.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.reliability.conftest import examples
from tests.reliability.strategies import check_refusal, generate_params
from tests.reliability.test_fuzz_validation import offline  # noqa: F401 - the fixture
from tui_csr.batch import _SUBJECT, parse_batch
from tui_csr.errors import InputError
from tui_csr.service import CsrService, GenerateParams

N_BATCH = 500
_NAME = {attr: name for name, attr in _SUBJECT.items()}


def line_doc(p: GenerateParams) -> dict:
    """The batch fields for ``p`` (lists as JSON arrays)."""
    doc: dict = {"key_spec": p.key_spec}
    for key in ("hash", "dn", "owner", "label"):
        if getattr(p, key) is not None:
            doc[key] = getattr(p, key)
    if p.pss:
        doc["pss"] = True
    for attr, value in (p.fields.items() if isinstance(p.fields, dict) else p.fields):
        doc[_NAME[attr]] = [value] if attr in ("OU", "DC") else value
    for kind in ("email", "dns", "ip", "uri"):
        values = [v for k, v in p.sans if k == kind]
        if values:
            doc[kind] = values
    if p.groups:
        doc["group"] = list(p.groups)
    return doc


def as_read(p: GenerateParams) -> GenerateParams:
    """What a batch line can say of ``p``: the SANs of the four kinds, grouped by kind."""
    return replace(p, sans=[(k, v) for kind in ("email", "dns", "ip", "uri")
                            for k, v in p.sans if k == kind])


def outcome(service: CsrService, p: GenerateParams):
    try:
        return service.validate(p)
    except InputError as exc:
        return f"refused: {exc}"


def csv_text(doc: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(doc))
    writer.writerow([";".join(v) if isinstance(v, list) else "true" if v is True else v
                     for v in doc.values()])
    return out.getvalue()


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@examples(N_BATCH)
@given(params=generate_params(), fmt=st.sampled_from(["jsonl", "csv"]),
       everything=st.integers(0, 3))
# A DN ending in an escaped space: a batch cell is stripped, but not the DN's own escapes.
@example(params=GenerateParams("P-256", dn="O=x,CN=a\\ ", groups=["Web"]), fmt="jsonl",
         everything=3)
@example(params=GenerateParams("P-256", dn="CN=a\\ ", groups=["Web"]), fmt="csv",
         everything=3)
def test_a_batch_line_means_what_generate_would(offline: CsrService,  # noqa: F811
                                                params: GenerateParams, fmt: str,
                                                everything: int) -> None:
    if everything < 3:  # mostly the subject and SANs only, so that many lines are accepted
        params = replace(params, key_spec="P-256", hash=None, pss=False, groups=["Web"],
                         owner=None, label=None)
    doc = line_doc(params)
    text = json.dumps(doc) + "\n" if fmt == "jsonl" else csv_text(doc)
    if fmt == "csv" and any(";" in str(v) for v in doc.values()):
        event("csv: a ';' inside a value (it separates values there)")
        return
    try:
        lines, problems = parse_batch(text, fmt)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be written to a file at all
    if problems:
        event("refused while reading")
        assert len(problems) == 1 and len(problems[0][1].splitlines()) == 1, problems
        return
    if not lines:
        event("no request (a blank row)")
        return
    assert len(lines) == 1
    want, got = outcome(offline, as_read(params)), outcome(offline, lines[0].params)
    if isinstance(got, str):
        # Refused as `generate` refuses it (the sentence may quote a value the line had with
        # whitespace around it, which a batch cell drops).
        event("refused by validation")
        assert isinstance(want, str), (doc, got, want)
        try:
            offline.validate(lines[0].params)
        except InputError as exc:
            check_refusal(exc)
        return
    event("accepted")
    assert got == want, (doc, got, want)  # the same normalised request
