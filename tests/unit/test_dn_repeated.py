"""Repeated OU and DC (issue 12 item 6): each value its own RDN, in the order given, in the
string view, from fields/pairs, and in the encoded Name."""

from __future__ import annotations

import pytest

from tui_csr.core.dn import DistinguishedName, parse_dn, to_asn1_name
from tui_csr.errors import InputError


def test_string_keeps_each_ou_in_order() -> None:
    dn = parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")
    assert dn.attrs == (("CN", "a"), ("OU", "PKI"), ("OU", "IT"), ("O", "Example"),
                        ("C", "DE"))
    assert dn.values("OU") == ["IT", "PKI"]  # ASN.1 order, outermost first
    assert dn.to_rfc4514() == "CN=a,OU=PKI,OU=IT,O=Example,C=DE"
    assert parse_dn(dn.to_rfc4514()) == dn


def test_pairs_in_given_order_equal_the_string() -> None:
    pairs = [("CN", "a"), ("OU", "IT"), ("OU", "PKI"), ("O", "Example"), ("C", "DE")]
    assert DistinguishedName.from_pairs(pairs) == parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")
    assert DistinguishedName.from_mapping(
        {"CN": "a", "OU": ["IT", "PKI"], "O": "Example", "C": "DE"}) == \
        parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")


def test_encoded_name_has_one_rdn_per_value_in_asn1_order() -> None:
    dn = parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")
    name = to_asn1_name(dn)
    got = [(rdn[0]["type"].native, rdn[0]["value"].native) for rdn in name.chosen]
    assert got == [("country_name", "DE"), ("organization_name", "Example"),
                   ("organizational_unit_name", "IT"), ("organizational_unit_name", "PKI"),
                   ("common_name", "a")]
    assert all(len(rdn) == 1 for rdn in name.chosen)


def test_dc_repeats_and_is_ia5() -> None:
    dn = parse_dn("CN=a,DC=example,DC=com")
    assert dn.values("DC") == ["com", "example"]
    name = to_asn1_name(dn)
    assert [rdn[0]["value"].native for rdn in name.chosen] == ["com", "example", "a"]
    with pytest.raises(InputError, match="IDNA"):
        parse_dn("CN=a,DC=bücher")


@pytest.mark.parametrize("text", ["CN=a,CN=b", "CN=a,O=x,O=y", "CN=a,C=DE,C=FR"])
def test_single_valued_types_still_refused_twice(text: str) -> None:
    with pytest.raises(InputError, match="more than once"):
        parse_dn(text)
    with pytest.raises(InputError, match="more than once"):
        DistinguishedName.from_pairs([tuple(p.split("=")) for p in text.split(",")])


def test_with_values_keeps_the_block_in_place_and_direction() -> None:
    dn = parse_dn("CN=a,OU=PKI,OU=IT,O=Example,C=DE")
    assert dn.with_values("OU", ["IT", "PKI", "Sub"]).to_rfc4514() == \
        "CN=a,OU=Sub,OU=PKI,OU=IT,O=Example,C=DE"
    assert dn.with_values("OU", []).to_rfc4514() == "CN=a,O=Example,C=DE"
    reverse = parse_dn("C=DE,O=Example,CN=a")
    assert reverse.with_values("OU", ["IT", "PKI"]).to_rfc4514() == \
        "C=DE,O=Example,OU=IT,OU=PKI,CN=a"
    with pytest.raises(InputError):
        dn.with_values("O", ["x", "y"])
