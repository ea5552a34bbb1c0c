#!/usr/bin/env bash
# Set up corrlog on the default config and start the daemon in the foreground.
# Creates ~/.config/corrlog/corrlog.toml and the data folders when missing (never overwrites);
# the default config reads a notes folder and a local Maildir under the data dir, and IMAP
# accounts once you add [[imap]] tables. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/corrlog" init
echo "Starting the daemon (Ctrl-C to stop). In another terminal: $BIN/corrlog search WORDS"
exec "$BIN/corrlog" run
