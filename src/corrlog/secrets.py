"""Secrets for sources: a password from the config, a file or a command; never logged."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydantic import SecretStr

from corrlog.errors import AuthError
from corrlog.logging import get_logger, register_secret

_COMMAND_TIMEOUT = 60.0


def run_secret_command(command: list[str], what: str) -> str:
    """Run a command without a shell and return its trimmed stdout (its output is never shown)."""
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise AuthError(f"{what}: command {command[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise AuthError(
            f"{what}: command {command[0]!r} did not finish in {_COMMAND_TIMEOUT:.0f}s"
        ) from None
    if proc.returncode != 0:
        raise AuthError(f"{what}: command {command[0]!r} failed with exit code {proc.returncode}")
    value = proc.stdout.decode("utf-8", "replace").strip()
    if not value:
        raise AuthError(f"{what}: command {command[0]!r} printed nothing")
    register_secret(value)
    return value


def read_secret_file(path: Path, what: str) -> str:
    """The trimmed contents of a secret file (a warning when others may read it)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            get_logger().warning(
                "password file is readable by other users; run chmod 600 on it",
                what=what,
                path=str(path),
            )
    except OSError:
        pass
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuthError(f"{what}: cannot read password_file {path}: {exc.strerror}") from None
    if not value:
        raise AuthError(f"{what}: password_file {path} is empty")
    register_secret(value)
    return value


def reveal(secret: SecretStr) -> str:
    """The plain value of a configured secret, registered for redaction first."""
    value = secret.get_secret_value()
    register_secret(value)
    return value
