"""The hash-chained, append-only ledger: every ingest and every later event, tamper-evident."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from corrlog.errors import IntegrityError

GENESIS = "0" * 64

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default ledger clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row."""

    seq: int
    time: str
    event: str
    sha256: str | None
    origin: str | None
    detail: str | None
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this entry must carry, computed from its other fields."""
        return entry_hash(
            self.seq, self.time, self.event, self.sha256, self.origin, self.detail, self.prev_hash
        )

    def detail_json(self) -> dict[str, Any]:
        """The detail field decoded (an empty dict when absent)."""
        return json.loads(self.detail) if self.detail else {}

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (for evidence packs and `--format json`)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "sha256": self.sha256,
            "origin": self.origin,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def entry_hash(
    seq: int,
    time: str,
    event: str,
    sha256: str | None,
    origin: str | None,
    detail: str | None,
    prev_hash: str,
) -> str:
    """sha256 over the canonical JSON of an entry's fields, the previous hash included."""
    canonical = _canonical([seq, time, event, sha256, origin, detail, prev_hash])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(fields: list[Any]) -> str:
    """json.dumps(fields, ensure_ascii=False, separators=(",", ":")) for an entry's fields.

    Built directly for the usual types (the chain check hashes every entry on each sync,
    and the encoder's per-call setup cost more than the hashing); anything else, such as
    a value of an unexpected type in an altered database, goes through the encoder itself.
    """
    seq, time, event, sha256, origin, detail, prev_hash = fields
    if type(seq) is int:
        try:
            return (
                f"[{seq},{_quote(time)},{_quote(event)},{_quote_or_null(sha256)},"
                f"{_quote_or_null(origin)},{_quote_or_null(detail)},{_quote(prev_hash)}]"
            )
        except TypeError:  # a field that is not a string
            pass
    return _ENCODE(fields)


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _quote_or_null(value: str | None) -> str:
    return "null" if value is None else _quote(value)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _row_entry(row: sqlite3.Row) -> Entry:
    return Entry(
        seq=row["seq"],
        time=row["time"],
        event=row["event"],
        sha256=row["sha256"],
        origin=row["origin"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class Ledger:
    """Append and read ledger entries; appends must run inside `transaction()`."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def append(
        self,
        event: str,
        *,
        sha256: str | None = None,
        origin: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Entry:
        """Add an entry chained to the last one."""
        last = self._conn.execute(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
        time = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
        detail_text = json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else None
        digest = entry_hash(seq, time, event, sha256, origin, detail_text, prev)
        self._conn.execute(
            "INSERT INTO ledger (seq, time, event, sha256, origin, detail, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, time, event, sha256, origin, detail_text, prev, digest),
        )
        return Entry(seq, time, event, sha256, origin, detail_text, prev, digest)

    def entries(self, since_seq: int = 0) -> Iterator[Entry]:
        """All entries in order, from `since_seq` on."""
        for row in self._rows(since_seq):
            yield Entry(*row)

    def chain_intact(self) -> bool:
        """Whether every entry is in sequence, linked to the one before and unaltered."""
        return rows_intact(self._rows())

    def _rows(self, since_seq: int = 0) -> sqlite3.Cursor:
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples: the chain check reads every entry
        return cursor.execute(
            "SELECT seq, time, event, sha256, origin, detail, prev_hash, hash FROM ledger"
            " WHERE seq > ? ORDER BY seq",
            (since_seq,),
        )

    def for_item(self, sha256: str) -> list[Entry]:
        """Every entry that names this item."""
        rows = self._conn.execute("SELECT * FROM ledger WHERE sha256 = ? ORDER BY seq", (sha256,))
        return [_row_entry(row) for row in rows]

    def has_item(self, sha256: str) -> bool:
        """Whether an ingest of these bytes is on record."""
        row = self._conn.execute("SELECT 1 FROM ledger WHERE sha256 = ? LIMIT 1", (sha256,))
        return row.fetchone() is not None

    def count(self) -> int:
        """How many entries there are."""
        (n,) = self._conn.execute("SELECT COUNT(*) FROM ledger").fetchone()
        return int(n)


def assert_chain_intact(ledger: Ledger) -> None:
    """Refuse to go on (IntegrityError naming the first break) when the chain is broken.

    Every entry is checked, on each call; the fast pass below only says whether the chain
    is intact, and `chain_problems` then describes the first break.
    """
    if ledger.chain_intact():
        return
    problems = chain_problems(ledger.entries(), stop_at_first=True)
    problem = next(problems, "ledger chain check failed")
    raise IntegrityError(
        f"{problem}; corrlog will not append to a broken ledger. Run 'corrlog verify' to see "
        "every problem, and restore corrlog.db from a backup"
    )


def rows_intact(rows: Iterable[tuple[Any, ...]]) -> bool:
    """Whether ledger rows (seq, time, event, sha256, origin, detail, prev_hash, hash), in
    order, form an unbroken chain from GENESIS with every hash matching its entry (pure).

    The same test as `chain_problems`, on plain tuples: no object per entry.
    """
    prev_hash, expected_seq = GENESIS, 1
    sha256, canonical = hashlib.sha256, _canonical
    for seq, time, event, item, origin, detail, prev, digest in rows:
        if (
            seq != expected_seq
            or prev != prev_hash
            or digest
            != sha256(
                canonical([seq, time, event, item, origin, detail, prev]).encode()
            ).hexdigest()
        ):
            return False
        prev_hash, expected_seq = digest, seq + 1
    return True


def chain_problems(entries: Iterator[Entry], *, stop_at_first: bool = False) -> Iterator[str]:
    """Walk the chain and describe every broken link or altered entry (pure)."""
    prev_hash, expected_seq = GENESIS, 1
    for entry in entries:
        if (
            entry.seq == expected_seq
            and entry.prev_hash == prev_hash
            and entry.hash == entry.expected_hash()
        ):
            prev_hash, expected_seq = entry.hash, entry.seq + 1
            continue
        if entry.seq != expected_seq:
            yield f"ledger entry {entry.seq}: expected sequence number {expected_seq} (entries missing)"
        if entry.prev_hash != prev_hash:
            yield f"ledger entry {entry.seq}: previous-hash link broken (an earlier entry was changed or removed)"
        if entry.hash != entry.expected_hash():
            yield f"ledger entry {entry.seq}: contents do not match its hash (entry altered)"
        if stop_at_first:
            return
        prev_hash, expected_seq = entry.hash, entry.seq + 1
