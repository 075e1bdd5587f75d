"""Short commands import only what they use (issue 7: start-up). No timings: which modules load."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.conftest import GROUP, Cli

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
commands = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("tui_csr.cli.commands."))
print(json.dumps({"code": code, "loaded": loaded, "commands": commands}), file=sys.stderr)
"""


def probe(cli: Cli, *args: str, pin: str | None = None) -> dict:
    code = PROBE.replace("HEAVY", repr(json.dumps(HEAVY)))
    env = cli.env if pin is None else {**cli.env, "TUI_CSR_PIN": pin}
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, text=True,
                          capture_output=True, timeout=60, check=False)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_version_imports_nothing_heavy(cli: Cli) -> None:
    assert probe(cli, "--version") == {"code": 0, "loaded": [], "commands": []}


def test_list_json_needs_neither_the_ui_nor_the_token(cli: Cli) -> None:
    result = probe(cli, "list", "--json")
    assert result["code"] == 0
    assert not {"textual", "pkcs11", "cryptography", "email_validator"} & set(result["loaded"])


def test_a_command_imports_its_own_module_only(cli: Cli) -> None:
    """The parser is built for the one sub-command named (importing all 19 command modules
    cost ~10 ms of every start); options before it are skipped with their values."""
    result = probe(cli, "--data-dir", str(cli.env["TUI_CSR_DATA_DIR"]), "list", "--json")
    assert result["code"] == 0
    assert result["commands"] == ["list_"]
    # No command named: the full parser (its --help and its message for an unknown command).
    assert len(probe(cli, "no-such-command")["commands"]) == 19


def test_generate_imports_what_it_uses(cli: Cli) -> None:
    result = probe(cli, "generate", "--key-spec", "P-256", "--cn", "imports.example",
                   "--group", GROUP, pin=cli.token.pin)
    assert result["code"] == 0
    assert result["commands"] == ["generate"]
    # Neither the TUI nor the e-mail checker (no e-mail address in this request).
    assert not {"textual", "email_validator"} & set(result["loaded"])
