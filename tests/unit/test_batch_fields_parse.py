"""Reading `generate --batch` lines (no token): every field of a single `generate` (issue 15),
the spellings accepted for them, the CSV conventions, one sentence naming the field for a bad
value."""

from __future__ import annotations

import json

import pytest

from tui_csr.batch import parse_batch


def one(doc: dict):
    lines, problems = parse_batch(json.dumps(doc) + "\n", "jsonl")
    assert problems == [] and len(lines) == 1
    return lines[0].params


def test_jsonl_fields_become_the_generate_parameters() -> None:
    p = one({"key_spec": "P-256", "cn": "a", "dc": ["com", "example"], "ou": "IT",
             "serial-number": "HRB 1", "Jurisdiction_C": "de", "profile": "tls-server",
             "key_usage": ["digitalSignature"], "eku": "serverAuth,clientAuth", "ca": False,
             "path_len": 2, "always_authenticate": True, "given_name": "Ann", "surname": "B"})
    assert p.field_pairs() == [("CN", "a"), ("OU", "IT"), ("DC", "com"), ("DC", "example"),
                               ("serialNumber", "HRB 1"), ("givenName", "Ann"), ("SN", "B"),
                               ("jurisdictionC", "de")]
    assert (p.profile, p.key_usage, p.eku, p.ca, p.path_len, p.always_authenticate) == (
        "tls-server", ["digitalSignature"], ["serverAuth,clientAuth"], False, 2, True)


def test_the_attributes_own_names_are_accepted_too() -> None:
    p = one({"key_spec": "P-256", "CN": "a", "serialNumber": "1", "SN": "S", "givenName": "G",
             "emailAddress": "a@example.com", "postalCode": "1", "jurisdictionST": "X",
             "organizationIdentifier": "VATDE-1", "businessCategory": "B",
             "extendedKeyUsage": ["codeSigning"], "keyUsage": "digitalSignature",
             "pathLen": "1"})
    assert dict(p.field_pairs()) == {
        "CN": "a", "serialNumber": "1", "SN": "S", "givenName": "G",
        "emailAddress": "a@example.com", "postalCode": "1", "jurisdictionST": "X",
        "organizationIdentifier": "VATDE-1", "businessCategory": "B"}
    assert p.eku == ["codeSigning"] and p.key_usage == ["digitalSignature"] and p.path_len == "1"


def test_csv_cells_blanks_and_semicolons() -> None:
    text = ("key_spec,cn,ou,dc,key_usage,eku,ca,always_authenticate,path_len,profile\n"
            'P-256,x,IT;PKI,com;example,"keyCertSign,cRLSign",serverAuth;clientAuth,yes,no,1,\n'
            "P-256,y,,,,,,,,\n")
    lines, problems = parse_batch(text, "csv")
    assert problems == []
    a, b = (line.params for line in lines)
    assert [v for k, v in a.field_pairs() if k == "OU"] == ["IT", "PKI"]
    assert [v for k, v in a.field_pairs() if k == "DC"] == ["com", "example"]
    assert a.key_usage == ["keyCertSign,cRLSign"] and a.eku == ["serverAuth", "clientAuth"]
    assert a.ca is True and a.always_authenticate is False and a.path_len == "1"
    assert a.profile is None
    # Blank cells: nothing asked, the profiles' defaults apply.
    assert (b.key_usage, b.eku, b.ca, b.path_len, b.always_authenticate) == (
        None, None, False, None, False)


@pytest.mark.parametrize(("doc", "message"), [
    ({"ca": "maybe"}, "field 'ca' must be true or false, not 'maybe'."),
    ({"always_authenticate": "often"},
     "field 'always_authenticate' must be true or false, not 'often'."),
    ({"path_len": 1.5}, "field 'path_len' must be a whole number, not float."),
    ({"eku": {"a": 1}}, "field 'eku' must be text or a list of text."),
    ({"dc": 3}, "field 'dc' must be text or a list of text."),
    ({"title": ["a", "b"]}, "field 'title' must be text, not list."),
    ({"profile": 1}, "field 'profile' must be text, not int."),
    ({"cn": "a", "CN": "b"}, "field 'cn' is given twice."),
])
def test_a_bad_value_is_one_sentence_naming_the_field(doc: dict, message: str) -> None:
    lines, problems = parse_batch(json.dumps({"key_spec": "P-256", **doc}) + "\n", "jsonl")
    assert lines == [] and problems == [(1, message)]


def test_an_unknown_column_lists_the_new_fields() -> None:
    _lines, problems = parse_batch("key_spec,cn,nickname\nP-256,a,b\n", "csv")
    assert len(problems) == 1 and problems[0][1].startswith("unknown column 'nickname'")
    for name in ("profile", "key_usage", "eku", "ca", "path_len", "always_authenticate",
                 "serial_number", "jurisdiction_c", "organization_identifier"):
        assert name in problems[0][1]


def test_an_empty_list_entry_is_kept_for_validation_to_refuse() -> None:
    """`"email": [""]` or a CSV cell `a@x;;b@x` holds an empty entry: it reaches validation
    (which refuses it as it refuses `--email ''`), never silently dropped; an empty cell is
    no value at all. (Found by tests/reliability/test_fuzz_batch.py.)"""
    from datetime import date

    from tui_csr.core.rules import validate_request
    from tui_csr.errors import InputError

    p = one({"key_spec": "P-256", "cn": "a", "email": [""], "group": "Web"})
    assert p.sans == [("email", "")]
    with pytest.raises(InputError, match="Email entry is empty"):
        validate_request(p, existing_groups=["Web"], label_taken=lambda _l: False,
                         san_supported=True, today=date(2026, 12, 1))
    lines, problems = parse_batch("key_spec,cn,email\nP-256,a,a@example.com;;b@example.com\n"
                                  "P-256,b,\n", "csv")
    assert problems == []
    assert lines[0].params.sans == [("email", "a@example.com"), ("email", ""),
                                    ("email", "b@example.com")]
    assert lines[1].params.sans == []
