"""The SQLite database: connection settings and the schema (ledger, cursors, derived state)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from corrlog.errors import CorrlogError

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    event     TEXT NOT NULL,
    sha256    TEXT,
    origin    TEXT,
    detail    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_sha ON ledger(sha256);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- schema 3: the last ledger entry a check re-hashed, and when every entry last was (one row).
CREATE TABLE IF NOT EXISTS ledger_checked (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    TEXT NOT NULL,
    full_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS note_files (
    path     TEXT PRIMARY KEY,
    source   TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS records (
    id         TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL,
    source     TEXT NOT NULL,
    origin     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    direction  TEXT NOT NULL,
    date       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    client     TEXT,
    contract   TEXT,
    milestone  TEXT,
    link_rule  TEXT,
    message_id TEXT,
    thread     TEXT,
    quarantine TEXT,
    indexed    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_msgid ON records(message_id);

CREATE TABLE IF NOT EXISTS origins (
    record_id  TEXT NOT NULL,
    origin_key TEXT NOT NULL,
    origin     TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (record_id, origin_key)
);
CREATE INDEX IF NOT EXISTS origins_key ON origins(origin_key);

CREATE TABLE IF NOT EXISTS imap_cursors (
    account     TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    patterns    TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (account, folder, uidvalidity)
);

CREATE TABLE IF NOT EXISTS maildir_files (
    source   TEXT NOT NULL,
    key      TEXT NOT NULL,
    folder   TEXT NOT NULL,
    captured INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

-- Maildir `cur`/`new` directories as last fully read: unchanged ones are not listed again.
CREATE TABLE IF NOT EXISTS maildir_dirs (
    source   TEXT NOT NULL,
    dir      TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (source, dir)
);

CREATE TABLE IF NOT EXISTS flags (
    contract    TEXT NOT NULL,
    name        TEXT NOT NULL,
    milestone   TEXT NOT NULL DEFAULT '',
    since       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    notified_at TEXT,
    PRIMARY KEY (contract, name, milestone)
);

CREATE TABLE IF NOT EXISTS contract_snapshots (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS snoozes (
    contract TEXT PRIMARY KEY,
    until    TEXT NOT NULL,
    reason   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS manual_links (
    record_id TEXT PRIMARY KEY,
    contract  TEXT NOT NULL,
    milestone TEXT
);

CREATE TABLE IF NOT EXISTS source_patterns (
    source   TEXT PRIMARY KEY,
    patterns TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_sha ON records(sha256);
DROP INDEX IF EXISTS records_pending;  -- schema 1: did not cover indexed = -1
CREATE INDEX IF NOT EXISTS records_unindexed ON records(indexed) WHERE indexed IN (0, -1);

CREATE TABLE IF NOT EXISTS contracts (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    defined_by TEXT NOT NULL
);
"""

DERIVED_TABLES = ("records", "contracts", "origins")

# The ledger's append-only triggers as SQLite stores them (in sqlite_master), by name.
LEDGER_TRIGGERS = {
    name: f"CREATE TRIGGER {name} BEFORE {verb} ON ledger\n"
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
    for name, verb in (("ledger_no_delete", "DELETE"), ("ledger_no_update", "UPDATE"))
}


class DatabaseError(CorrlogError):
    """The state database could not be opened or is damaged."""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create or migrate) the database; WAL so readers never block the writer."""
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # REPLACE deletes the row it replaces: without this, silently past the ledger's
        # delete trigger.
        conn.execute("PRAGMA recursive_triggers=ON")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"cannot open the database {path}: {exc}; run 'corrlog doctor' or restore it from a backup"
        ) from None
    conn.row_factory = sqlite3.Row
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"database schema {version} is newer than this corrlog ({SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
