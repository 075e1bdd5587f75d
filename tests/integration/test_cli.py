"""The CLI contract on the real token: exit codes, `error:` lines, nothing left on the token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import GROUP, Cli
from tui_csr.service import CsrService


def test_generate_json_contract(cli: Cli, tmp_path: Path) -> None:
    r = cli("generate", "--key-spec", "prime256v1", "--cn", "api.example.com", "--o", "Example",
            "--c", "us", "--email", "pki@example.com", "--dns", "api.example.com",
            "--group", "web", "--owner", "alice", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    for key in ("id", "label", "subject", "key_spec", "hash", "groups", "owner", "status",
                "created", "pkcs11_uri", "csr_pem"):
        assert key in doc
    assert doc["subject"] == "CN=api.example.com,O=Example,C=US"
    assert doc["key_spec"] == "P-256" and doc["hash"] == "SHA256"
    assert doc["groups"] == [GROUP] and doc["owner"] == "alice" and doc["status"] == "pending"
    assert doc["pkcs11_uri"].startswith("pkcs11:token=test;object=api.example.com-")
    assert x509.load_pem_x509_csr(doc["csr_pem"].encode()).is_signature_valid
    listed = json.loads(cli("list", "--json").out)
    assert [d["id"] for d in listed] == [doc["id"]]
    assert cli("show", doc["id"][:8], "--pem").out == doc["csr_pem"]
    text = cli("show", doc["label"], "--text").out
    assert "Subject: CN=api.example.com,O=Example,C=US" in text
    assert "Signature: valid" in text and "email: pki@example.com" in text
    der_path = tmp_path / "req.der"
    assert cli("show", doc["id"], "--der", "--out", str(der_path)).code == 0
    assert x509.load_der_x509_csr(der_path.read_bytes()).is_signature_valid
    # No silent overwrite.
    again = cli("show", doc["id"], "--der", "--out", str(der_path))
    assert again.code == 2 and again.err.startswith("error:") and "--force" in again.err


def test_generate_out_pem_and_der(cli: Cli, tmp_path: Path) -> None:
    pem_path, der_path = tmp_path / "a.csr", tmp_path / "b.der"
    assert cli("generate", "--key-spec", "P-384", "--cn", "a", "--group", GROUP,
               "--out", str(pem_path)).code == 0
    assert x509.load_pem_x509_csr(pem_path.read_bytes()).is_signature_valid
    r = cli("generate", "--key-spec", "P-384", "--cn", "b", "--group", GROUP, "--der",
            "--out", str(der_path))
    assert r.code == 0, r.err
    assert x509.load_der_x509_csr(der_path.read_bytes()).is_signature_valid


INVALID = [
    (["--key-spec", "RSA1024", "--cn", "x"], "key spec"),
    (["--key-spec", "P-192", "--cn", "x"], "key spec"),
    (["--key-spec", "P-256", "--hash", "SHA1", "--cn", "x"], "hash"),
    (["--key-spec", "P-256", "--hash", "MD5", "--cn", "x"], "hash"),
    (["--key-spec", "P-256", "--pss", "--cn", "x"], "pss"),
    (["--key-spec", "P-256", "--dn",
      "CN=Example Certificate, O-ABC Corp,OU-ABC Department,L=Independence,ST=Ohio C=US"],
     "'O-ABC Corp' is not TYPE=value"),
    (["--key-spec", "P-256", "--o", "no cn"], "CN is required"),
    (["--key-spec", "P-256", "--cn", "x" * 65], "CN"),
    (["--key-spec", "P-256", "--cn", "x", "--c", "XX"], "ISO 3166"),
    (["--key-spec", "P-256", "--dn", "CN=x,E=a@b.example"], "Unknown attribute type"),
    (["--key-spec", "P-256", "--cn", "x", "--email", "not-an-email"], "Email"),
    (["--key-spec", "P-256", "--cn", "x", "--email", "jörg@example.com"], "Email"),
    (["--key-spec", "P-256", "--cn", "x", "--email", "a@b.example", "--email", "a@b.example"],
     "twice"),
    (["--key-spec", "P-256", "--cn", "x", "--dns", "bad..example"], "DNS"),
    (["--key-spec", "P-256", "--cn", "x", "--ip", "300.1.1.1"], "IP"),
    (["--key-spec", "P-256", "--cn", "x", "--uri", "no scheme"], "URI"),
    (["--key-spec", "P-256", "--cn", "x", "--group", "Nope"], "Group 'Nope' does not exist"),
    (["--key-spec", "P-256", "--cn", "x", "--group", GROUP, "--owner", "bad owner;rm"], "Owner"),
    (["--cn", "x"], "--key-spec is required"),
]


@pytest.mark.parametrize(("args", "needle"), INVALID, ids=[n for _, n in INVALID])
async def test_invalid_input_exits_2_and_leaves_token_unchanged(
        cli: Cli, service: CsrService, args: list[str], needle: str) -> None:
    before = await service.token.object_count()
    if "--group" not in args and "--key-spec" in args:
        args = [*args, "--group", GROUP]
    r = cli("generate", *args)
    assert r.code == 2, (r.code, r.err)
    assert r.err.startswith("error:") and len(r.err.strip().splitlines()) == 1
    assert needle.lower() in r.err.lower()
    assert "Traceback" not in r.err
    assert await service.token.object_count() == before
    assert json.loads(cli("list", "--json").out) == []


async def test_object_count_sees_cli_keys(cli: Cli, service: CsrService) -> None:
    """Guards the test above: the in-process count does see keys another process made."""
    before = await service.token.object_count()
    r = cli("generate", "--key-spec", "P-256", "--cn", "seen", "--group", GROUP, "--json")
    assert r.code == 0, r.err
    assert await service.token.object_count() == before + 2  # public, private (no marker)
    assert cli("delete", json.loads(r.out)["id"], "--yes").code == 0
    assert await service.token.object_count() == before


def test_no_group_at_all_refuses_before_any_key(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", "Web",
            extra_env={"TUI_CSR_DATA_DIR": str(empty)})
    assert r.code == 2 and "administrator must create one" in r.err


def test_delete_needs_yes_then_destroys(cli: Cli, service) -> None:
    doc = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "del", "--group", GROUP,
                         "--json").out)
    r = cli("delete", doc["id"])
    assert r.code == 2 and "destroys its private key" in r.err
    assert cli("delete", doc["id"], "--yes").code == 0
    assert json.loads(cli("list", "--json").out) == []
    r = cli("delete", doc["id"], "--yes")
    assert r.code == 2 and "error:" in r.err


def test_wrong_pin(cli: Cli) -> None:
    r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP, pin="000000")
    assert r.code == 1
    assert r.err.startswith("error: Wrong PIN for token 'test'.")
    assert r.err.rstrip().endswith("(CKR_PIN_INCORRECT)")
    assert "000000" not in r.err


def test_unknown_token_lists_labels(cli: Cli) -> None:
    r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP, "--token", "nope")
    assert r.code == 1
    assert "No token with label 'nope'" in r.err and "'test'" in r.err and "'other'" in r.err
    assert "CKR_TOKEN_NOT_PRESENT" in r.err


def test_missing_module(cli: Cli, tmp_path: Path) -> None:
    r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP,
            "--module", str(tmp_path / "nope.so"))
    assert r.code == 2 and f"PKCS#11 module {tmp_path / 'nope.so'} does not exist." in r.err


def test_file_that_is_not_a_module(cli: Cli, tmp_path: Path) -> None:
    fake = tmp_path / "fake.so"
    fake.write_text("not an ELF file")
    r = cli("generate", "--key-spec", "P-256", "--cn", "x", "--group", GROUP,
            "--module", str(fake))
    assert r.code == 2 and f"{fake} is not a PKCS#11 module" in r.err
    assert "Traceback" not in r.err


def test_pin_file_and_prompt_refusal(cli: Cli, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(cli.token.pin + "\n")
    r = cli("generate", "--key-spec", "P-256", "--cn", "pf", "--group", GROUP,
            "--pin-file", str(pin_file), pin=None)
    assert r.code == 0, r.err
    r = cli("generate", "--key-spec", "P-256", "--cn", "np", "--group", GROUP, pin=None)
    assert r.code == 2 and "No PIN given" in r.err


def test_groups_admin_only(cli: Cli) -> None:
    assert cli("groups", "add", "Mail", "--policy", "smime").code == 0
    listed = json.loads(cli("groups", "list", "--json").out)
    assert {g["name"] for g in listed} == {"Web", "Mail"}
    other = {"TUI_CSR_ADMINS": "someone-else"}
    for args in (("add", "X"), ("rename", "Mail", "Mail2"), ("remove", "Mail")):
        r = cli("groups", *args, extra_env=other)
        assert r.code == 1 and "Only an administrator" in r.err, r.err
    assert cli("groups", "list", extra_env=other).code == 0
    assert cli("groups", "rename", "Mail", "S/MIME").code == 0
    # The policy names the built-in smime profile: it needs an e-mail SAN.
    doc = json.loads(cli("generate", "--key-spec", "P-256", "--cn", "g", "--group", "s/mime",
                         "--email", "g@example.com", "--json").out)
    assert doc["groups"] == ["S/MIME"]
    r = cli("groups", "remove", "S/MIME")
    assert r.code == 2 and "still holds 1 request" in r.err
    assert cli("delete", doc["id"], "--yes").code == 0
    assert cli("groups", "remove", "S/MIME").code == 0


def test_two_processes_generating_at_once_lose_nothing(cli: Cli) -> None:
    """Two CLI processes, each making 4 requests, on one store and one token."""
    script = (
        "import sys\n"
        "from tui_csr.cli import main\n"
        "for i in range(4):\n"
        "    rc = main(['generate','--key-spec','P-256','--cn',f'{sys.argv[1]}-{i}',"
        "'--group','Web','--label',f'{sys.argv[1]}-{i}'])\n"
        "    assert rc == 0\n")
    env = {**cli.env, "TUI_CSR_PIN": cli.token.pin}
    procs = [subprocess.Popen([sys.executable, "-c", script, name], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    listed = json.loads(cli("list", "--json").out)
    assert sorted(d["label"] for d in listed) == [f"{n}-{i}" for n in "ab" for i in range(4)]
    assert len({d["key_id"] for d in listed}) == 8


def test_killed_mid_write_leaves_a_readable_store(tmp_path: Path) -> None:
    """SIGKILL a generating loop at several moments: the store always opens afterwards.

    On a token of its own: a kill that lands while SoftHSM writes an object file can leave that
    object unreadable, which must not spill into the tests sharing the session token."""
    from tests.reliability.conftest import make_private_token

    own = make_private_token(tmp_path / "own", label="killed")
    script = (
        "from tui_csr.cli import main\n"
        "i = 0\n"
        "while True:\n"
        "    main(['generate','--key-spec','P-256','--cn',f'k{i}','--group','Web'])\n"
        "    i += 1\n")
    env = {**own.env, "TUI_CSR_PIN": own.token.pin}
    for delay in (0.9, 1.3, 1.7):
        proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)  # let it run: the kill lands at an arbitrary point of its loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        r = own.cli("list", "--json")
        assert r.code == 0, r.err
        json.loads(r.out)
    after = own.cli("generate", "--key-spec", "P-256", "--cn", "after", "--group", GROUP,
                    pin=own.token.pin)
    assert after.code == 0, after.err
