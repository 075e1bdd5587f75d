"""``tui-csr attestation check`` / ``import`` / ``ID --out``: exit statuses and what is said.

Run in-process through the real entry point (``tui_csr.cli.main.main``) over a store in a
temporary folder; the chains are the vendor-shaped fixtures of attestation_chains.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import pem
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.attestation_chains import (
    certs_only_bag,
    csr_pem,
    flip_signature,
    fortanix_response,
    luna_ecc_chain,
    luna_rsa_chain,
    new_key,
    request_for,
)
from tui_csr.cli.main import main
from tui_csr.cli.parser import build_parser
from tui_csr.store.repo import Store


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder and an empty configuration (attestation = "none")."""
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("TUI_CSR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TUI_CSR_CONFIG", str(config))
    return tmp_path


@pytest.fixture(scope="module")
def rsa():
    key = new_key("RSA")
    return key, luna_rsa_chain(key)


@pytest.fixture(scope="module")
def ecc():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, luna_ecc_chain(key)


def _files(folder: Path, key, chain: list[bytes], name: str) -> tuple[Path, Path, Path]:
    bag, csr, root = folder / f"{name}.p7b", folder / f"{name}.csr", folder / f"{name}-root.pem"
    bag.write_bytes(certs_only_bag(chain))
    csr.write_bytes(csr_pem(key))
    root.write_bytes(pem.armor("CERTIFICATE", chain[-1]))
    return bag, csr, root


