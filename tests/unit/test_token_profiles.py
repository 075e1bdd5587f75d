"""Token profiles: chosen from module and token info, overridable, and the templates they make."""

from __future__ import annotations

import pytest
from pkcs11 import Attribute
from pkcs11.constants import DEFAULT

from tui_csr.config import load_settings
from tui_csr.core.keyspec import parse_key_spec
from tui_csr.errors import ConfigError
from tui_csr.hsm.profiles import PROFILES, choose_profile, get_profile, profile_names
from tui_csr.hsm.templates import forced_attributes, key_templates, promise_broken

SOFTHSM = dict(module_path="/usr/lib/softhsm/libsofthsm2.so",
               library="SoftHSM Implementation of PKCS11",
               token_manufacturer="SoftHSM project", token_model="SoftHSM v2")
TPM2 = dict(module_path="/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
            library="tpm2-software.github.io TPM2.0 Cryptoki",
            token_manufacturer="IBM", token_model="SW   TPM")
P11KIT_SOFTHSM = dict(module_path="/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
                      library="PKCS#11 Kit PKCS#11 Kit Proxy Module",
                      token_manufacturer="SoftHSM project", token_model="SoftHSM v2")
P11KIT_UNKNOWN = {**P11KIT_SOFTHSM, "token_manufacturer": "Acme", "token_model": "Box"}
UNKNOWN = dict(module_path="/opt/acme/libacme.so", library="Acme Corp Acme PKCS#11",
               token_manufacturer="Acme", token_model="Box 9")


@pytest.mark.parametrize(("info", "name", "because"), [
    (SOFTHSM, "softhsm", "token manufacturer/model 'SoftHSM project SoftHSM v2'"),
    # The TPM's vendor is the token manufacturer (IBM for swtpm): the library decides.
    (TPM2, "tpm2-pkcs11", "library 'tpm2-software.github.io TPM2.0 Cryptoki'"),
    # A forwarder passes the remote token's info through: it names the real device.
    (P11KIT_SOFTHSM, "softhsm", "(forwarded through p11-kit-client)"),
    (P11KIT_UNKNOWN, "p11-kit-client", "module file 'p11-kit-client.so'"),
    (dict(module_path="/opt/safenet/lunaclient/lib/libCryptoki2_64.so",
          library="SafeNet Chrystoki", token_manufacturer="Safenet, Inc.",
          token_model="LunaSA 7.8"), "luna", "luna"),
    (dict(module_path="/opt/cloudhsm/lib/libcloudhsm_pkcs11.so",
          library="Amazon Web Services AWS CloudHSM", token_manufacturer="Marvell",
          token_model="LS2"), "cloudhsm", "cloudhsm"),
    (dict(module_path="/usr/lib/yubihsm_pkcs11.so", library="Yubico (www.yubico.com) YubiHSM",
          token_manufacturer="Yubico (www.yubico.com)", token_model="YubiHSM"),
     "yubihsm2", "yubihsm"),
    (dict(module_path="/opt/fortanix/pkcs11/fortanix_pkcs11.so",
          library="Fortanix Fortanix PKCS#11 Library", token_manufacturer="Fortanix",
          token_model="DSM"), "fortanix", "fortanix"),
    (UNKNOWN, "generic", "no known implementation matched"),
])
def test_profile_chosen_from_module_and_token_info(info: dict, name: str, because: str) -> None:
    profile, reason = choose_profile(**info)
    assert profile.name == name
    assert because in reason


def test_override_wins_and_unknown_names_list_the_valid_ones() -> None:
    profile, reason = choose_profile(**SOFTHSM, override="generic")
    assert profile.name == "generic" and reason == "set by token_profile"
    with pytest.raises(ConfigError) as err:
        get_profile("thales")
    assert err.value.message == ("Unknown token profile 'thales'; valid profiles: "
                                 + ", ".join(profile_names()) + ".")
    assert set(profile_names()) == {"softhsm", "tpm2-pkcs11", "p11-kit-client", "luna",
                                    "cloudhsm", "fortanix", "yubihsm2", "generic"}


