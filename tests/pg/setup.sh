#!/usr/bin/env bash
# Installs what the PostgreSQL tests need, once: Debian's postgresql
# package (the server binaries; the tests start a private cluster of their
# own in a temporary directory, never the system's service). Safe to run
# again; it does nothing when the binaries are there.
set -euo pipefail

PACKAGES=()
if ! { ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || command -v initdb > /dev/null; }; then
  PACKAGES+=(postgresql)
fi
# The test cluster serves TLS with a certificate made by openssl.
if ! command -v openssl > /dev/null; then
  PACKAGES+=(openssl)
fi
if [ "${#PACKAGES[@]}" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
  SUDO=(sudo -n)
else
  echo "setup: ${PACKAGES[*]} missing and I cannot install it (not root, no passwordless sudo)." >&2
  echo "setup: install Debian's ${PACKAGES[*]} package to run the PostgreSQL tests." >&2
  exit 1
fi
echo "setup: installing ${PACKAGES[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" > /tmp/steward-apt-pg.log 2>&1; then
  "${SUDO[@]}" apt-get update -q > /tmp/steward-apt-pg.log 2>&1
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >> /tmp/steward-apt-pg.log 2>&1 \
    || { tail -20 /tmp/steward-apt-pg.log >&2; exit 1; }
fi
# The package starts the system's cluster; the tests do not use it.
