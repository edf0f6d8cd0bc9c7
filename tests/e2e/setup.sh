#!/usr/bin/env bash
# Installs what the browser tests need, once: Debian's Chromium (apt) and
# playwright-core (npm, pinned by package-lock.json). No browser downloads:
# playwright drives the system Chromium. Safe to run again; it does nothing
# when both are present.
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
    SUDO=(sudo -n)
  else
    echo "setup: $CHROMIUM is missing and I cannot install it (not root, no passwordless sudo)." >&2
    echo "setup: install Debian's chromium package, or set E2E_CHROMIUM to a Chromium binary." >&2
    exit 1
  fi
  echo "setup: installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium > /tmp/steward-apt.log 2>&1; then
    "${SUDO[@]}" apt-get update -q > /tmp/steward-apt.log 2>&1
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >> /tmp/steward-apt.log 2>&1 \
      || { tail -20 /tmp/steward-apt.log >&2; exit 1; }
  fi
fi

if ! command -v node > /dev/null; then
  echo "setup: node (18 or newer) is needed for the browser tests" >&2
  exit 1
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "setup: installing playwright-core with npm ci" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2
fi
