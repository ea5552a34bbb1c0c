#!/usr/bin/env bash
# Make sure Dovecot's IMAP server (and openssl) are installed for the test suite.
#
# Idempotent: does nothing if /usr/sbin/dovecot and openssl already exist.
# The tests run their own throw-away Dovecot instance (tests/support/dovecot.py) on
# random loopback ports, so the system service installed by the package is stopped
# and disabled to keep it out of the way.
set -euo pipefail

DOVECOT=/usr/sbin/dovecot

log() { printf 'ensure-dovecot: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

if [ -x "$DOVECOT" ] && command -v openssl >/dev/null 2>&1; then
    log "dovecot already installed: $("$DOVECOT" --version 2>/dev/null || echo '?')"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "not root and sudo is not available; install dovecot-imapd and openssl manually"
fi

command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found; install dovecot-imapd and openssl with your package manager"

log "installing dovecot-imapd and openssl"
"${SUDO[@]}" apt-get update \
    || die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends dovecot-imapd openssl \
    || die "apt-get install dovecot-imapd openssl failed"

[ -x "$DOVECOT" ] || die "$DOVECOT is still missing after installation"
command -v openssl >/dev/null 2>&1 || die "openssl is still missing after installation"

# The package may have enabled/started a system-wide Dovecot listening on 143/993.
# The tests never use it; stop and disable it so it cannot interfere.
if command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl disable --now dovecot >/dev/null 2>&1 || true
fi
if [ -f /run/dovecot/master.pid ]; then
    pid=$(cat /run/dovecot/master.pid 2>/dev/null || true)
    if [ -n "${pid:-}" ] && "${SUDO[@]}" kill -0 "$pid" 2>/dev/null; then
        log "stopping the system dovecot started by the package (pid $pid)"
        "${SUDO[@]}" "$DOVECOT" stop >/dev/null 2>&1 || "${SUDO[@]}" kill "$pid" 2>/dev/null || true
    fi
fi

log "installed: $("$DOVECOT" --version 2>/dev/null || echo '?')"
