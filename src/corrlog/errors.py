"""The exception tree: every error corrlog reports to a user derives from CorrlogError."""

from __future__ import annotations

import sqlite3


class CorrlogError(Exception):
    """Root of corrlog's errors; the CLI prints its message as one line."""

    exit_code = 1


class ConfigError(CorrlogError):
    """The configuration is missing or invalid."""

    exit_code = 2


class UsageError(CorrlogError):
    """The user asked for something malformed (a bad query, an unknown id)."""

    exit_code = 2


class QueryError(UsageError):
    """A search query could not be parsed."""


class SourceError(CorrlogError):
    """A source (IMAP account, Maildir, notes folder) could not be read."""

    exit_code = 3


class AuthError(SourceError):
    """A server refused the credentials."""


class ConnectError(SourceError):
    """A server could not be reached or the connection broke."""


class RecordError(CorrlogError):
    """One item could not be parsed; skip or quarantine it and go on."""


class IndexingError(CorrlogError):
    """The search index could not be opened, read or written."""


class IntegrityError(CorrlogError):
    """The archive or the ledger failed verification."""

    exit_code = 1


class LockError(CorrlogError):
    """Another corrlog process holds the write lock."""

    exit_code = 4


def error_line(message: str) -> str:
    """The one line the CLI prints on stderr for an error (no newline)."""
    return f"corrlog: error: {message}"


def describe(exc: CorrlogError | sqlite3.Error | OSError) -> tuple[str, int]:
    """What the CLI says about an error that ends a command, and its exit code."""
    if isinstance(exc, CorrlogError):
        return str(exc), exc.exit_code
    if isinstance(exc, sqlite3.Error):
        return f"the database failed: {exc}; run 'corrlog doctor'", 1
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}", 1
