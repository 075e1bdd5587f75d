"""`check_regroup` (issue 15): the profiles of the groups a stored request joins are checked
against the request as made, nothing filled in. Pure: no token, no store."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.test_store import make_request
from tui_csr.core.extensions import RequestedExtensions
from tui_csr.core.profiles import BUILTIN_PROFILES, Profile
from tui_csr.core.rules import check_regroup
from tui_csr.errors import InputError

POLICIES = {"web": "", "TLS": "tls-server", "Clients": "tls-client", "Code": "code-signing",
            "CA": "sub-ca", "Old": "removed-profile"}


def check(req, groups, profiles=BUILTIN_PROFILES, attestation=None) -> None:
    check_regroup(req, groups, group_policies=POLICIES, profiles=profiles,
                  attestation_problem=attestation)


def server(**changes):
    fields = {"sans": [("dns", "a.example")], "key_spec": "P-256", "scheme": "ECDSA",
              "extensions": RequestedExtensions(("digitalSignature",), ("serverAuth",),
                                                False).to_doc(), **changes}
    return make_request(**fields)


def test_a_request_that_fits_joins_and_leaving_checks_nothing() -> None:
    check(server(), ["web", "TLS"])
    # Moving out of groups, or staying, is never refused (even where a profile would not fit).
    plain = make_request(groups=["web", "TLS"], sans=[])
    check(plain, ["web"])
    check(plain, ["TLS", "web"])
    # A group whose policy names no profile (any more) binds nothing.
    check(plain, ["Old"])


def test_the_request_is_checked_as_made_not_filled_in() -> None:
    bare = make_request(sans=[("dns", "a.example")], key_spec="P-256", scheme="ECDSA")
    with pytest.raises(InputError) as info:
        check(bare, ["TLS"])  # generation would add keyUsage; a signed CSR cannot get it
    assert info.value.message == (
        "key_usage: group 'TLS' (profile tls-server) requires digitalSignature")
    with pytest.raises(InputError, match="^eku: group 'TLS' .* does not allow codeSigning"):
        check(server(extensions=RequestedExtensions(
            ("digitalSignature",), ("serverAuth", "codeSigning")).to_doc()), ["TLS"])
    with pytest.raises(InputError, match="^ca: group 'TLS' .* is for end-entity"):
        check(server(extensions=RequestedExtensions(
            ("digitalSignature",), ("serverAuth",), True).to_doc()), ["TLS"])
    with pytest.raises(InputError, match="^key_spec: group 'Code' .* needs RSA 3072"):
        check(make_request(key_spec="RSA2048"), ["Code"])


def test_an_explicit_profile_stays_compatible_unless_it_is_gone() -> None:
    recorded = [{"name": "tls-client", "version": 1, "source": "--profile"}]
    client = make_request(profiles=recorded, sans=[], key_spec="P-256", scheme="ECDSA",
                          extensions=RequestedExtensions(("digitalSignature",), ("clientAuth",),
                                                         False).to_doc())
    with pytest.raises(InputError, match="^eku: the chosen profile tls-client and group 'TLS'"):
        check(dataclasses.replace(client, sans=[("dns", "a.example")]), ["TLS"])
    check(client, ["Clients"])
    # The profile was removed from the store since: nothing left to be compatible with.
    gone = {k: v for k, v in BUILTIN_PROFILES.items() if k != "tls-client"}
    check(client, ["web", "Clients"], profiles={**gone, "x": Profile("x")})


def test_attestation_is_asked_only_when_none_is_attached() -> None:
    ext = RequestedExtensions(("digitalSignature",), ("codeSigning",), False).to_doc()
    signer = make_request(key_spec="P-256", scheme="ECDSA", sans=[], extensions=ext)
    asked: list[int] = []

    def cannot() -> str:
        asked.append(1)
        return "This token cannot attest keys."

    with pytest.raises(InputError) as info:
        check(signer, ["Code"], attestation=cannot)
    assert info.value.field == "attestation" and info.value.message == (
        "attestation: group 'Code' (profile code-signing) needs a key attestation, none is "
        "attached to this request, and this token cannot attest keys.")
    check(make_request(key_spec="P-256", scheme="ECDSA", sans=[], extensions=ext,
                       attestation="AAAA"), ["Code"], attestation=cannot)
    assert asked == [1]
    check(signer, ["Code"], attestation=lambda: None)
