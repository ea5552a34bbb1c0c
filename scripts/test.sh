#!/usr/bin/env bash
# Set up and run the whole test suite: Dovecot for the IMAP tests, lint, types, pytest.
# Called by `make test` (after the venv is installed) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

bash scripts/ensure-dovecot.sh
bash scripts/ensure-test-tools.sh

echo "== ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .

echo "== mypy (strict, src)"
"$BIN/mypy"

echo "== pytest"
set +e
"$BIN/pytest" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing (exit 5 must never pass)" >&2
    exit 1
fi
exit "$status"
