"""Reading batch files: JSON Lines and CSV, line numbers, field spellings, list cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_csr.batch import BatchRefused, batch_format, parse_batch, read_batch
from tui_csr.errors import InputError


def test_jsonl_fields_and_line_numbers() -> None:
    text = (
        '{"key_spec": "P-256", "cn": "a.example.com", "dns": ["a.example.com", "b.example.com"],'
        ' "group": "Web"}\n'
        "\n"  # blank lines are skipped but still counted
        '{"Key-Spec": "RSA3072", "dn": "CN=c,O=Ex", "pss": true, "groups": ["Web", "Mail"],'
        ' "email": "pki@example.com", "owner": "alice", "label": "c-key", "hash": "SHA384"}\n'
    )
    lines, problems = parse_batch(text, "jsonl")
    assert problems == []
    assert [line.number for line in lines] == [1, 3]
    a, c = (line.params for line in lines)
    assert a.key_spec == "P-256" and a.field_pairs() == [("CN", "a.example.com")]
    assert a.sans == [("dns", "a.example.com"), ("dns", "b.example.com")]
    assert a.groups == ["Web"] and a.label is None and a.pss is False
    assert c.key_spec == "RSA3072" and c.dn == "CN=c,O=Ex" and c.pss is True
    assert c.groups == ["Web", "Mail"] and c.sans == [("email", "pki@example.com")]
    assert (c.owner, c.label, c.hash) == ("alice", "c-key", "SHA384")
    assert lines[1].explicit_label == "c-key"


def test_jsonl_problems_name_their_lines() -> None:
    text = (
        '{"key_spec": "P-256", "cn": "ok", "group": "Web"}\n'
        '{"key_spec": "P-256", "cn": "x", \n'
        '["not", "an", "object"]\n'
        '{"key_spec": "P-256", "colour": "blue"}\n'
        '{"key_spec": 256}\n'
        '{"group": "a", "groups": ["b"]}\n'
    )
    lines, problems = parse_batch(text, "jsonl")
    assert [line.number for line in lines] == [1]
    by_line = dict(problems)
    assert sorted(by_line) == [2, 3, 4, 5, 6]
    assert "not valid JSON" in by_line[2]
    assert "one JSON object" in by_line[3]
    assert "unknown field 'colour'" in by_line[4]
    assert "must be text" in by_line[5]
    assert "given twice" in by_line[6]


def test_csv_header_lists_and_line_numbers() -> None:
    text = (
        "key_spec,CN,O,C,dns,email,groups,pss,label\n"
        "P-256,a.example.com,Ex,us,a.example.com; www.a.example.com,,Web,,\n"
        "RSA2048,b,,,,pki@example.com,Web;Mail,yes,b-key\n"
        ",,,,,,,,\n"  # an empty row is skipped
        'P-384,"c, the third",,,,,Web,false,\n'
    )
    lines, problems = parse_batch(text, "csv")
    assert problems == []
    assert [line.number for line in lines] == [2, 3, 5]
    a, b, c = (line.params for line in lines)
    assert a.field_pairs() == [("CN", "a.example.com"), ("O", "Ex"), ("C", "us")]
    assert a.sans == [("dns", "a.example.com"), ("dns", "www.a.example.com")]
    assert a.groups == ["Web"] and a.label is None and a.pss is False
    assert b.groups == ["Web", "Mail"] and b.pss is True and b.label == "b-key"
    assert c.field_pairs() == [("CN", "c, the third")]


def test_csv_problems() -> None:
    lines, problems = parse_batch("key_spec,cn,shoe_size\nP-256,a,42\n", "csv")
    assert lines == [] and problems[0][0] == 1 and "unknown column 'shoe_size'" in problems[0][1]
    lines, problems = parse_batch("key_spec,cn\nP-256,a,extra\nP-256,b,\nP-256,c\n", "csv")
    assert [line.number for line in lines] == [4]
    assert [n for n, _ in problems] == [2, 3]
    assert "3 cells but the header has 2 columns" in problems[0][1]
    lines, problems = parse_batch("key_spec,cn,pss\nRSA2048,a,maybe\n", "csv")
    assert problems[0][0] == 2 and "'pss' must be true or false, not 'maybe'" in problems[0][1]


def test_format_detection(tmp_path: Path) -> None:
    assert batch_format("x.jsonl", "") == "jsonl"
    assert batch_format("x.CSV", "{") == "csv"
    assert batch_format("requests.txt", '  {"key_spec": "P-256"}') == "jsonl"
    assert batch_format("requests.txt", "key_spec,cn\n") == "csv"


def test_read_batch_refuses_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"key_spec": "P-256", "cn": "a"}\n{oops\n{"nope": 1}\n', encoding="utf-8")
    with pytest.raises(BatchRefused) as exc:
        read_batch(str(path))
    assert [n for n, _ in exc.value.problems] == [2, 3]
    assert exc.value.exit_code == 2
    assert "2 of 3 requests are invalid" in exc.value.message


def test_read_batch_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be read"):
        read_batch(str(tmp_path / "missing.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("key_spec,cn\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no requests"):
        read_batch(str(empty))
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufeffkey_spec,cn\nP-256,a\n".encode())
    assert read_batch(str(bom))[0].params.key_spec == "P-256"


def test_several_ous_are_kept_in_order() -> None:
    """Repeated OUs: a JSON list, or `;` between them in a CSV cell, each its own RDN in order."""
    lines, problems = parse_batch(
        '{"key_spec": "P-256", "cn": "a", "ou": ["IT", "PKI"], "group": "Web"}\n', "jsonl")
    assert problems == []
    assert lines[0].params.field_pairs() == [("CN", "a"), ("OU", "IT"), ("OU", "PKI")]
    lines, problems = parse_batch("key_spec,cn,ou,group\nP-256,a,IT;PKI,Web\n", "csv")
    assert problems == []
    assert lines[0].params.field_pairs() == [("CN", "a"), ("OU", "IT"), ("OU", "PKI")]
