"""Failing examples the fuzzers found, kept as explicit tests (see SECURITY.md, "Found and fixed").
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.integration.conftest import GROUP
from tests.reliability.strategies import check_refusal, csr_subject_and_sans, unsafe_characters
from tui_csr.core.csr import assemble, build_tbs, signature_algorithm, summarize
from tui_csr.core.dn import DistinguishedName
from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme
from tui_csr.core.san import validate_sans
from tui_csr.errors import InputError, TuiCsrError, printable
from tui_csr.service import CsrService, GenerateParams, validate_label, validate_text

_KEY = ec.generate_private_key(ec.SECP256R1())
_SPKI = _KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
_P256 = KEY_SPECS["P-256"]

# asn1crypto re-encodes a structure from its Python values whenever its DER header ends in
# 0x80 (it mistakes a length of 128 + 256k for the indefinite form). That re-encoding runs
# URIs through its normaliser (a trailing '?' vanished) and domains through IDNA 2003 (a
# domain with 'ß' raised UnicodeError); for the whole CertificationRequestInfo it made the
# bytes in the CSR differ from the bytes the token had signed.
_SANS = [("dns", "straße.example"), ("email", "joerg@straße.example"),
         ("uri", "HTTP://Host.example/a?"), ("uri", "https://h.example/%7e?"),
         ("ip", "2001:0db8:0000:0000:0000:0000:0000:0001"), ("dns", "*.xn--bcher-kva.example")]


def _software_csr(dn: DistinguishedName, sans) -> bytes:
    tbs = build_tbs(dn, _SPKI, sans)
    signature = _KEY.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    return assemble(tbs, signature_algorithm(_P256, HashAlg.SHA256, Scheme.ECDSA), signature)


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # UTF-8 bytes, not characters
@pytest.mark.parametrize("count", range(1, len(_SANS) + 1))
def test_san_strings_survive_every_encoded_length(count: int) -> None:
    """Every CN length from 1 to 64 with growing SAN lists walks every nesting level of the
    CSR across a length of 128 + 256k at least once."""
    sans = validate_sans(_SANS[:count])
    want = [e.as_pair() for e in sans]
    for n in range(1, 65):
        dn = DistinguishedName.from_mapping({"CN": "é" * (n % 7) + "a" * (n - n % 7),
                                             "O": "Ö" * n, "C": "DE"})
        der = _software_csr(dn, sans)
        subject, got = csr_subject_and_sans(der)  # also checks the signature
        assert subject == list(dn.attrs)
        assert got == want
        assert summarize(der).sans == want  # View CSR / show --text read the raw value


def _fields_for_0x80_request_info() -> dict[str, str]:
    """Subject fields that make the CertificationRequestInfo's length 384 (header 82 01 80)."""
    sans = validate_sans([("uri", "https://h.example/x?")])
    for locality in range(1, 129):
        for state in range(1, 129):
            fields = {"CN": "c" * 64, "L": "l" * locality, "ST": "s" * state}
            der = build_tbs(DistinguishedName.from_mapping(fields), _SPKI, sans).dump()
            if der[1] == 0x82 and der[3] == 0x80:
                return fields
    raise AssertionError("no such length")


async def test_generate_when_the_request_info_is_384_bytes(service: CsrService) -> None:
    """On the token: a CertificationRequestInfo of 128 + 256k content bytes came out with a
    signature that did not verify ("nothing was stored"), or with a silently changed URI."""
    fields = _fields_for_0x80_request_info()
    req = await service.generate(GenerateParams(
        key_spec="P-256", fields=fields, sans=[("uri", "https://h.example/x?")],
        groups=[GROUP], label="len-0x80"))
    subject, sans = csr_subject_and_sans(req.csr_pem.encode())
    assert dict(subject) == fields and sans == [("uri", "https://h.example/x?")]
    await service.delete_request(req.id)


