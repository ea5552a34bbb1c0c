#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed for the digest rendering test.
#
# Idempotent: does nothing if a chromium binary is already on PATH. The test
# (tests/test_digest.py) runs it with --headless --no-sandbox --disable-gpu to
# screenshot the HTML digest; it is skipped when no chromium can be found.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

found=$(find_chromium)
if [ -n "$found" ]; then
    log "chromium already installed: $("$found" --version 2>/dev/null || echo "$found")"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "not root and sudo is not available; install chromium manually"
fi

command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found; install chromium with your package manager"

log "installing chromium"
"${SUDO[@]}" apt-get update \
    || die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends chromium \
    || die "apt-get install chromium failed"

found=$(find_chromium)
[ -n "$found" ] || die "chromium is still missing after installation"
log "installed: $("$found" --version 2>/dev/null || echo "$found")"
