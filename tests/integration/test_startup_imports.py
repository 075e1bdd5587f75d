"""Short commands import only what they use (issue 7: start-up). No timings: which modules load."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.conftest import Cli

HEAVY = ("asyncio", "textual", "pkcs11", "cryptography", "asn1crypto", "tinydb",
         "email_validator")

PROBE = """
import json, sys
from tui_csr import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def probe(cli: Cli, *args: str) -> dict:
    code = PROBE.replace("HEAVY", repr(json.dumps(HEAVY)))
    proc = subprocess.run([sys.executable, "-c", code, *args], env=cli.env, text=True,
                          capture_output=True, timeout=60, check=False)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_version_imports_nothing_heavy(cli: Cli) -> None:
    assert probe(cli, "--version") == {"code": 0, "loaded": []}


def test_list_json_needs_neither_the_ui_nor_the_token(cli: Cli) -> None:
    result = probe(cli, "list", "--json")
    assert result["code"] == 0
    assert not {"textual", "pkcs11", "cryptography", "email_validator"} & set(result["loaded"])
