"""Profiles: built-ins, defaults filled, constraints refused naming group, profile and rule,
contradictions between groups, the explicit --profile, and a CSR per built-in profile that
cryptography and openssl read back exactly."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import date

import pytest
from cryptography import x509

from tests.unit.test_extensions import crypto_key_usage, software_csr
from tui_csr.core.extensions import EKU_OIDS
from tui_csr.core.profiles import (
    BUILTIN_PROFILES,
    Profile,
    all_profiles,
    describe_specs,
    validate_profile,
)
from tui_csr.core.rules import GenerateParams, ValidatedRequest, validate_request
from tui_csr.errors import InputError

GROUPS = {"Code signing": "code-signing", "Web": "tls-server", "CA": "sub-ca",
          "Legacy": "web-policy", "Plain": "", "Mail": "smime", "Clients": "tls-client",
          "Any": "generic"}
UNATTESTED = "This token does not support key attestation (attestation = \"none\")."


def validate(params: GenerateParams, *, profiles=None, attestation: str | None = None
             ) -> ValidatedRequest:
    return validate_request(
        params, existing_groups=list(GROUPS), label_taken=lambda _label: False,
        san_supported=True, today=date(2026, 12, 1), group_policies=GROUPS,
        profiles=profiles or BUILTIN_PROFILES, attestation_problem=lambda: attestation)


def params(**kw) -> GenerateParams:
    base = {"key_spec": "P-256", "fields": [("CN", "x.example"), ("O", "Example"), ("C", "DE")],
            "groups": ["Plain"]}
    base.update(kw)
    return GenerateParams(**base)


def test_the_builtins_are_there_and_valid() -> None:
    assert list(BUILTIN_PROFILES) == ["tls-server", "tls-client", "code-signing", "smime",
                                      "sub-ca", "generic"]
    for p in BUILTIN_PROFILES.values():
        assert p.builtin and validate_profile(p) == p
        again = Profile.from_doc(p.to_doc())
        assert dataclasses.replace(again, builtin=True) == p
    cs = BUILTIN_PROFILES["code-signing"]
    assert cs.attestation_required and cs.eku_required == ("codeSigning",)
    assert set(cs.key_specs) == {"RSA3072", "RSA4096", "P-256", "P-384"}
    assert BUILTIN_PROFILES["generic"] == Profile("generic", description="No constraints",
                                                  builtin=True)


def test_describe_specs() -> None:
    assert describe_specs(("RSA3072", "RSA4096", "P-256", "P-384")) == (
        "RSA 3072 or larger, or P-256/P-384")
    assert describe_specs(("RSA2048",)) == "RSA 2048"
    assert describe_specs(("Ed25519",)) == "Ed25519"


def test_breaking_a_groups_profile_names_group_profile_and_rule() -> None:
    with pytest.raises(InputError) as info:
        validate(params(key_spec="RSA2048", groups=["Code signing"]), attestation=None)
    assert info.value.message == ("key_spec: group 'Code signing' (profile code-signing) needs "
                                  "RSA 3072 or larger, or P-256/P-384")
    assert info.value.field == "key_spec"
    cases = [
        (params(groups=["Web"]), "san: group 'Web' (profile tls-server) needs at least 1 SAN"),
        (params(groups=["Web"], sans=[("email", "a@b.example")]),
         "san: group 'Web' (profile tls-server) does not allow email SANs (allowed: dns, ip)"),
        (params(groups=["Web"], sans=[("dns", "x.example")], eku="clientAuth"),
         "eku: group 'Web' (profile tls-server) requires serverAuth"),
        (params(groups=["Web"], sans=[("dns", "x.example")], eku="serverAuth,codeSigning"),
         "eku: group 'Web' (profile tls-server) does not allow codeSigning (allowed: "
         "serverAuth, clientAuth)"),
        (params(groups=["Web"], sans=[("dns", "x.example")], ca=True),
         "ca: group 'Web' (profile tls-server) is for end-entity certificates, not a CA"),
        (params(groups=["CA"], key_spec="RSA4096", fields=[("CN", "ca")]),
         "dn: group 'CA' (profile sub-ca) needs the DN attribute O"),
        (params(groups=["CA"], key_spec="RSA4096", path_len="3"),
         "path_len: group 'CA' (profile sub-ca) allows a path length of at most"),
        (params(groups=["CA"], key_spec="RSA4096", key_usage="keyCertSign"),
         "key_usage: group 'CA' (profile sub-ca) requires cRLSign"),
        (params(groups=["Mail"]), "san: group 'Mail' (profile smime) needs at least one email"),
    ]
    profiles = dict(BUILTIN_PROFILES)
    profiles["sub-ca"] = dataclasses.replace(profiles["sub-ca"], path_len_max=1)
    for p, message in cases:
        with pytest.raises(InputError) as info:
            validate(p, profiles=profiles)
        assert info.value.message.startswith(message), (info.value.message, message)


def test_attestation_required_is_refused_where_the_token_has_none() -> None:
    p = params(groups=["Code signing"], key_spec="P-384")
    with pytest.raises(InputError) as info:
        validate(p, attestation=UNATTESTED)
    assert info.value.message == (
        "attestation: group 'Code signing' (profile code-signing) needs a key attestation, and "
        "this token does not support key attestation (attestation = \"none\").")
    v = validate(p, attestation=None)
    assert v.extensions.eku == ("codeSigning",) and v.extensions.key_usage == (
        "digitalSignature",)
    assert v.profiles == ({"name": "code-signing", "version": 1, "source": "group:Code signing"},)


def test_two_groups_that_contradict_each_other_are_refused_naming_both() -> None:
    with pytest.raises(InputError) as info:
        validate(params(groups=["Web", "CA"], sans=[("dns", "x.example")]))
    assert info.value.message == (
        "ca: group 'Web' (profile tls-server) and group 'CA' (profile sub-ca) contradict each "
        "other: one is for a CA, the other for an end entity.")
    only_ed = Profile("ed-only", key_specs=("Ed25519",))
    known = {**BUILTIN_PROFILES, "ed-only": only_ed}
    groups = {**GROUPS, "Ed": "ed-only"}
    with pytest.raises(InputError) as info:
        validate_request(params(groups=["Code signing", "Ed"]), existing_groups=list(groups),
                         label_taken=lambda _l: False, san_supported=True,
                         today=date(2026, 12, 1), group_policies=groups, profiles=known)
    assert info.value.message == (
        "key_spec: group 'Code signing' (profile code-signing) and group 'Ed' (profile "
        "ed-only) contradict each other: one allows RSA 3072 or larger, or P-256/P-384, the "
        "other Ed25519.")


def test_an_explicit_profile_must_agree_with_the_groups() -> None:
    with pytest.raises(InputError) as info:
        validate(params(groups=["Web"], profile="sub-ca", sans=[("dns", "x.example")]))
    assert info.value.message.startswith(
        "ca: the chosen profile sub-ca and group 'Web' (profile tls-server) contradict")
    with pytest.raises(InputError, match="Profile 'nope' does not exist; profiles: "):
        validate(params(profile="nope"))
    with pytest.raises(InputError) as info:
        validate(params(groups=["Web"], profile="tls-client", sans=[("dns", "x.example")]))
    assert info.value.message == (
        "eku: the chosen profile tls-client and group 'Web' (profile tls-server) contradict "
        "each other: tls-server requires serverAuth, which tls-client does not allow.")
    v = validate(params(groups=["Web"], profile="generic", sans=[("dns", "x.example")],
                        eku="serverAuth,clientAuth"))
    assert [p["source"] for p in v.profiles] == ["--profile", "group:Web"]
    assert v.extensions.eku == ("serverAuth", "clientAuth")


def test_defaults_fill_what_the_user_left_empty() -> None:
    v = validate(params(key_spec="", groups=["CA"], fields=[("CN", "Issuing CA"),
                                                            ("O", "Example")]))
    assert v.spec.name == "RSA4096" and v.hash_alg.value == "SHA384"
    assert v.extensions.ca is True and v.extensions.path_len == 0 and v.extensions.ski
    assert v.extensions.key_usage == ("digitalSignature", "keyCertSign", "cRLSign")
    # DN defaults fill fields the user did not give; the user's own values win.
    shop = Profile("shop", dn_defaults=(("O", "Example GmbH"), ("C", "DE"), ("OU", "Shop")))
    known = {**BUILTIN_PROFILES, "shop": shop}
    v = validate(params(profile="shop", fields=[("CN", "a"), ("O", "Mine")]), profiles=known)
    assert v.dn.to_rfc4514() == "CN=a,OU=Shop,O=Mine,C=DE"
    # No key spec and no default: the familiar sentence.
    with pytest.raises(InputError, match="^A key spec is required"):
        validate(params(key_spec="", groups=["Plain"]))


def test_defaults_fill_a_subject_given_as_one_string_too() -> None:
    """The wizard (and `--dn`) give the subject as one string: a profile's DN defaults fill
    the attributes it lacks, each at its place in the canonical order; the string's own
    attributes, their order and multi-valued RDNs stay as given."""
    shop = Profile("shop", dn_defaults=(("O", "Example GmbH"), ("C", "DE"), ("OU", "Shop")))
    known = {**BUILTIN_PROFILES, "shop": shop}
    v = validate(params(profile="shop", fields={}, dn="CN=a,O=Mine"), profiles=known)
    assert v.dn.to_rfc4514() == "CN=a,OU=Shop,O=Mine,C=DE"
    v = validate(params(profile="shop", fields={}, dn="CN=a+UID=u,L=Berlin"), profiles=known)
    assert v.dn.to_rfc4514() == "CN=a+UID=u,OU=Shop,O=Example GmbH,L=Berlin,C=DE"
    v = validate(params(profile="shop", fields={}, dn="CN=a,OU=x,O=y,C=FR"), profiles=known)
    assert v.dn.to_rfc4514() == "CN=a,OU=x,O=y,C=FR"  # nothing lacking: as typed
    with pytest.raises(InputError):  # a string that does not parse is still refused
        validate(params(profile="shop", fields={}, dn="CN=a,,O="), profiles=known)


def test_key_usage_defaults_follow_the_key_type() -> None:
    rsa = Profile("rsa-tls", key_usage=("digitalSignature", "keyEncipherment"),
                  key_usage_allowed=("digitalSignature", "keyEncipherment", "keyAgreement"))
    known = {**BUILTIN_PROFILES, "rsa-tls": rsa}
    assert validate(params(profile="rsa-tls", key_spec="RSA2048"), profiles=known
                    ).extensions.key_usage == ("digitalSignature", "keyEncipherment")
    assert validate(params(profile="rsa-tls"), profiles=known
                    ).extensions.key_usage == ("digitalSignature",)
    with pytest.raises(InputError, match="keyEncipherment does not apply to P-256 keys"):
        validate(params(profile="rsa-tls", key_usage="keyEncipherment"), profiles=known)


def test_a_policy_naming_no_profile_is_a_label_without_constraints() -> None:
    v = validate(params(key_spec="RSA2048", groups=["Legacy"], ca=True, key_usage="keyCertSign"))
    assert v.profiles == () and v.extensions.ca is True
    plain = validate(params(groups=["Plain"]))
    assert plain.extensions.empty and plain.profiles == ()


def test_ed25519_takes_no_hash_and_no_pss() -> None:
    with pytest.raises(InputError, match="Ed25519 signs without a separate hash"):
        validate(params(key_spec="Ed25519", hash="SHA256"))
    with pytest.raises(InputError, match="PSS padding applies to RSA keys only, not to Ed25519"):
        validate(params(key_spec="ed25519", pss=True))
    assert validate(params(key_spec="ED448")).spec.name == "Ed448"


def test_stored_profiles_are_validated() -> None:
    for bad, needle in [
        (Profile("Bad Name"), "Profile name 'Bad Name' is not valid"),
        (Profile("x", key_specs=("P-256",), default_key_spec="RSA2048"),
         "key_spec: the default RSA2048 is not among the allowed key specs"),
        (Profile("x", key_usage=("keyCertSign",)), "keyCertSign needs a CA profile"),
        (Profile("x", eku=("codeSigning",), eku_allowed=("serverAuth",)),
         "codeSigning is a default or required but not allowed"),
        (Profile("x", san_types=("dns",), san_required=("email",)), "required SAN type"),
        (Profile("x", dn_defaults=(("CN", "a"),)), "cannot give a default CN"),
        (Profile("x", dn_defaults=(("XX", "a"),)), "Unknown attribute type 'XX'"),
        (Profile("x", path_len=1), "path length applies to a CA profile only"),
        (Profile("x", description="a\x1b[31mb"), "character U\\+001B"),
    ]:
        with pytest.raises(InputError, match=needle):
            validate_profile(bad)
    p = validate_profile(Profile("x", key_specs=("prime256v1", "rsa-3072"),
                                 eku=("1.3.6.1.5.5.7.3.3",), dn_required=("organizationName",)))
    assert p.key_specs == ("P-256", "RSA3072") and p.eku == ("codeSigning",)
    assert p.dn_required == ("O",)
    assert all_profiles([p])["x"] == p


_SPEC_FOR = {"tls-server": "P-256", "tls-client": "P-256", "code-signing": "P-256",
             "smime": "P-256", "sub-ca": "P-256", "generic": "Ed25519"}
_SANS = {"tls-server": [("dns", "x.example")], "smime": [("email", "a@x.example")]}


@pytest.mark.parametrize("name", list(BUILTIN_PROFILES))
def test_each_builtin_profile_makes_a_csr_read_back_exactly(name: str, tmp_path) -> None:
    v = validate(params(profile=name, key_spec=_SPEC_FOR[name], sans=_SANS.get(name, [])))
    der = software_csr(v.spec.name, v.extensions, v.sans)
    req = x509.load_der_x509_csr(der)
    assert req.is_signature_valid
    got = {e.oid.dotted_string: e for e in req.extensions}
    ext = v.extensions
    if ext.ca is not None:
        bc = got.pop("2.5.29.19")
        assert bc.critical and bc.value == x509.BasicConstraints(ext.ca, ext.path_len)
    if ext.key_usage:
        ku = got.pop("2.5.29.15")
        assert ku.critical and ku.value == crypto_key_usage(ext.key_usage)
    if ext.eku:
        eku = got.pop("2.5.29.37")
        assert not eku.critical
        assert [o.dotted_string for o in eku.value] == [EKU_OIDS.get(e, e) for e in ext.eku]
    if ext.ski:
        ski = got.pop("2.5.29.14")
        assert not ski.critical
        assert ski.value == x509.SubjectKeyIdentifier.from_public_key(req.public_key())
    if v.sans:
        assert not got.pop("2.5.29.17").critical
    assert got == {}
    path = tmp_path / "r.pem"
    path.write_bytes(x509.load_der_x509_csr(der).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.PEM))
    text = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-text", "-verify"],
                          capture_output=True, text=True, check=True)
    out = text.stdout + text.stderr
    assert "verify OK" in out
    assert ("X509v3 Basic Constraints: critical" in out) == (ext.ca is not None)
    assert ("X509v3 Key Usage: critical" in out) == bool(ext.key_usage)
    assert ("X509v3 Extended Key Usage: \n" in out) == bool(ext.eku)
    assert ("X509v3 Subject Key Identifier: \n" in out) == ext.ski
