"""What an admin would type instead of tui-csr: key pair on the token, then a CSR signed by it.

- openssl 3 + pkcs11-provider: ``openssl genpkey`` (the key made by the token) then
  ``openssl req``;
- GnuTLS: ``p11tool --generate-privkey`` then ``certtool --generate-request``;
- OpenSC: ``pkcs11-tool --keypairgen`` then ``openssl req`` (the key reached through
  pkcs11-provider).

Each request carries what the tui-csr runs carry: CN, O, C and one DNS SAN, SHA-256.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from bench.common import PIN, Token, run

PROVIDER_PATHS = ("/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so",
                  "/usr/lib/aarch64-linux-gnu/ossl-modules/pkcs11.so",
                  "/usr/lib64/ossl-modules/pkcs11.so")


def provider_path() -> str | None:
    """pkcs11-provider's module, if installed."""
    return next((p for p in PROVIDER_PATHS if os.path.exists(p)), None)


def openssl_env(token: Token) -> dict[str, str]:
    """An OPENSSL_CONF that loads pkcs11-provider on ``token`` (with the quirks SoftHSM needs:
    without them ``genpkey`` segfaults after writing the key)."""
    folder = token.folder / "openssl"
    folder.mkdir(exist_ok=True)
    pin_file = folder / "pin"
    pin_file.write_text(PIN)
    os.chmod(pin_file, 0o600)
    conf = folder / "openssl.cnf"
    conf.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n"
        "[default_sect]\nactivate = 1\n"
        f"[pkcs11_sect]\nmodule = {provider_path()}\npkcs11-module-path = {token.module}\n"
        f"pkcs11-module-token-pin = file:{pin_file}\n"
        "pkcs11-module-quirks = no-deinit no-operation-state\n"
        "pkcs11-module-encode-provider-uri-to-pem = true\nactivate = 1\n")
    return {**token.env, "OPENSSL_CONF": str(conf)}


def _subject(cn: str) -> str:
    return f"/CN={cn}/O=Bench Ltd/C=GB"


def openssl_provider(token: Token, spec: str, n: int, out: Path) -> None:
    """``openssl genpkey`` on the token via pkcs11-provider, then ``openssl req``."""
    env = openssl_env(token)
    label, cn = f"ossl-{n}-{secrets.token_hex(3)}", f"ossl{n}.bench.example.com"
    alg = (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] if spec == "P-256"
           else ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    key = out / f"{label}.uri.pem"
    run(["openssl", "genpkey", "-propquery", "provider=pkcs11", *alg, "-pkeyopt",
         f"pkcs11_uri:pkcs11:token={token.label};object={label}", "-out", str(key)], env)
    run(["openssl", "req", "-new", "-key", str(key), "-subj", _subject(cn), "-addext",
         f"subjectAltName=DNS:{cn}", "-sha256", "-out", str(out / f"{label}.csr")], env)


def gnutls(token: Token, spec: str, n: int, out: Path) -> None:
    """``p11tool --generate-privkey`` then ``certtool --generate-request``."""
    env = {**token.env, "GNUTLS_PIN": PIN}
    label, cn = f"gnutls-{n}-{secrets.token_hex(3)}", f"gnutls{n}.bench.example.com"
    alg = (["--generate-privkey=ecdsa", "--curve=secp256r1"] if spec == "P-256"
           else ["--generate-privkey=rsa", "--bits=2048"])
    run(["p11tool", "--provider", token.module, "--login", *alg, f"--label={label}",
         "--outfile", os.devnull, f"pkcs11:token={token.label}"], env)
    template = out / f"{label}.cfg"
    template.write_text(f'cn = "{cn}"\norganization = "Bench Ltd"\ncountry = "GB"\n'
                        f'dns_name = "{cn}"\n')
    uri = f"pkcs11:token={token.label};object={label}"
    run(["certtool", "--provider", token.module, "--generate-request",
         "--load-privkey", f"{uri};type=private", "--load-pubkey", f"{uri};type=public",
         "--template", str(template), "--hash", "SHA256",
         "--outfile", str(out / f"{label}.csr")], env)


def opensc(token: Token, spec: str, n: int, out: Path) -> None:
    """``pkcs11-tool --keypairgen`` then ``openssl req`` with the key through pkcs11-provider."""
    env = openssl_env(token)
    label, cn = f"opensc-{n}-{secrets.token_hex(3)}", f"opensc{n}.bench.example.com"
    key_type = "EC:prime256v1" if spec == "P-256" else "rsa:2048"
    run(["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
         "--pin", PIN, "--keypairgen", "--key-type", key_type, "--label", label,
         "--id", secrets.token_hex(20)], env)
    run(["openssl", "req", "-new", "-key",
         f"pkcs11:token={token.label};object={label};type=private", "-subj", _subject(cn),
         "-addext", f"subjectAltName=DNS:{cn}", "-sha256",
         "-out", str(out / f"{label}.csr")], env)


Peer = Callable[[Token, str, int, Path], None]


def available() -> tuple[dict[str, Peer], list[str]]:
    """The peers that can run here, and a sentence for each that cannot."""
    peers: dict[str, Peer] = {}
    missing: list[str] = []
    have_provider = provider_path() is not None and shutil.which("openssl") is not None
    if have_provider:
        peers["openssl+pkcs11-provider"] = openssl_provider
    else:
        missing.append("openssl+pkcs11-provider: pkcs11-provider is not installed "
                       "(bookworm-backports; bench/setup.sh installs it as root)")
    if shutil.which("p11tool") and shutil.which("certtool"):
        peers["p11tool+certtool"] = gnutls
    else:
        missing.append("p11tool+certtool: install gnutls-bin")
    if shutil.which("pkcs11-tool") and have_provider:
        peers["pkcs11-tool+openssl"] = opensc
    else:
        missing.append("pkcs11-tool+openssl: needs opensc and pkcs11-provider for openssl req")
    return peers, missing
