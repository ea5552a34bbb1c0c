#!/usr/bin/env bash
# Install the other system tools the test suite uses when they are missing:
# systemd-analyze (unit verification) and Debian's chromium (rendering the HTML digest).
set -euo pipefail

log() { printf 'ensure-test-tools: %s\n' "$*" >&2; }

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v sha256sum >/dev/null 2>&1 || missing+=(coreutils)

if [ "${#missing[@]}" -eq 0 ]; then
    log "systemd-analyze, chromium and sha256sum present"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: need root or sudo to install ${missing[*]}"; exit 1; }
    SUDO=(sudo)
fi
log "installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
