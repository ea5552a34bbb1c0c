#!/usr/bin/env bash
# Make sure the benchmark's peers are installed: notmuch and mu (Debian's
# `notmuch` and `maildir-utils` packages). Used by bench/run.py; not needed for
# the test suite.
#
# Idempotent: does nothing when both `notmuch` and `mu` are on PATH.
# Runs `apt-get update` before installing. Exit 0 when both are present afterwards.
set -euo pipefail

log() { printf 'ensure-bench-peers: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

missing=()
command -v notmuch >/dev/null 2>&1 || missing+=(notmuch)
command -v mu >/dev/null 2>&1 || missing+=(maildir-utils)

if [ "${#missing[@]}" -eq 0 ]; then
    log "notmuch $(notmuch --version 2>/dev/null | awk '{print $2}') and $(mu --version 2>/dev/null | head -n1) already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "not root and sudo is not available; install ${missing[*]} manually"
fi

command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found; install ${missing[*]} with your package manager"

log "installing ${missing[*]}"
"${SUDO[@]}" apt-get update || die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"

command -v notmuch >/dev/null 2>&1 || die "notmuch is still missing after installation"
command -v mu >/dev/null 2>&1 || die "mu is still missing after installation"
log "installed: notmuch $(notmuch --version 2>/dev/null | awk '{print $2}'), $(mu --version 2>/dev/null | head -n1)"
