#!/usr/bin/env bash
# Install the Debian/Ubuntu packages tui-csr needs, only when something is missing:
# directly as root, through sudo otherwise, else a clear message naming the packages.
# Usage: scripts/system-deps.sh [--test] [extra packages...]
#   --test: also the real back ends the test suite runs (tpm2-pkcs11, p11-kit, PostgreSQL).
set -euo pipefail

need=()
with_test=false
if [ "${1:-}" = "--test" ]; then
  with_test=true
  shift
fi
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool   >/dev/null 2>&1 || need+=(opensc)
command -v openssl       >/dev/null 2>&1 || need+=(openssl)
command -v p11tool       >/dev/null 2>&1 || need+=(gnutls-bin)
command -v rsvg-convert  >/dev/null 2>&1 || need+=(librsvg2-bin)
# Debian's python3 has no venv/ensurepip without python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# Real tokens besides SoftHSM for the test suite (tests/backends): tpm2-pkcs11 over swtpm with
# tpm2-abrmd on a private D-Bus bus, and SoftHSM forwarded by p11-kit server (p11-kit-client.so).
token_backends=()
if $with_test; then
  token_backends=(swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-tools tpm2-abrmd
                  libtss2-tcti-tabrmd0 dbus p11-kit p11-kit-modules postgresql
                  gcc libc6-dev)  # gcc: tests/integration/test_module_loading.py builds a module
fi
for extra in "${token_backends[@]}" "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra")
done

[ ${#need[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo -n)
elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
  run=(sudo)
else
  echo "error: tui-csr needs these Debian packages: ${need[*]}." >&2
  echo "       Install them as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install the equivalents of: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
