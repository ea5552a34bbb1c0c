"""Derived state in SQLite: record metadata, note cursors and contracts (rebuilt by reindex)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from corrlog.db import DERIVED_TABLES
from corrlog.model import (
    Contract,
    ContractStatus,
    Direction,
    Escrow,
    Kind,
    Milestone,
    MilestoneStatus,
    Origin,
    Record,
    SourceKind,
)

# Served by the partial index records_unindexed (db.py): no scan of the whole table.
PENDING_SQL = "SELECT * FROM records WHERE indexed IN (0, -1) ORDER BY id"


class State:
    """Typed access to the tables that describe what is archived and indexed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # note cursors -------------------------------------------------------

    def note_cursor(self, path: str) -> tuple[int, int, str] | None:
        """(mtime_ns, size, sha256) last archived for a note path."""
        row = self.conn.execute(
            "SELECT mtime_ns, size, sha256 FROM note_files WHERE path = ?", (path,)
        ).fetchone()
        return (row["mtime_ns"], row["size"], row["sha256"]) if row else None

    def note_paths(self, source: str) -> list[str]:
        """Every note path known under a notes folder."""
        rows = self.conn.execute("SELECT path FROM note_files WHERE source = ?", (source,))
        return [row["path"] for row in rows]

    def set_note_cursor(self, source: str, path: str, mtime_ns: int, size: int, sha: str) -> None:
        """Record what was archived for a note path."""
        self.conn.execute(
            "INSERT INTO note_files (path, source, mtime_ns, size, sha256) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET source = excluded.source,"
            " mtime_ns = excluded.mtime_ns, size = excluded.size, sha256 = excluded.sha256",
            (path, source, mtime_ns, size, sha),
        )

    def drop_note_cursor(self, path: str) -> None:
        """Forget a deleted note."""
        self.conn.execute("DELETE FROM note_files WHERE path = ?", (path,))

    # records --------------------------------------------------------------

    def put_record(
        self,
        record: Record,
        *,
        message_id: str | None = None,
        thread: tuple[str, ...] = (),
        quarantine: str | None = None,
    ) -> bool:
        """Insert or replace a record's metadata, marked as waiting for the index; True if new."""
        existed = self.conn.execute("SELECT 1 FROM records WHERE id = ?", (record.id,)).fetchone()
        self.conn.execute(
            "INSERT OR REPLACE INTO records (id, sha256, source, origin, kind, direction, date,"
            " subject, client, contract, milestone, link_rule, message_id, thread, quarantine,"
            " indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                record.id,
                record.sha256,
                record.source.value,
                json.dumps(record.origin.to_json()),
                record.kind.value,
                record.direction.value,
                record.date.isoformat(),
                record.subject,
                record.client,
                record.contract,
                record.milestone,
                record.link_rule,
                message_id,
                json.dumps(list(thread)) if thread else None,
                quarantine,
            ),
        )
        return existed is None

    def mark_stale(self, record_id: str) -> None:
        """Ask for a record's document to be rebuilt on the next index flush."""
        self.conn.execute(
            "UPDATE records SET indexed = 0 WHERE id = ? AND indexed = 1", (record_id,)
        )

    def set_link(self, record_id: str, client: str | None, contract: str | None, rule: str) -> None:
        """Change a record's link (the document is rebuilt on the next flush)."""
        self.conn.execute(
            "UPDATE records SET client = ?, contract = ?, link_rule = ?, indexed = 0 WHERE id = ?",
            (client, contract, rule, record_id),
        )

    # mail -------------------------------------------------------------------

    def record_by_message_id(self, message_id: str) -> sqlite3.Row | None:
        """The record of a Message-ID, if any."""
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM records WHERE message_id = ? LIMIT 1", (message_id,)
        ).fetchone()
        return row

    def add_origin(self, record_id: str, origin: Origin, sha256: str) -> None:
        """Remember one more place a record was found."""
        self.conn.execute(
            "INSERT OR IGNORE INTO origins (record_id, origin_key, origin, sha256) VALUES (?, ?, ?, ?)",
            (record_id, origin.key(), json.dumps(origin.to_json()), sha256),
        )

    def has_origin(self, origin_key: str) -> bool:
        """Whether an item at this origin is already recorded."""
        row = self.conn.execute("SELECT 1 FROM origins WHERE origin_key = ? LIMIT 1", (origin_key,))
        return row.fetchone() is not None

    def origins(self, record_id: str) -> list[Origin]:
        """Every origin of a record."""
        rows = self.conn.execute(
            "SELECT origin FROM origins WHERE record_id = ? ORDER BY origin_key", (record_id,)
        )
        return [Origin.from_json(json.loads(row["origin"])) for row in rows]

    def unlinked_threaded(self) -> list[sqlite3.Row]:
        """Mail records not linked to a contract that answer another message."""
        return list(
            self.conn.execute(
                "SELECT * FROM records WHERE contract IS NULL AND thread IS NOT NULL AND indexed != -1"
            )
        )

    def imap_cursor(
        self, account: str, folder: str, uidvalidity: int
    ) -> tuple[int, list[str]] | None:
        """(last archived UID, capture patterns used) for a folder incarnation."""
        row = self.conn.execute(
            "SELECT last_uid, patterns FROM imap_cursors WHERE account = ? AND folder = ?"
            " AND uidvalidity = ?",
            (account, folder, uidvalidity),
        ).fetchone()
        return (int(row["last_uid"]), json.loads(row["patterns"])) if row else None

    def set_imap_cursor(
        self, account: str, folder: str, uidvalidity: int, last_uid: int, patterns: list[str]
    ) -> None:
        """Advance a folder's cursor (call inside the transaction that committed the batch)."""
        self.conn.execute(
            "INSERT INTO imap_cursors (account, folder, uidvalidity, last_uid, patterns)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(account, folder, uidvalidity)"
            " DO UPDATE SET last_uid = excluded.last_uid, patterns = excluded.patterns",
            (account, folder, uidvalidity, last_uid, json.dumps(sorted(patterns))),
        )

    def maildir_unexamined(
        self, source: str, keys: list[str], *, recheck_skipped: bool = False
    ) -> set[str]:
        """The keys never examined (and, with `recheck_skipped`, those examined but not captured).

        One query, the keys passed as one JSON array: a changed directory can hold 30,000
        files, nearly all examined, and only the few new ones come back to Python.
        """
        skipped = " AND m.captured = 1" if recheck_skipped else ""
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples
        cursor.execute(
            "SELECT j.value FROM json_each(?) AS j WHERE NOT EXISTS ("  # noqa: S608 - constant
            " SELECT 1 FROM maildir_files AS m WHERE m.source = ? AND m.key = j.value"
            f"{skipped})",
            (json.dumps(keys), source),
        )
        return {key for (key,) in cursor}

    def maildir_dirs(self, source: str) -> dict[str, int]:
        """The mtimes of a source's `cur`/`new` directories when they were last fully read."""
        rows = self.conn.execute(
            "SELECT dir, mtime_ns FROM maildir_dirs WHERE source = ?", (source,)
        )
        return {row["dir"]: int(row["mtime_ns"]) for row in rows}

    def set_maildir_dirs(self, source: str, dirs: dict[str, int]) -> None:
        """Remember the directories a completed pass read, replacing what was known."""
        self.conn.execute("DELETE FROM maildir_dirs WHERE source = ?", (source,))
        self.conn.executemany(
            "INSERT INTO maildir_dirs (source, dir, mtime_ns) VALUES (?, ?, ?)",
            [(source, d, m) for d, m in sorted(dirs.items())],
        )

    def set_maildir_file(self, source: str, key: str, folder: str, captured: bool) -> None:
        """Remember a Maildir message as examined."""
        self.conn.execute(
            "INSERT INTO maildir_files (source, key, folder, captured) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(source, key) DO UPDATE SET captured = excluded.captured",
            (source, key, folder, int(captured)),
        )

    def source_patterns(self, source: str) -> list[str]:
        """The capture patterns a source was last scanned with."""
        row = self.conn.execute(
            "SELECT patterns FROM source_patterns WHERE source = ?", (source,)
        ).fetchone()
        return list(json.loads(row["patterns"])) if row else []

    def set_source_patterns(self, source: str, patterns: list[str]) -> None:
        """Record the capture patterns a source was scanned with."""
        self.conn.execute(
            "INSERT OR REPLACE INTO source_patterns (source, patterns) VALUES (?, ?)",
            (source, json.dumps(sorted(patterns))),
        )

    def mark_indexed(self, ids: list[str]) -> None:
        """Note that these records' documents are committed to the index."""
        self.conn.executemany("UPDATE records SET indexed = 1 WHERE id = ?", [(i,) for i in ids])

    def mark_deleted(self, record_id: str) -> None:
        """Flag a record for removal from the index (row dropped once the index commits)."""
        self.conn.execute("UPDATE records SET indexed = -1 WHERE id = ?", (record_id,))

    def forget(self, ids: list[str]) -> None:
        """Drop records whose removal from the index is committed."""
        self.conn.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])

    def pending(self) -> list[sqlite3.Row]:
        """Records whose index state is behind (0 = to add, -1 = to remove)."""
        return list(self.conn.execute(PENDING_SQL))

    def record_row(self, record_id: str) -> sqlite3.Row | None:
        """A record's metadata by id (or unique id prefix of at least 6 characters)."""
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM records WHERE id = ? AND indexed != -1", (record_id,)
        ).fetchone()
        if row is not None or len(record_id) < 6:
            return row
        rows = self.conn.execute(
            "SELECT * FROM records WHERE id LIKE ? AND indexed != -1 LIMIT 2",
            (record_id.replace("%", "").replace("_", "") + "%",),
        ).fetchall()
        return rows[0] if len(rows) == 1 else None

    def records(self) -> Iterator[sqlite3.Row]:
        """Every live record's metadata."""
        yield from self.conn.execute("SELECT * FROM records WHERE indexed != -1 ORDER BY id")

    def count_records(self) -> int:
        """How many live records there are."""
        (n,) = self.conn.execute("SELECT COUNT(*) FROM records WHERE indexed != -1").fetchone()
        return int(n)

    def expected_docs(self) -> tuple[int, int]:
        """Bounds on the index's document count: committed rows, and those plus pending ones."""
        row = self.conn.execute(
            "SELECT SUM(indexed = 1), SUM(indexed IN (0, 1, -1)) FROM records"
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def mark_unindexable(self, record_id: str, reason: str) -> None:
        """Give up indexing a record (it stays archived and in the ledger); never retried."""
        self.conn.execute(
            "UPDATE records SET indexed = 2, quarantine = COALESCE(quarantine, ?) WHERE id = ?",
            (reason, record_id),
        )

    # contracts ------------------------------------------------------------

    def put_contract(self, contract: Contract) -> None:
        """Store a contract definition."""
        self.conn.execute(
            "INSERT OR REPLACE INTO contracts (id, body, defined_by) VALUES (?, ?, ?)",
            (contract.id, json.dumps(contract_to_json(contract)), contract.defined_by),
        )

    def drop_contracts_defined_by(self, defined_by: str) -> None:
        """Forget the contract a (changed or deleted) note declared."""
        self.conn.execute("DELETE FROM contracts WHERE defined_by = ?", (defined_by,))

    def contracts(self) -> dict[str, Contract]:
        """All known contracts by id."""
        rows = self.conn.execute("SELECT body FROM contracts ORDER BY id")
        found = [contract_from_json(json.loads(row["body"])) for row in rows]
        return {c.id: c for c in found}

    def clear_derived(self) -> None:
        """Empty the derived tables (reindex rebuilds them from the ledger and archive)."""
        for table in DERIVED_TABLES:
            self.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        self.conn.execute("DELETE FROM note_files")


def row_origin(row: sqlite3.Row) -> Origin:
    """The origin stored on a record row."""
    return Origin.from_json(json.loads(row["origin"]))


def row_record(row: sqlite3.Row) -> Record:
    """A record row as a Record with the fields the rules and reports use (no text)."""
    return Record(
        id=row["id"],
        source=SourceKind(row["source"]),
        kind=Kind(row["kind"]),
        direction=Direction(row["direction"]),
        date=datetime.fromisoformat(row["date"]),
        subject=row["subject"],
        sha256=row["sha256"],
        origin=row_origin(row),
        client=row["client"],
        contract=row["contract"],
        milestone=row["milestone"],
    )


def contract_to_json(contract: Contract) -> dict[str, Any]:
    """A contract as JSON-safe data."""
    data = asdict(contract)
    data["interval"] = contract.interval.total_seconds() if contract.interval else None
    data["start"] = contract.start.isoformat() if contract.start else None
    data["milestones"] = [
        {
            **asdict(m),
            "due": m.due.isoformat() if m.due else None,
            "status_since": m.status_since.isoformat() if m.status_since else None,
        }
        for m in contract.milestones
    ]
    return data


def contract_from_json(data: dict[str, Any]) -> Contract:
    """Rebuild a contract from `contract_to_json` output."""
    milestones = tuple(
        Milestone(
            id=m["id"],
            name=m["name"],
            amount=m["amount"],
            currency=m["currency"],
            due=date.fromisoformat(m["due"]) if m["due"] else None,
            escrow=Escrow(m["escrow"]),
            status=MilestoneStatus(m["status"]),
            status_since=date.fromisoformat(m["status_since"]) if m.get("status_since") else None,
        )
        for m in data["milestones"]
    )
    return Contract(
        id=data["id"],
        client=data["client"],
        title=data["title"],
        emails=tuple(data["emails"]),
        interval=timedelta(seconds=data["interval"]) if data["interval"] is not None else None,
        start=date.fromisoformat(data["start"]) if data["start"] else None,
        status=ContractStatus(data["status"]),
        milestones=milestones,
        defined_by=data["defined_by"],
    )