async def test_generate_with_sharp_s_domain(service: CsrService) -> None:
    req = await service.generate(GenerateParams(
        key_spec="P-256", fields={"CN": "straße.example"}, groups=[GROUP],
        sans=[("dns", "straße.example"), ("email", "a@fußball.example")], label="sharp-s"))
    _, sans = csr_subject_and_sans(req.csr_pem.encode())
    assert sans == [("dns", "xn--strae-oqa.example"), ("email", "a@xn--fuball-cta.example")]
    assert (await service.view_request(req.id)).csr.sans == sans
    await service.delete_request(req.id)


# -- messages quote what was typed: one line, no terminal control ----------------------------

@pytest.mark.parametrize("typed", ["\r", "a\nb", "\x1b[2J", "x\u2028y", "\u202eevil", "\udcff"])
def test_error_messages_quote_input_as_one_printable_line(typed: str) -> None:
    from tui_csr.core.keyspec import parse_key_spec

    with pytest.raises(InputError) as info:
        parse_key_spec(typed)
    check_refusal(info.value)
    text = str(info.value)  # what the CLI prints and the dialogs show
    assert not unsafe_characters(text)
    assert text.encode("utf-8")  # no lone surrogate left: it can be printed and logged
    assert printable(typed) in text


def test_printable_leaves_ordinary_text_alone() -> None:
    assert printable("Jörg Müller, 東京 😀 \xa0x") == "Jörg Müller, 東京 😀 \xa0x"
    assert str(TuiCsrError("a\tb", code="CKR_X")) == "a\\x09b (CKR_X)"


# -- group policy and description with characters that cannot be stored ------------------------

@pytest.mark.parametrize(("what", "value"), [("policy", "x\udcffy"), ("description", "a\x00b"),
                                             ("description", "two\nlines")])
def test_group_text_that_cannot_be_stored_is_an_input_error(what: str, value: str) -> None:
    with pytest.raises(InputError) as info:
        validate_text(value, what, what)
    assert info.value.field == what and "U+" in info.value.message
    assert validate_text("  web-policy \u00e9 ", what, what) == "web-policy \u00e9"


def test_label_refusal_names_the_character() -> None:
    with pytest.raises(InputError, match="U[+]00A0"):
        validate_label("a\xa0b")


# -- argparse: the value of --flag=-- became a list ---------------------------------------------

@pytest.mark.parametrize(("flags", "needle"), [
    (["--cn=--", "--dns=--"], "error: DNS name '--' is not valid"),
    (["--cn=x.example", "--group=--"], "error: Group '--' does not exist"),
    (["--dn=--"], "error: DN component 1"),
])
def test_double_dash_value_is_checked_like_any_other(tmp_path, capsys, flags, needle) -> None:
    from tui_csr import cli
    from tui_csr.config import current_user
    from tui_csr.core.models import Group
    from tui_csr.store.repo import Store

    Store.open(tmp_path).add_group(Group(GROUP, created_by=current_user()))
    code = cli.main(["generate", "--key-spec=P-256", f"--data-dir={tmp_path}", "--group=Web",
                     *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(needle) and len(err.splitlines()) == 1, err


def test_default_label_of_a_cn_with_spaces_at_its_ends_is_a_valid_label() -> None:
    """Regression (fuzzer): CN '\\ 0' (a leading escaped space) gave the label ' 0-<date>',
    which validate_label itself would refuse."""
    from datetime import date

    from tui_csr.core.dn import parse_dn
    from tui_csr.service import default_label

    for text in (r"CN=\ 0", r"CN=x\ ", r"CN=\  \ "):
        label = default_label(parse_dn(text), date(2026, 1, 2))
        assert label == validate_label(label), label
    assert default_label(parse_dn(r"CN=\ 0"), date(2026, 1, 2)) == "0-2026-01-02"
    assert default_label(parse_dn(r"CN=\  \ "), date(2026, 1, 2)) == "key-2026-01-02"
