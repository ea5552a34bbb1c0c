"""Index commits during a mail pass: few and big, never losing a staged record (real SQLite + index)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from corrlog import mailsync
from corrlog.config import MaildirSource
from corrlog.datadir import DataDir, Session
from corrlog.db import SCHEMA_VERSION, connect
from corrlog.pipeline import CommitCadence, Pipeline
from corrlog.state import PENDING_SQL
from support.mail import message, write_maildir


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """An empty data dir, opened."""
    with DataDir(tmp_path / "data").open(create=True) as opened:
        yield opened


def pending(session: Session) -> int:
    """Records archived but not yet committed to the index."""
    return len(session.state.pending())


def pipeline_for(session: Session, cadence: CommitCadence) -> Pipeline:
    """A pipeline capturing all mail, with the given commit cadence."""
    pipeline = Pipeline.load(session, [], frozenset(), UTC, capture_all=True)
    pipeline.cadence = cadence
    return pipeline


def test_cadence_is_due_at_whichever_limit_comes_first() -> None:
    """Documents, characters and age each trigger a commit on their own."""
    cadence = CommitCadence(documents=10, characters=1_000, seconds=30.0)
    now = 1_000.0
    assert not cadence.due(9, 999, since=now, now=now + 29)
    assert cadence.due(10, 0, since=now, now=now)
    assert cadence.due(1, 1_000, since=now, now=now)
    assert cadence.due(1, 1, since=now, now=now + 30)


def test_staged_records_wait_for_the_commit_and_then_all_land(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 2 with a commit every 5 documents: 12 messages in 3 commits, all searchable."""
    root = tmp_path / "mail"
    write_maildir(root, [message(n) for n in range(12)])
    monkeypatch.setattr(mailsync, "MAILDIR_BATCH", 2)
    pipeline = pipeline_for(session, CommitCadence(documents=5, seconds=3600))
    commits: list[int] = []
    real_flush = pipeline.flush

    def counting_flush(*args: object, **kwargs: object) -> int:
        done = real_flush(*args, **kwargs)  # type: ignore[arg-type]
        if done:
            commits.append(session.index.doc_count())
        return done

    monkeypatch.setattr(pipeline, "flush", counting_flush)
    report = mailsync.sync_maildir(pipeline, MaildirSource(name="m", path=root))
    assert report.archived == 12
    assert commits == [6, 12]  # after the 3rd batch (6 >= 5), then at the end of the pass
    assert pending(session) == 0


def test_records_staged_when_the_process_dies_are_indexed_by_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged documents live in memory only: a pass that never commits leaves the rows pending."""
    root = tmp_path / "mail"
    write_maildir(root, [message(n) for n in range(4)])
    datadir = DataDir(tmp_path / "data")
    with datadir.open(create=True) as first:
        pipeline = pipeline_for(first, CommitCadence(documents=100, seconds=3600))
        monkeypatch.setattr(pipeline, "flush", lambda *a, **k: 0)  # dies before any commit
        mailsync.sync_maildir(pipeline, MaildirSource(name="m", path=root))
        assert pending(first) == 4
        assert first.index.doc_count() == 0
    with datadir.open() as second:
        again = pipeline_for(second, CommitCadence())
        report = mailsync.sync_maildir(again, MaildirSource(name="m", path=root))
        assert report.archived == 0  # nothing archived twice
        assert pending(second) == 0
        assert second.index.doc_count() == 4
        rows = sqlite3.connect(datadir.db_path).execute("SELECT COUNT(*) FROM records")
        assert rows.fetchone()[0] == 4


def test_pending_records_are_found_through_the_partial_index(session: Session) -> None:
    """Every pass asks for pending records; on a big archive that must not scan the table."""
    plan = session.conn.execute(f"EXPLAIN QUERY PLAN {PENDING_SQL}").fetchall()
    assert any("USING INDEX records_unindexed" in row["detail"] for row in plan)


def test_schema_1_database_gets_the_new_pending_index(tmp_path: Path) -> None:
    """A database from schema 1 (index on indexed = 0 only) is migrated on open."""
    path = tmp_path / "corrlog.db"
    connect(path).close()
    old = sqlite3.connect(path)  # turned back into what schema 1 had
    old.executescript(
        "DROP INDEX records_unindexed;"
        "CREATE INDEX records_pending ON records(indexed) WHERE indexed = 0;"
        "PRAGMA user_version=1;"
    )
    old.close()
    conn = connect(path)
    names = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "records_unindexed" in names and "records_pending" not in names
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_link_made_after_staging_is_the_one_indexed(session: Session) -> None:
    """Relinking between staging and the commit (threads): the index gets the state's link."""
    from corrlog.index import SearchRequest, search
    from corrlog.ingest_mail import MailItem
    from corrlog.model import Origin, SourceKind

    pipeline = pipeline_for(session, CommitCadence(documents=100, seconds=3600))
    item = MailItem(message(1), Origin(SourceKind.MAILDIR, "m", path="k1", folder=""))
    built = mailsync.commit_items(pipeline, [item], mailsync.MailReport("m"), lambda: None)
    pipeline.stage(built)
    (record_id,) = built
    with session.conn:
        session.state.set_link(record_id, "Acme", "acme-site", "thread")
    pipeline.flush({})
    hits = search(session.index, SearchRequest("", contract="acme-site")).hits
    assert [hit.fields["id"] for hit in hits] == [record_id]
