"""RFC 7512 PKCS#11 URIs and the other ways ``generate --key`` names a key."""

from __future__ import annotations

import pytest

from tui_csr.core.p11uri import parse_key_selector, parse_pkcs11_uri
from tui_csr.errors import InputError


def test_uri_path_attributes_are_percent_decoded() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=My%20Token;object=web%3Bkey;id=%01%a2%FF;type=private"
                           ";serial=abc?module-path=/usr/lib/x.so")
    assert uri.token == "My Token"
    assert uri.object == "web;key"
    assert uri.id == b"\x01\xa2\xff"
    assert uri.type == "private"
    assert uri.text("serial") == "abc"
    assert uri.query["module-path"] == b"/usr/lib/x.so"


def test_selector_from_uri_id_hex_and_label() -> None:
    sel = parse_key_selector("pkcs11:token=demo;id=%0A%0B")
    assert (sel.key_id, sel.label, sel.token) == (b"\x0a\x0b", None, "demo")
    assert parse_key_selector("0a:0B").key_id == b"\x0a\x0b"
    assert parse_key_selector("id:0a0b").key_id == b"\x0a\x0b"
    assert parse_key_selector("label:cafe").label == "cafe"  # hex-looking, but a label
    assert parse_key_selector("web key").label == "web key"
    assert parse_key_selector("pkcs11:object=%C3%A9t%C3%A9").label == "été"


@pytest.mark.parametrize(("text", "words"), [
    ("pkcs11:token=demo", "names no key"),
    ("pkcs11:id=%0", "'%' not followed by two hexadecimal digits"),
    ("pkcs11:id=%01;id=%02", "more than once"),
    ("pkcs11:object=a b", "must be percent-encoded (%20)"),
    ("pkcs11:object=a;type=cert", "names a cert object"),
    ("pkcs11:object=a;type=bogus", "type 'bogus' is not one of"),
    ("pkcs11:object=a;x-vendor=1", "'x-vendor' is not one tui-csr understands"),
    ("pkcs11:object=a?pin-value=1234", "a PIN is never a command-line argument"),
    ("pkcs11:object", "is not name=value"),
    ("id:xyz", "not hexadecimal"),
    ("  ", "--key is empty"),
])
def test_bad_uris_are_refused_naming_the_problem(text: str, words: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_key_selector(text)
    assert words in exc.value.message
    assert exc.value.field == "key"
    assert "1234" not in exc.value.message