def test_token_profile_setting_from_environment_and_file(tmp_path) -> None:
    assert load_settings(env={"TUI_CSR_TOKEN_PROFILE": "YubiHSM2"}).token_profile == "yubihsm2"
    with pytest.raises(ConfigError, match="valid profiles: cloudhsm, fortanix, generic"):
        load_settings(env={"TUI_CSR_TOKEN_PROFILE": "nope"})
    conf = tmp_path / "c.toml"
    conf.write_text('token_profile = "tpm2-pkcs11"\n')
    assert load_settings(config=conf, env={}).token_profile == "tpm2-pkcs11"
    conf.write_text('token_profile = "luna-sa"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config=conf, env={})
    assert err.value.field == "token_profile" and "'luna-sa'" in err.value.message


def _sent(template: dict) -> dict:
    """What python-pkcs11 sends: DEFAULT values are left out."""
    return {k: v for k, v in template.items() if v is not DEFAULT}


def test_softhsm_template_sets_every_capability_off() -> None:
    pub, priv, left = key_templates(PROFILES["softhsm"], parse_key_spec("P-256"), "k", b"\x01")
    assert left == ()
    assert _sent(pub) == {Attribute.TOKEN: True, Attribute.LABEL: "k", Attribute.ID: b"\x01",
                          Attribute.PRIVATE: False, Attribute.VERIFY: True,
                          Attribute.ENCRYPT: False, Attribute.WRAP: False}
    assert _sent(priv) == {Attribute.TOKEN: True, Attribute.PRIVATE: True,
                           Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                           Attribute.SIGN: True, Attribute.LABEL: "k", Attribute.ID: b"\x01",
                           Attribute.DECRYPT: False, Attribute.UNWRAP: False,
                           Attribute.DERIVE: False}


def test_tpm2_template_leaves_encrypt_and_decrypt_to_the_token() -> None:
    """One TPM bit backs SIGN+ENCRYPT and one VERIFY+DECRYPT: ENCRYPT/DECRYPT=false contradicts
    the template there. They must be DEFAULT (python-pkcs11 would otherwise fill in false)."""
    for spec in ("RSA2048", "P-384"):
        pub, priv, left = key_templates(PROFILES["tpm2-pkcs11"], parse_key_spec(spec), "k",
                                        b"\x01")
        assert pub[Attribute.ENCRYPT] is DEFAULT and priv[Attribute.DECRYPT] is DEFAULT
        assert pub[Attribute.WRAP] is False and priv[Attribute.UNWRAP] is False
        assert set(left) == {"ENCRYPT", "DECRYPT"}


def test_generic_template_holds_only_what_the_promise_needs() -> None:
    pub, priv, left = key_templates(PROFILES["generic"], parse_key_spec("RSA3072"), "k", b"\x01",
                                    always_authenticate=True)
    assert _sent(pub) == {Attribute.TOKEN: True, Attribute.LABEL: "k", Attribute.ID: b"\x01",
                          Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"}
    assert _sent(priv) == {Attribute.TOKEN: True, Attribute.PRIVATE: True,
                           Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                           Attribute.SIGN: True, Attribute.LABEL: "k", Attribute.ID: b"\x01",
                           Attribute.ALWAYS_AUTHENTICATE: True}
    assert "DECRYPT" in left and "public VERIFY" in left


def test_ec_profiles_leave_encryption_attributes_of_ec_keys_only() -> None:
    prof = PROFILES["cloudhsm"]
    _pub, priv, _ = key_templates(prof, parse_key_spec("RSA2048"), "k", b"\x01")
    assert priv[Attribute.DECRYPT] is False
    _pub, priv, _ = key_templates(prof, parse_key_spec("P-256"), "k", b"\x01")
    assert priv[Attribute.DECRYPT] is DEFAULT and priv[Attribute.DERIVE] is False


def test_promise_and_forced_attributes() -> None:
    good = {"SENSITIVE": True, "EXTRACTABLE": False, "ALWAYS_SENSITIVE": True,
            "NEVER_EXTRACTABLE": True, "SIGN": True, "DECRYPT": True}
    assert promise_broken(good) == []
    assert promise_broken({**good, "EXTRACTABLE": True}) == ["EXTRACTABLE=True"]
    assert promise_broken({k: v for k, v in good.items() if k != "ALWAYS_SENSITIVE"}) == [
        "ALWAYS_SENSITIVE=missing"]
    assert forced_attributes(good, {"ENCRYPT": True, "WRAP": False}) == {
        "DECRYPT": True, "public.ENCRYPT": True}


def test_profile_facts() -> None:
    yubi = PROFILES["yubihsm2"]
    assert (yubi.key_id_length, yubi.label_max, yubi.key_id_mutable) == (2, 40, False)
    assert yubi.label_problem("x" * 40) is None
    assert yubi.label_problem("é" * 21) == "The key label is 42 bytes; YubiHSM 2 holds at most 40."
    assert "0001password" in (yubi.pin_hint or "")
    cloud = PROFILES["cloudhsm"]
    assert not cloud.stores_certificates and not cloud.key_id_mutable
    assert not cloud.multipart_sign
    assert "P-521" in PROFILES["tpm2-pkcs11"].refused_specs
    assert any("store only" in line for line in cloud.adjustments())


def test_the_settings_know_the_same_profile_names() -> None:
    from tui_csr.core.token_profiles import TOKEN_PROFILE_NAMES

    assert list(TOKEN_PROFILE_NAMES) == profile_names()
