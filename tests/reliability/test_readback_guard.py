"""The read-back guard: a token that does not make the private key as asked (here one that
ignores EXTRACTABLE=false) must see the pair destroyed and the request refused.

SoftHSM honours the template, so the faulty token is a stand-in one level below tui-csr's own
token code: python-pkcs11's token object, whose sessions generate the real key pair on SoftHSM
but with CKA_EXTRACTABLE=true in the private template, as a careless HSM would. Everything above
it (Pkcs11Token, the token thread, the service, the CLI) is the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.conftest import GROUP, make_private_token
from tests.reliability.test_token_faults import object_count, one_sentence

_IGNORES_EXTRACTABLE = """
import sys
from pkcs11 import Attribute
from tui_csr.cli import main
from tui_csr.hsm.token import Pkcs11Token

def careless(template):
    template = dict(template or {})
    template[Attribute.EXTRACTABLE] = True  # what the token does, whatever it was asked
    return template

class Through:
    def __init__(self, real):
        self._real = real
    def __getattr__(self, name):
        return getattr(self._real, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self._real.__exit__(*exc)

class Params(Through):
    def generate_keypair(self, *args, private_template=None, **kwargs):
        return self._real.generate_keypair(*args, private_template=careless(private_template),
                                           **kwargs)

class Session(Through):
    def generate_keypair(self, *args, private_template=None, **kwargs):
        return self._real.generate_keypair(*args, private_template=careless(private_template),
                                           **kwargs)
    def create_domain_parameters(self, *args, **kwargs):
        return Params(self._real.create_domain_parameters(*args, **kwargs))

class Token(Through):
    def open(self, *args, **kwargs):
        return Session(self._real.open(*args, **kwargs))

real_open = Pkcs11Token.open
def open_(self, *args, **kwargs):
    info = real_open(self, *args, **kwargs)
    self._token = Token(self._token)
    return info
Pkcs11Token.open = open_
sys.exit(main(sys.argv[1:]))
"""


def test_a_key_the_token_made_extractable_is_destroyed_and_refused(tmp_path: Path) -> None:
    tok = make_private_token(tmp_path / "own")
    before = object_count(tok)
    for spec in ("P-256", "RSA2048"):
        run = tok.python(_IGNORES_EXTRACTABLE, "generate", "--key-spec", spec, "--cn",
                         "careless.example", "--group", GROUP, pin=tok.token.pin)
        line = one_sentence(run, 1, "did not make the private key as asked", "EXTRACTABLE=True",
                            "the key pair was destroyed")
        assert "(CKR_TEMPLATE_INCONSISTENT)" in line
        # Nothing of it stays: not on the token, not in the store.
        assert object_count(tok) == before
        listed = tok.cli("list", "--json")
        assert listed.code == 0 and json.loads(listed.out) == [], listed.err


def test_the_stand_in_changes_nothing_but_the_template(tmp_path: Path) -> None:
    """Control: the same stand-in passes a generation through when the guard has nothing to
    refuse, so the refusal above comes from the read-back, not from the stand-in breaking."""
    tok = make_private_token(tmp_path / "own")
    before = object_count(tok)
    code = _IGNORES_EXTRACTABLE.replace("template[Attribute.EXTRACTABLE] = True",
                                        "template[Attribute.EXTRACTABLE] = False")
    assert code != _IGNORES_EXTRACTABLE
    run = tok.python(code, "generate", "--key-spec", "P-256", "--cn", "fine.example", "--group",
                     GROUP, "--json", pin=tok.token.pin)
    assert run.code == 0, run.err
    assert json.loads(run.out)["label"]
    assert object_count(tok) == before + 2  # the public and the private key
    assert [r["label"] for r in json.loads(tok.cli("list", "--json").out)] == [
        json.loads(run.out)["label"]]
