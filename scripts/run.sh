#!/usr/bin/env bash
# Set up corrlog on the default config and start it.
# Creates ~/.config/corrlog/corrlog.toml and the data folders when missing (never overwrites),
# then runs one sync of every configured source.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/corrlog" init
"$BIN/corrlog" sync
echo
echo "corrlog is set up. Search with:  $BIN/corrlog search WORDS"
echo "The background daemon (corrlog run) is not built yet; until it is, run"
echo "'$BIN/corrlog sync' from cron or a systemd timer to keep the archive current."
