"""The hash-chained ledger on a real SQLite file, and the chain check."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from corrlog import db
from corrlog.errors import IntegrityError
from corrlog.ledger import (
    FULL_CHECK_EVERY,
    GENESIS,
    Checkpoint,
    Entry,
    Ledger,
    assert_chain_intact,
    chain_problems,
    check_before_append,
    entry_hash,
    rows_intact,
    transaction,
)

T0 = datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64


class StepClock:
    """A clock that starts at `start` and moves one second per reading."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A fresh database file, closed after the test."""
    connection = db.connect(tmp_path / "x.db")
    yield connection
    connection.close()


@pytest.fixture
def ledger(conn: sqlite3.Connection) -> Ledger:
    """A ledger with a deterministic clock."""
    return Ledger(conn, clock=StepClock(T0))


def append_three(conn: sqlite3.Connection, ledger: Ledger) -> list[Entry]:
    """Append an ingest of A, an ingest of B and a link event naming A, in one transaction."""
    with transaction(conn):
        return [
            ledger.append("ingest", sha256=SHA_A, origin="notes:main:a.md"),
            ledger.append("ingest", sha256=SHA_B, origin="notes:main:b.md", detail={"size": 3}),
            ledger.append("link", sha256=SHA_A, detail={"contract": "acme-site"}),
        ]


