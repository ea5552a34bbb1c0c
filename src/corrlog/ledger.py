"""The hash-chained, append-only ledger: every ingest and every later event, tamper-evident."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from corrlog.db import LEDGER_TRIGGERS
from corrlog.errors import IntegrityError

GENESIS = "0" * 64
FULL_CHECK_EVERY = timedelta(days=1)  # see check_before_append

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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Entries up to `seq` (whose hash is `hash`) were re-hashed; all of them at `full_at`."""

    seq: int
    hash: str
    full_at: str  # UTC ISO time of the last check that re-hashed every entry


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error, a failed COMMIT's too.

    SQLite keeps the transaction open when COMMIT fails (a busy database, a deferred
    constraint), and has already rolled it back after some errors (a full disk): roll
    back whatever is still open, so the connection is never left inside a transaction.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


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

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, GENESIS) when there is none."""
        row = self._conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        found = row.fetchone()
        return (int(found[0]), str(found[1])) if found else (0, GENESIS)

    def checkpoint(self) -> Checkpoint | None:
        """Where the last check before appending got to; None before the first."""
        row = self._conn.execute("SELECT seq, hash, full_at FROM ledger_checked").fetchone()
        return Checkpoint(int(row[0]), str(row[1]), str(row[2])) if row else None

    def set_checkpoint(self, mark: Checkpoint) -> None:
        """Record where a check got to (in a transaction of its own)."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO ledger_checked (id, seq, hash, full_at)"
                " VALUES (1, ?, ?, ?)",
                (mark.seq, mark.hash, mark.full_at),
            )

    def guarded(self) -> bool:
        """Whether the append-only triggers are in place as corrlog made them (nobody dropped
        them to change an entry)."""
        rows = self._conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger'"
        )
        return dict(rows.fetchall()) == LEDGER_TRIGGERS

    def links_intact(self) -> bool:
        """Whether every entry is in sequence and names the previous entry's hash (one SQL pass).

        Catches removed, inserted or reordered entries and a changed hash anywhere, without
        re-hashing; only re-hashing (`chain_intact`) finds contents altered under a kept hash.
        """
        broken = self._conn.execute(
            "SELECT a.seq FROM ledger AS a LEFT JOIN ledger AS b ON b.seq = a.seq - 1"
            " WHERE a.prev_hash IS NOT coalesce(b.hash, ?) OR a.seq != coalesce(b.seq + 1, 1)"
            " LIMIT 1",
            (GENESIS,),
        ).fetchone()
        return broken is None

    def tail_intact(self, mark: Checkpoint) -> bool:
        """Whether the checkpoint's entry is unchanged and it and every later entry re-hash right."""
        if mark.seq == 0:
            return mark.hash == GENESIS and rows_intact(self._rows())
        rows = self._rows(mark.seq - 1)
        first = rows.fetchone()
        if first is None or (first[0], first[-1]) != (mark.seq, mark.hash):
            return False
        return rows_intact(itertools.chain([first], rows), prev_hash=first[6], first_seq=mark.seq)


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


def rows_intact(
    rows: Iterable[tuple[Any, ...]], *, prev_hash: str = GENESIS, first_seq: int = 1
) -> bool:
    """Whether ledger rows (seq, time, event, sha256, origin, detail, prev_hash, hash), in
    order, form an unbroken chain with every hash matching its entry (pure).

    The first row must be entry `first_seq` linked to `prev_hash` (by default the whole
    chain, from GENESIS). The same test as `chain_problems`, on plain tuples: no object per
    entry.
    """
    expected_seq = first_seq
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


def check_before_append(
    ledger: Ledger, now: datetime, full_every: timedelta = FULL_CHECK_EVERY
) -> None:
    """Refuse to append to a broken ledger; re-hash every entry only when there is cause.

    The quick check: the append-only triggers are in place, every entry is in sequence
    and linked to the one before (one SQL pass: a removed, inserted, reordered or re-hashed
    entry anywhere), and the checkpoint's entry and every later one re-hash right. Every
    entry is re-hashed (`assert_chain_intact`, whose error names the first break) when
    the quick check fails, when there is no checkpoint or it does not match the ledger (a
    database restored from a backup), and when the last full check is `full_every` old.
    What only that finds: contents altered under the old hash, before the checkpoint, with
    the triggers in place (re-created, or bypassed below SQL). `corrlog verify`, `corrlog
    doctor` and the daemon's start re-hash every entry. The checkpoint then moves to the
    last entry; when it cannot be written (a full disk, a read-only database) it stays where
    it was, and the next check re-hashes from there: it only saves work, so failing to record
    it must not stop what the check was for.
    """
    mark = ledger.checkpoint()
    full_at = mark.full_at if mark is not None else ""
    if mark is None or _full_check_due(mark, now, full_every) or not _quick_check(ledger, mark):
        assert_chain_intact(ledger)
        full_at = now.astimezone(UTC).isoformat(timespec="seconds")
    seq, digest = ledger.head()
    if mark != Checkpoint(seq, digest, full_at):
        with contextlib.suppress(sqlite3.OperationalError):
            ledger.set_checkpoint(Checkpoint(seq, digest, full_at))


def _full_check_due(mark: Checkpoint, now: datetime, full_every: timedelta) -> bool:
    """Whether the last full check is `full_every` old (or its time unreadable, or ahead)."""
    try:
        last = datetime.fromisoformat(mark.full_at)
    except ValueError:
        return True
    return last.tzinfo is None or not timedelta(0) <= now - last < full_every


def _quick_check(ledger: Ledger, mark: Checkpoint) -> bool:
    """The triggers as corrlog made them, the checkpoint's tail re-hashing right, every link."""
    return ledger.guarded() and ledger.tail_intact(mark) and ledger.links_intact()


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
