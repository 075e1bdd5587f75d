"""The module is opened as python-pkcs11 and the other tools open it: ``dlopen(RTLD_LAZY)``.

tui-csr loads PKCS#11 modules itself (tui_csr/hsm/native.py). ``ctypes.CDLL`` always adds
RTLD_NOW, so a vendor module with a symbol that nothing resolves until a feature is used (an
optional dependency) would fail to load in tui-csr alone. The module built here forwards to the
real SoftHSM and has such a symbol; the test proves first that RTLD_NOW refuses it.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Cli

_WRAPPER = r"""
#include <dlfcn.h>
#include <stdlib.h>
typedef unsigned long CK_RV;
extern void vendor_optional_feature(void);  /* resolved by nothing: an optional dependency */
void only_with_the_option(void) { vendor_optional_feature(); }
CK_RV C_GetFunctionList(void **list) {
    void *real = dlopen(getenv("WRAPPED_MODULE"), RTLD_NOW | RTLD_LOCAL);
    CK_RV (*get)(void **) = real ? (CK_RV (*)(void **)) dlsym(real, "C_GetFunctionList") : 0;
    return get ? get(list) : 5; /* CKR_GENERAL_ERROR */
}
"""


@pytest.fixture(scope="module")
def lazy_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the test module")
    folder = tmp_path_factory.mktemp("lazy-module")
    (folder / "wrapper.c").write_text(_WRAPPER, encoding="ascii")
    so = folder / "vendor_pkcs11.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-Wl,-z,lazy", "-o", str(so),
                    str(folder / "wrapper.c"), "-ldl"], check=True, capture_output=True)
    return so


def test_a_module_with_a_lazily_resolved_symbol_loads(cli: Cli, lazy_module: Path) -> None:
    with pytest.raises(OSError, match="undefined symbol: vendor_optional_feature"):
        ctypes.CDLL(str(lazy_module))  # RTLD_NOW: the property the test is about
    env = {"TUI_CSR_MODULE": str(lazy_module), "WRAPPED_MODULE": cli.token.module}
    r = cli("tokens", "--json", extra_env=env, pin=None)
    assert r.code == 0, r.err
    labels = [t["label"] for t in json.loads(r.out)["tokens"]]
    assert cli.token.label in labels
    r = cli("generate", "--key-spec", "P-256", "--cn", "lazy.example", "--group", "Web",
            "--json", extra_env=env)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert cli("delete", doc["id"], "--yes", extra_env=env).code == 0