def test_entries_are_chained(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """Entry 1 links to GENESIS and each later entry links to the hash before it."""
    appended = append_three(conn, ledger)
    stored = list(ledger.entries())
    assert appended == stored
    assert [1, 2, 3] == [e.seq for e in stored]
    assert [GENESIS, stored[0].hash, stored[1].hash] == [e.prev_hash for e in stored]
    assert all(e.hash == e.expected_hash() for e in stored)
    assert 3 == len({e.hash for e in stored})


def test_hash_covers_every_field(ledger: Ledger, conn: sqlite3.Connection) -> None:
    """The stored hash is entry_hash over seq, time, event, sha256, origin, detail and prev_hash."""
    with transaction(conn):
        entry = ledger.append("ingest", sha256=SHA_A, origin="o", detail={"k": "v"})
    expected = entry_hash(1, entry.time, "ingest", SHA_A, "o", '{"k": "v"}', GENESIS)
    assert expected == entry.hash


def test_fixed_clock_gives_utc_iso_time(conn: sqlite3.Connection) -> None:
    """The injected clock's time is stored as UTC ISO 8601 with microseconds."""
    plus_one = timezone(timedelta(hours=1))
    ledger = Ledger(conn, clock=lambda: datetime(2026, 1, 15, 10, 30, tzinfo=plus_one))
    with transaction(conn):
        entry = ledger.append("ingest", sha256=SHA_A)
    assert "2026-01-15T09:30:00.000000+00:00" == entry.time
    assert datetime(2026, 1, 15, 9, 30, tzinfo=UTC) == datetime.fromisoformat(entry.time)


def test_detail_is_canonical_json(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """Detail is stored as JSON with sorted keys (non-ASCII kept) and decodes back."""
    with transaction(conn):
        entry = ledger.append("note", detail={"b": 1, "a": "café"})
    assert '{"a": "café", "b": 1}' == entry.detail
    assert {"a": "café", "b": 1} == entry.detail_json()


def test_no_detail_is_null(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """An entry without detail stores NULL and decodes to an empty dict."""
    with transaction(conn):
        entry = ledger.append("verify")
    assert None is entry.detail
    assert {} == entry.detail_json()


def test_to_json(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """to_json carries every column."""
    with transaction(conn):
        entry = ledger.append("ingest", sha256=SHA_A, origin="o")
    assert {
        "seq": 1,
        "time": "2026-01-15T09:30:00.123456+00:00",
        "event": "ingest",
        "sha256": SHA_A,
        "origin": "o",
        "detail": None,
        "prev_hash": GENESIS,
        "hash": entry.hash,
    } == entry.to_json()


def test_chain_continues_after_reopen(tmp_path: Path) -> None:
    """A new connection to the same file appends after the last stored entry."""
    path = tmp_path / "x.db"
    first = db.connect(path)
    with transaction(first):
        one = Ledger(first, clock=StepClock(T0)).append("ingest", sha256=SHA_A)
    first.close()
    second = db.connect(path)
    try:
        with transaction(second):
            two = Ledger(second, clock=StepClock(T0)).append("ingest", sha256=SHA_B)
        assert (2, one.hash) == (two.seq, two.prev_hash)
        assert [] == list(chain_problems(Ledger(second).entries()))
    finally:
        second.close()


def test_rolled_back_transaction_leaves_nothing(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """An error inside transaction() rolls back its appends and propagates."""
    with transaction(conn):
        ledger.append("ingest", sha256=SHA_A)
    with pytest.raises(RuntimeError, match="disk on fire"), transaction(conn):
        ledger.append("ingest", sha256=SHA_B)
        raise RuntimeError("disk on fire")
    assert 1 == ledger.count()
    assert not ledger.has_item(SHA_B)
    with transaction(conn):
        again = ledger.append("ingest", sha256=SHA_B)
    assert 2 == again.seq


def test_table_is_append_only(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """The database refuses to update or delete ledger rows."""
    append_three(conn, ledger)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ledger SET event = 'forged' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("INSERT OR REPLACE INTO ledger SELECT * FROM ledger WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(
            "REPLACE INTO ledger SELECT 2, time, 'forged', sha256, origin, detail,"
            " prev_hash, hash FROM ledger WHERE seq = 2"
        )
    assert 3 == ledger.count()
    assert [e.event for e in ledger.entries()] == ["ingest", "ingest", "link"]


def test_failed_commit_leaves_no_transaction_open(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """A COMMIT that fails (here a deferred foreign key) is rolled back and propagates; the
    connection is outside any transaction and the next one commits."""
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), transaction(conn):
        ledger.append("ingest", sha256=SHA_A)
        conn.execute("INSERT INTO child VALUES (7)")
    assert not conn.in_transaction
    assert 0 == ledger.count()
    with transaction(conn):
        ledger.append("ingest", sha256=SHA_B)
    assert 1 == ledger.count()


def test_has_item_for_item_count(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """has_item, for_item and count answer from the stored entries."""
    assert 0 == ledger.count()
    assert not ledger.has_item(SHA_A)
    appended = append_three(conn, ledger)
    assert 3 == ledger.count()
    assert ledger.has_item(SHA_A)
    assert not ledger.has_item("c" * 64)
    assert [appended[0], appended[2]] == ledger.for_item(SHA_A)
    assert [appended[1]] == ledger.for_item(SHA_B)
    assert [] == ledger.for_item("c" * 64)


def test_entries_since(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """entries(since_seq) yields only the entries after that sequence number."""
    appended = append_three(conn, ledger)
    assert appended[2:] == list(ledger.entries(since_seq=2))


# chain_problems: pure, on hand-built entries


@pytest.fixture
def chain(conn: sqlite3.Connection, ledger: Ledger) -> list[Entry]:
    """Four valid, chained entries."""
    entries = append_three(conn, ledger)
    with transaction(conn):
        entries.append(ledger.append("verify"))
    return entries


def test_intact_chain_has_no_problems(chain: list[Entry]) -> None:
    """An untouched chain reports nothing."""
    assert [] == list(chain_problems(iter(chain)))


def test_empty_chain_has_no_problems() -> None:
    """An empty ledger reports nothing."""
    assert [] == list(chain_problems(iter([])))


@pytest.mark.parametrize(
    "change",
    [
        {"event": "forged"},
        {"sha256": "c" * 64},
        {"origin": "elsewhere"},
        {"detail": '{"size": 4}'},
        {"time": "2025-01-01T00:00:00.000000+00:00"},
    ],
)
def test_altered_field_names_that_entry(chain: list[Entry], change: dict[str, str]) -> None:
    """Changing any field of entry 2 (hash kept) is reported for entry 2 only."""
    chain[1] = dataclasses.replace(chain[1], **change)
    assert ["ledger entry 2: contents do not match its hash (entry altered)"] == list(
        chain_problems(iter(chain))
    )


def test_altered_and_rehashed_entry_breaks_next_link(chain: list[Entry]) -> None:
    """Re-hashing an altered entry 2 is caught by entry 3's previous-hash link."""
    forged = dataclasses.replace(chain[1], event="forged")
    chain[1] = dataclasses.replace(forged, hash=forged.expected_hash())
    problems = list(chain_problems(iter(chain)))
    assert [
        "ledger entry 3: previous-hash link broken (an earlier entry was changed or removed)"
    ] == problems


def test_removed_middle_entry(chain: list[Entry]) -> None:
    """Removing entry 2 is reported at entry 3: a gap in the sequence and a broken link."""
    del chain[1]
    problems = list(chain_problems(iter(chain)))
    assert [
        "ledger entry 3: expected sequence number 2 (entries missing)",
        "ledger entry 3: previous-hash link broken (an earlier entry was changed or removed)",
    ] == problems


def test_reordered_entries(chain: list[Entry]) -> None:
    """Swapping entries 2 and 3 breaks the links 1-3, 3-2 and 2-4; no entry is called altered."""
    chain[1], chain[2] = chain[2], chain[1]
    problems = list(chain_problems(iter(chain)))
    assert [
        "ledger entry 3: expected sequence number 2 (entries missing)",
        "ledger entry 3: previous-hash link broken (an earlier entry was changed or removed)",
        "ledger entry 2: expected sequence number 4 (entries missing)",
        "ledger entry 2: previous-hash link broken (an earlier entry was changed or removed)",
        "ledger entry 4: expected sequence number 3 (entries missing)",
        "ledger entry 4: previous-hash link broken (an earlier entry was changed or removed)",
    ] == problems


def test_altered_genesis_link(chain: list[Entry]) -> None:
    """Entry 1 must link to GENESIS."""
    chain[0] = dataclasses.replace(chain[0], prev_hash="f" * 64)
    problems = list(chain_problems(iter(chain)))
    assert problems[0].startswith("ledger entry 1: previous-hash link broken")


# the fast chain check (rows_intact, assert_chain_intact) agrees with chain_problems


def _rows(chain: list[Entry]) -> list[tuple[object, ...]]:
    return [tuple(e.to_json().values()) for e in chain]


def _damaged(chain: list[Entry], how: str) -> list[Entry]:
    """The chain with one entry altered, re-hashed after altering, removed or moved."""
    damaged = list(chain)
    if how == "altered first":
        damaged[0] = dataclasses.replace(chain[0], detail='{"forged": 1}')
    elif how == "altered last":
        damaged[-1] = dataclasses.replace(chain[-1], event="forged")
    elif how == "rehashed":
        forged = dataclasses.replace(chain[1], origin="elsewhere")
        damaged[1] = dataclasses.replace(forged, hash=forged.expected_hash())
    elif how == "removed first":
        del damaged[0]
    elif how == "removed middle":
        del damaged[2]
    elif how == "swapped":
        damaged[1], damaged[2] = chain[2], chain[1]
    elif how == "seq stored as real":
        damaged[1] = dataclasses.replace(chain[1], seq=2.0)  # type: ignore[arg-type]
    elif how == "time stored as integer":
        damaged[1] = dataclasses.replace(chain[1], time=20260115)  # type: ignore[arg-type]
    return damaged


DAMAGE = [
    "altered first",
    "altered last",
    "rehashed",
    "removed first",
    "removed middle",
    "swapped",
    "seq stored as real",
    "time stored as integer",
]


def test_rows_intact_on_an_intact_chain(chain: list[Entry]) -> None:
    """An untouched chain, and an empty one, are intact."""
    assert (True, True) == (rows_intact(_rows(chain)), rows_intact([]))


@pytest.mark.parametrize("how", DAMAGE)
def test_rows_intact_catches_what_chain_problems_names(chain: list[Entry], how: str) -> None:
    """Every kind of damage that chain_problems reports makes the fast check fail too."""
    damaged = _damaged(chain, how)
    assert [] != list(chain_problems(iter(damaged)))
    assert rows_intact(_rows(damaged)) is False


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quote " and backslash \\ and slash /',
        "control \x00\x01\x1f\x7f tab\t newline\n cr\r bell\x07 \b \f",
        "accents é ü ß, CJK 漢字, emoji 📨, line separator \u2028",
        '{"path": "a/b.md", "size": 3}',
        "",
    ],
)
def test_entry_hash_is_sha256_of_compact_json(value: str) -> None:
    """entry_hash builds exactly json.dumps(ensure_ascii=False, separators=(",", ":")) bytes."""
    fields: list[object] = [7, value, value, value, None, value, GENESIS]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert expected == entry_hash(7, value, value, value, None, value, GENESIS)


def test_entry_hash_of_unexpected_types_matches_json() -> None:
    """A value of an unexpected type (a damaged database) is hashed as JSON would encode it."""
    fields: list[object] = [2.0, 20260115, "e", 5, None, None, GENESIS]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert expected == entry_hash(*fields)  # type: ignore[arg-type]


def _tamper(conn: sqlite3.Connection, sql: str) -> None:
    conn.execute("DROP TRIGGER IF EXISTS ledger_no_update")
    conn.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
    conn.execute(sql)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE ledger SET detail = '{}' WHERE seq = 1", "ledger entry 1: contents do not match"),
        ("UPDATE ledger SET origin = NULL WHERE seq = 150", "ledger entry 150: contents do not"),
        ("DELETE FROM ledger WHERE seq = 1", "ledger entry 2: expected sequence number 1"),
        ("UPDATE ledger SET hash = '0' WHERE seq = 299", "ledger entry 299: contents do not"),
    ],
)
def test_assert_chain_intact_reads_every_entry(
    conn: sqlite3.Connection, ledger: Ledger, sql: str, named: str
) -> None:
    """Damage to the oldest entry of a long ledger is refused, named by its first problem."""
    with transaction(conn):
        for n in range(300):
            ledger.append("ingest", sha256=f"{n:064x}", origin=f"maildir:x:{n}", detail={"n": n})
    assert_chain_intact(ledger)
    _tamper(conn, sql)
    with pytest.raises(IntegrityError, match=named) as caught:
        assert_chain_intact(ledger)
    assert "will not append to a broken ledger" in str(caught.value)


# the check before appending: a checkpoint, what came after it re-hashed, every link checked

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _append(conn: sqlite3.Connection, ledger: Ledger, first: int, count: int) -> None:
    with transaction(conn):
        for n in range(first, first + count):
            ledger.append("ingest", sha256=f"{n:064x}", origin=f"maildir:x:{n}", detail={"n": n})


@pytest.fixture
def checked(conn: sqlite3.Connection, ledger: Ledger) -> Ledger:
    """300 entries checked at NOW (the checkpoint at entry 300), then 20 more appended."""
    _append(conn, ledger, 0, 300)
    check_before_append(ledger, NOW)
    _append(conn, ledger, 300, 20)
    return ledger


def _guard_again(conn: sqlite3.Connection) -> None:
    """Re-create the append-only triggers that `_tamper` dropped."""
    for sql in db.LEDGER_TRIGGERS.values():
        conn.execute(sql)


def _rehash(conn: sqlite3.Connection, seq: int) -> None:
    """Alter an entry and store the hash of its new contents (the triggers kept)."""
    row = conn.execute("SELECT * FROM ledger WHERE seq = ?", (seq,)).fetchone()
    digest = entry_hash(row[0], row[1], row[2], row[3], "elsewhere", row[5], row[6])
    _tamper(conn, f"UPDATE ledger SET origin = 'elsewhere', hash = '{digest}' WHERE seq = {seq}")
    _guard_again(conn)


def test_first_check_rehashes_every_entry_and_records_the_last(
    conn: sqlite3.Connection, ledger: Ledger
) -> None:
    """Without a checkpoint every entry is re-hashed; the checkpoint then names the last one."""
    _append(conn, ledger, 0, 300)
    assert ledger.checkpoint() is None
    check_before_append(ledger, NOW)
    assert Checkpoint(300, ledger.head()[1], "2026-02-01T12:00:00+00:00") == ledger.checkpoint()


def test_first_check_refuses_damage_anywhere(conn: sqlite3.Connection, ledger: Ledger) -> None:
    """The first check finds an entry altered under its hash, and records no checkpoint."""
    _append(conn, ledger, 0, 300)
    _tamper(conn, "UPDATE ledger SET detail = '{}' WHERE seq = 1")
    with pytest.raises(IntegrityError, match="ledger entry 1: contents do not match"):
        check_before_append(ledger, NOW)
    assert ledger.checkpoint() is None


def test_checkpoint_that_cannot_be_written_is_skipped(
    checked: Ledger, conn: sqlite3.Connection
) -> None:
    """A database that refuses writes (a full disk, read-only) does not fail the check: the
    checkpoint stays where it was and the next check re-hashes from there."""
    before = checked.checkpoint()
    conn.execute("PRAGMA query_only = ON")
    check_before_append(checked, NOW + timedelta(hours=1))
    assert checked.checkpoint() == before
    conn.execute("PRAGMA query_only = OFF")
    check_before_append(checked, NOW + timedelta(hours=2))
    assert checked.checkpoint() == Checkpoint(320, checked.head()[1], "2026-02-01T12:00:00+00:00")


def test_check_moves_the_checkpoint_and_keeps_the_full_check_time(checked: Ledger) -> None:
    """An intact quick check moves the checkpoint to the last entry; `full_at` stays."""
    check_before_append(checked, NOW + timedelta(hours=1))
    assert Checkpoint(320, checked.head()[1], "2026-02-01T12:00:00+00:00") == checked.checkpoint()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE ledger SET detail = '{}' WHERE seq = 310", "ledger entry 310: contents do not"),
        ("UPDATE ledger SET origin = NULL WHERE seq = 300", "ledger entry 300: contents do not"),
        ("UPDATE ledger SET event = 'x' WHERE seq = 320", "ledger entry 320: contents do not"),
        ("UPDATE ledger SET hash = '0' WHERE seq = 299", "ledger entry 299: contents do not"),
        ("DELETE FROM ledger WHERE seq = 310", "ledger entry 311: expected sequence number 310"),
        ("DELETE FROM ledger WHERE seq = 150", "ledger entry 151: expected sequence number 150"),
        ("DELETE FROM ledger WHERE seq = 1", "ledger entry 2: expected sequence number 1"),
    ],
)
def test_quick_check_refuses_damage(
    checked: Ledger, conn: sqlite3.Connection, sql: str, named: str
) -> None:
    """Damage after the checkpoint, to its entry, or to any link, the triggers re-created: the
    quick check itself finds it (then the full check names the first problem); the
    checkpoint does not move."""
    before = checked.checkpoint()
    assert before is not None
    _tamper(conn, sql)
    _guard_again(conn)
    assert checked.guarded()
    assert not (checked.tail_intact(before) and checked.links_intact())
    with pytest.raises(IntegrityError, match=named):
        check_before_append(checked, NOW + timedelta(hours=1))
    assert before == checked.checkpoint()


@pytest.mark.parametrize(
    "trigger",
    [
        None,  # dropped
        "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT 1; END",
        "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger WHEN 0\n"
        "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    ],
)
def test_quick_check_refuses_a_trigger_not_as_corrlog_made_it(
    checked: Ledger, conn: sqlite3.Connection, trigger: str | None
) -> None:
    """A trigger dropped, or re-created to let updates through, and an entry before the
    checkpoint altered under its hash: the quick check sees the trigger, so every entry is
    re-hashed and the alteration named."""
    before = checked.checkpoint()
    _tamper(conn, "UPDATE ledger SET detail = '{}' WHERE seq = 1")
    conn.execute(db.LEDGER_TRIGGERS["ledger_no_delete"])
    if trigger is not None:
        conn.execute(trigger)
    assert not checked.guarded()
    with pytest.raises(IntegrityError, match="ledger entry 1: contents do not match"):
        check_before_append(checked, NOW + timedelta(hours=1))
    assert before == checked.checkpoint()


@pytest.mark.parametrize("seq", [1, 150, 299])
def test_quick_check_refuses_a_rehashed_entry_before_the_checkpoint(
    checked: Ledger, conn: sqlite3.Connection, seq: int
) -> None:
    """An entry altered and re-hashed, the triggers re-created, breaks the next entry's link."""
    _rehash(conn, seq)
    assert checked.guarded()
    with pytest.raises(IntegrityError, match=f"ledger entry {seq + 1}: previous-hash link broken"):
        check_before_append(checked, NOW + timedelta(hours=1))


@pytest.fixture
def altered_before_checkpoint(checked: Ledger, conn: sqlite3.Connection) -> Ledger:
    """Entry 10 altered under its old hash, the append-only triggers re-created."""
    _tamper(conn, "UPDATE ledger SET detail = '{}' WHERE seq = 10")
    _guard_again(conn)
    return checked


def test_contents_altered_before_the_checkpoint_pass_the_quick_check(
    altered_before_checkpoint: Ledger,
) -> None:
    """The documented limit: only a full re-hash finds contents altered under the old hash
    before the checkpoint with the triggers in place."""
    check_before_append(altered_before_checkpoint, NOW + timedelta(hours=1))
    mark = altered_before_checkpoint.checkpoint()
    assert mark is not None
    assert 320 == mark.seq


@pytest.mark.parametrize(
    ("later", "full_every"),
    [
        (FULL_CHECK_EVERY, FULL_CHECK_EVERY),  # the daily full check
        (timedelta(hours=1), timedelta(0)),  # the daemon's start
        (-timedelta(hours=1), FULL_CHECK_EVERY),  # a clock set back: the time is not trusted
    ],
)
def test_full_checks_refuse_contents_altered_before_the_checkpoint(
    altered_before_checkpoint: Ledger, later: timedelta, full_every: timedelta
) -> None:
    """The full checks re-hash every entry: the daily one, the daemon's start, verify's."""
    ledger = altered_before_checkpoint
    with pytest.raises(IntegrityError, match="ledger entry 10: contents do not match"):
        check_before_append(ledger, NOW + later, full_every)
    with pytest.raises(IntegrityError, match="ledger entry 10: contents do not match"):
        assert_chain_intact(ledger)
    assert ["ledger entry 10: contents do not match its hash (entry altered)"] == list(
        chain_problems(ledger.entries())
    )


@pytest.mark.parametrize(
    "mark",
    [
        Checkpoint(999, "f" * 64, "2026-02-01T12:00:00+00:00"),  # a database restored from a backup
        Checkpoint(300, "f" * 64, "2026-02-01T12:00:00+00:00"),
        Checkpoint(300, GENESIS, "not a time"),
    ],
)
def test_checkpoint_that_does_not_match_means_a_full_check(
    checked: Ledger, conn: sqlite3.Connection, mark: Checkpoint
) -> None:
    """A checkpoint that does not fit the ledger: every entry is re-hashed (intact here), and
    the checkpoint is recorded anew with this full check's time."""
    checked.set_checkpoint(mark)
    check_before_append(checked, NOW + timedelta(hours=2))
    assert Checkpoint(320, checked.head()[1], "2026-02-01T14:00:00+00:00") == checked.checkpoint()


def test_empty_ledger_checks_and_records_nothing_new(
    conn: sqlite3.Connection, ledger: Ledger
) -> None:
    """An empty ledger passes; its checkpoint is GENESIS, and a second check changes nothing."""
    check_before_append(ledger, NOW)
    check_before_append(ledger, NOW + timedelta(hours=1))
    assert Checkpoint(0, GENESIS, "2026-02-01T12:00:00+00:00") == ledger.checkpoint()


# db


def test_connect_sets_schema_version(conn: sqlite3.Connection) -> None:
    """A new database gets the current schema version and WAL journaling."""
    assert db.SCHEMA_VERSION == conn.execute("PRAGMA user_version").fetchone()[0]
    assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]


def test_connect_rejects_newer_schema(tmp_path: Path) -> None:
    """A database from a newer corrlog is refused with a DatabaseError."""
    path = tmp_path / "x.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version={db.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(db.DatabaseError, match="newer than this corrlog"):
        db.connect(path)


def test_connect_rejects_garbage_file(tmp_path: Path) -> None:
    """A file that is not SQLite is a DatabaseError naming it with a remedy."""
    path = tmp_path / "x.db"
    path.write_bytes(b"not a database " * 200)
    with pytest.raises(db.DatabaseError, match="corrlog doctor") as caught:
        db.connect(path)
    assert str(path) in str(caught.value)