def test_check_exits_0_names_the_root_and_the_hsm(env: Path, rsa, capsys) -> None:
    key, chain = rsa
    bag, csr, root = _files(env, key, chain, "rsa")
    code = main(["attestation", "check", str(bag), "--csr", str(csr), "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "ok   root: verified to Test Chrysalis-ITS Root (supplied, pinned key)." in out
    assert "HSM: model Luna K7, serial 521174, firmware 7.8.4" in out
    assert "ok   key: the key of PKC '41000000ae000002d6f30700' is the CSR's key" in out
    assert err == ""


def test_check_without_the_root_pinned_exits_1_root_unknown(env: Path, ecc, capsys) -> None:
    key, chain = ecc
    bag, csr, _root = _files(env, key, chain, "ecc")
    code = main(["attestation", "check", str(bag), "--csr", str(csr)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: attestation check failed: root: the root is unknown: MIC "
                          "'Test ECC Manufacturer Integrity Module'")
    assert "FAIL root:" in out and "ok   key:" in out


def test_check_altered_link_exits_1_naming_it(env: Path, rsa, capsys) -> None:
    key, chain = rsa
    bag, csr, root = _files(env, key, [chain[0], flip_signature(chain[1]), *chain[2:]], "bad")
    code = main(["attestation", "check", str(bag), "--csr", str(csr), "--root", str(root)])
    _out, err = capsys.readouterr()
    assert code == 1
    assert ("error: attestation check failed: chain: link fails: the signature on DAC "
            "'Luna K7-521174' by HOC 'Test Hardware Origin Certificate': the signature does "
            "not verify.") in err


def test_check_against_another_csr_exits_1_key_mismatch(env: Path, rsa, ecc, capsys) -> None:
    rsa_key, chain = rsa
    ecc_key, _ = ecc
    bag, _csr, root = _files(env, rsa_key, chain, "rsa")
    other = env / "other.csr"
    other.write_bytes(csr_pem(ecc_key))
    code = main(["attestation", "check", str(bag), "--csr", str(other), "--root", str(root)])
    _out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: attestation check failed: key: key mismatch: PKC "
                          "'41000000ae000002d6f30700' attests another key than the CSR's")


def test_check_against_a_stored_request_and_json(env: Path, ecc, capsys) -> None:
    import json

    key, chain = ecc
    bag, _csr, root = _files(env, key, chain, "ecc")
    store = Store.open(env / "data")
    request = request_for(key, label="ecc-web")
    store.add_request(request)
    code = main(["attestation", "check", str(bag), "--request", "ecc-web", "--root", str(root),
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and doc["against"] == "request 'ecc-web'"
    assert doc["hsm"]["serial"] == "521174" and doc["key"]["type"] == "EC P-256"
    assert [c["role"] for c in doc["chain"]] == ["PKC", "HOC", "MIC"]


@pytest.mark.parametrize(("argv", "message"), [
    (["attestation", "check", "{bag}"], "needs exactly one of --request ID or --csr CSR"),
    (["attestation", "check", "{bag}", "--csr", "{bag}"], "is not a PKCS#10"),
    (["attestation", "check", "{tmp}/missing.p7b", "--csr", "{csr}"], "cannot be read"),
    (["attestation", "check", "{csr}", "--csr", "{csr}"], "PEM blocks of type"),
    (["attestation", "check", "{bag}", "--csr", "{csr}", "--out", "x"],
     "--out does not apply to 'attestation check'"),
    (["attestation", "someid"], "attestation ID needs --out FILE"),
    (["attestation", "a", "b"], "attestation takes ID, 'check FILE' or 'import ID FILE'"),
    (["attestation", "check", "{bag}", "--csr", "{csr}", "--root", "{csr}"],
     "holds no PEM CERTIFICATE"),
])
def test_bad_input_exits_2_with_one_sentence(env: Path, ecc, capsys, argv, message) -> None:
    key, chain = ecc
    bag, csr, _root = _files(env, key, chain, "ecc")
    words = [a.format(bag=bag, csr=csr, tmp=env) for a in argv]
    code = main(words)
    _out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_both_forms_parse() -> None:
    """`attestation ID --out FILE` keeps working beside the check and import forms."""
    parser = build_parser()
    old = parser.parse_args(["attestation", "abc123", "--out", "a.p7b", "--force"])
    assert (old.words, old.out, old.force) == (["abc123"], "a.p7b", True)
    check = parser.parse_args(["attestation", "check", "f.p7b", "--csr", "x.csr"])
    assert (check.words, check.csr) == (["check", "f.p7b"], "x.csr")
    imp = parser.parse_args(["attestation", "import", "abc123", "f.json", "--root", "r.pem"])
    assert (imp.words, imp.root) == (["import", "abc123", "f.json"], ["r.pem"])


def test_import_checks_attaches_and_download_offers_it(env: Path, rsa, capsys) -> None:
    key, chain = rsa
    bag, _csr, root = _files(env, key, chain, "rsa")
    store = Store.open(env / "data")
    request = request_for(key, label="rsa-web", key_spec="RSA2048")
    store.add_request(request)

    # Without the root pinned the import is refused and nothing is stored.
    assert main(["attestation", "import", "rsa-web", str(bag)]) == 1
    assert "root is unknown" in capsys.readouterr().err
    assert store.get_request(request.id).attestation is None

    code = main(["attestation", "import", "rsa-web", str(bag), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "attached" in err
    assert store.get_request(request.id).attestation is not None
    assert [e.action for e in store.list_audit()][-1] == "attestation-import"

    # attestation = "none" and no token: the imported file is still offered, byte for byte.
    out = env / "saved.p7b"
    code = main(["attestation", "rsa-web", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert out.read_bytes() == bag.read_bytes()
    assert "Imported Thales Luna attestation" in err


def test_import_of_another_keys_attestation_is_refused(env: Path, rsa, ecc, capsys) -> None:
    _rsa_key, chain = rsa
    ecc_key, _ = ecc
    bag, _csr, root = _files(env, _rsa_key, chain, "rsa")
    store = Store.open(env / "data")
    request = request_for(ecc_key, label="ecc-web")
    store.add_request(request)
    assert main(["attestation", "import", "ecc-web", str(bag), "--root", str(root)]) == 1
    assert "key mismatch" in capsys.readouterr().err
    assert store.get_request(request.id).attestation is None


def test_import_fortanix_response_then_download(env: Path, capsys) -> None:
    key = new_key("EC")
    body, root_der = fortanix_response(key, kid="kid-42")
    (env / "resp.json").write_bytes(body)
    (env / "root.der").write_bytes(root_der)
    store = Store.open(env / "data")
    request = request_for(key, label="dsm-key")
    store.add_request(request)
    code = main(["attestation", "import", "dsm-key", str(env / "resp.json"), "--root",
                 str(env / "root.der")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "kid kid-42" in err
    out = env / "again.json"
    assert main(["attestation", "dsm-key", "--out", str(out)]) == 0
    assert out.read_bytes() == body


def test_import_of_an_unreadable_file_exits_2(env: Path, capsys) -> None:
    key = new_key("EC")
    store = Store.open(env / "data")
    request = request_for(key, label="ec-web")
    store.add_request(request)
    junk = env / "junk.bin"
    junk.write_bytes(b"not an attestation")
    assert main(["attestation", "import", "ec-web", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The attestation file is neither a PKCS#7")
    assert store.get_request(request.id).attestation is None
