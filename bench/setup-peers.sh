#!/usr/bin/env bash
# The peer tools the benchmark compares tui-csr with, installed only when missing:
#   gnutls-bin (p11tool, certtool), opensc (pkcs11-tool), openssl: scripts/system-deps.sh has them;
#   pkcs11-provider (openssl 3 <-> PKCS#11): not in Debian 12 main, so from bookworm-backports.
# Root or password-less sudo is needed to install; without it the bench measures the peers it
# finds and says which one it could not run. Never fails the bench: exit 0 either way.
set -uo pipefail

have_provider() {
  local f
  for f in /usr/lib/*/ossl-modules/pkcs11.so /usr/lib64/ossl-modules/pkcs11.so; do
    [ -e "$f" ] && return 0
  done
  return 1
}
have_provider && exit 0

if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "bench: pkcs11-provider is not installed and there is no root access to install it;" \
       "openssl + pkcs11-provider will not be measured." >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "bench: pkcs11-provider comes from bookworm-backports here; this is not Debian 12" \
       "with apt: openssl + pkcs11-provider will not be measured." >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
list=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "bench: adding bookworm-backports to apt ($list) for pkcs11-provider" >&2
  printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
    'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
    | "${run[@]}" tee "$list" >/dev/null
fi
if "${run[@]}" apt-get update -qq >/dev/null 2>&1 \
   && "${run[@]}" apt-get install -y -qq --no-install-recommends -t bookworm-backports \
        pkcs11-provider >/dev/null 2>&1 && have_provider; then
  echo "bench: installed pkcs11-provider from bookworm-backports" >&2
else
  echo "bench: pkcs11-provider could not be installed from bookworm-backports;" \
       "openssl + pkcs11-provider will not be measured." >&2
fi
exit 0
