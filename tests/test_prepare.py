"""Parsing in worker processes: the same records as in-process, and a dead worker loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import pytest

from corrlog import mailsync, prepare
from corrlog.config import MaildirSource
from corrlog.datadir import DataDir
from corrlog.ingest_mail import prepare_mail
from corrlog.pipeline import Pipeline
from corrlog.rules.classify import DEFAULT_RULES
from support.mail import CLIENT, ME, message, write_maildir

ME_SET = frozenset({ME})


def records(data: Path) -> list[tuple[str, ...]]:
    """Every record's id, kind, direction and subject."""
    with sqlite3.connect(data / "corrlog.db") as conn:
        return conn.execute(
            "SELECT id, kind, direction, subject, sha256 FROM records ORDER BY id"
        ).fetchall()


def sync(data: Path, root: Path) -> mailsync.MailReport:
    """One Maildir pass into `data`."""
    with DataDir(data).open(create=True) as session:
        pipeline = Pipeline.load(session, [], ME_SET, UTC, capture_all=True)
        return mailsync.sync_maildir(pipeline, MaildirSource(name="m", path=root))


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    """Eleven messages, incoming and outgoing, one of them unparseable."""
    root = tmp_path / "mail"
    write_maildir(root, [message(n) for n in range(8)])
    write_maildir(root, [message(n, sender=ME, to=CLIENT, body="Delivered v2.") for n in (8, 9)])
    write_maildir(root, [b""])  # an empty file: archived, quarantined
    return root


def test_workers_build_the_same_records_as_the_main_process(
    mail_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass with spawned workers and one without archive identical records."""
    monkeypatch.setattr(prepare, "POOL_THRESHOLD", 0)
    monkeypatch.setattr(mailsync, "MAILDIR_BATCH", 4)  # several batches in flight
    started: list[int] = []
    real_start = prepare.Preparer.start

    def start(self: prepare.Preparer) -> None:
        real_start(self)
        started.append(self.workers)

    monkeypatch.setattr(prepare.Preparer, "start", start)
    with_workers = sync(tmp_path / "a", mail_root)
    monkeypatch.setattr(prepare, "POOL_THRESHOLD", 10**9)
    in_process = sync(tmp_path / "b", mail_root)
    assert started[0] == prepare.worker_count() > 1
    assert started[1] == 0
    assert with_workers.archived == in_process.archived == 11
    assert with_workers.quarantined == 1
    assert records(tmp_path / "a") == records(tmp_path / "b")


def test_a_killed_worker_means_parsing_in_process_not_a_lost_message(
    mail_root: Path,
) -> None:
    """SIGKILL to every worker mid-pass: the batch is parsed in-process, with the same results."""
    raws = [p.read_bytes() for p in sorted(mail_root.rglob("*")) if p.is_file()]
    expected = [prepare_mail(raw, me=ME_SET, rules=DEFAULT_RULES) for raw in raws]
    prep = prepare.Preparer(ME_SET, DEFAULT_RULES, workers=2)
    prep.start()
    try:
        assert prep.submit(raws)() == expected  # the workers are up and right
        assert prep._pool is not None
        for pid in list(prep._pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        assert prep.submit(raws)() == expected
        assert prep._pool is None  # from now on in-process
        assert prep.submit(raws)() == expected
    finally:
        prep.close()


PARENT = """
import sys
from corrlog.prepare import Preparer
from corrlog.rules.classify import DEFAULT_RULES
if __name__ == "__main__":
    prep = Preparer(frozenset(), DEFAULT_RULES, workers=2)
    prep.start()
    prep.submit([b"Subject: x\\r\\n\\r\\nhello"] * 200)()
    print(" ".join(map(str, prep._pool._processes)), flush=True)
    sys.stdin.read()  # wait to be killed
"""


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    """kill -9 of the process running a pass leaves no orphaned parse workers behind."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert workers and all(map(alive, workers))
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10 * prepare.ORPHAN_CHECK
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(alive, workers))


def test_words_analysed_in_workers_equal_the_indexed_texts() -> None:
    """The words a worker sends along are exactly what the index would analyse itself."""
    from corrlog.analysis import analyse
    from corrlog.ingest_mail import MailItem, mail_record
    from corrlog.model import Origin, SourceKind

    fixtures = sorted((Path(__file__).parent / "fixtures" / "mail").glob("*.eml"))
    assert fixtures
    for path in fixtures:
        raw = path.read_bytes()
        ready = prepare_mail(raw, me=frozenset(), rules=DEFAULT_RULES)
        item = MailItem(raw, Origin(SourceKind.MAILDIR, "box", path=path.name))
        doc = mail_record(item, contracts={}, me=frozenset(), thread_links={}, prepared=ready)
        assert ready.words is not None, path.name
        assert doc.words == ready.words
        texts = (doc.record.subject, doc.record.text, doc.attachment_text, doc.fulltext)
        assert ready.words == analyse(*texts), path.name
        assert any(ready.words.values()), path.name
