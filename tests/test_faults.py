"""Faults against real processes: crashes, server outages, damaged index and state, full disk, notes abuse.

Every test prints a `figures:` line (runs, faults injected, items checked, lost, duplicated)
that docs/RELIABILITY.md quotes; set CORRLOG_FIGURES=FILE to collect them as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import pytest

from corrlog.db import LEDGER_TRIGGERS
from corrlog.ledger import entry_hash
from support.cli import CorrlogHome
from support.daemon import DaemonProcess, wait_for
from support.dovecot import DovecotServer
from support.faults import (
    Figures,
    append_many,
    archive_objects,
    capture_all,
    cpu_seconds,
    daemon_config,
    deliver_while_down,
    events,
    imap_uids_in_ledger,
    kill_9,
    log_lines,
    lost_and_duplicated,
    note_revisions_in_ledger,
    peak_rss_mb,
    query,
    repeated_entries,
    rng,
    scalar,
    spawn_daemon,
    stop,
    tail,
    wait_ready,
    within,
)
from support.mail import AGREEMENT_NOTE, add_imap_account, message, set_me, write_maildir

IMAP_RECORDS = "SELECT COUNT(*) FROM records WHERE source = 'imap'"
OUTAGE_EVENTS = ("imap connection lost; reconnecting with backoff", "imap sync failed")


def imap_records(home: CorrlogHome) -> int:
    """Mail records from IMAP."""
    return scalar(home, IMAP_RECORDS)


def live_notes(home: CorrlogHome) -> int:
    """Note records that are not deleted."""
    return scalar(home, "SELECT COUNT(*) FROM records WHERE source = 'notes' AND indexed != -1")


def search_ids(home: CorrlogHome, text: str, *extra: str) -> list[str]:
    """Record ids the CLI finds for a query (fails on an error exit)."""
    result = home.run("search", text, "--format", "ids", "--limit", "5000", *extra)
    assert result.code == 0, result.stderr
    return result.out.split()


def searchable(home: CorrlogHome, text: str) -> bool:
    """Whether the CLI finds at least one hit."""
    result = home.run("search", text, "--format", "ids")
    return result.code == 0 and bool(result.out.strip())


def verify_ok(home: CorrlogHome) -> str:
    """Run `corrlog verify` and return its summary; fail unless the archive checks out."""
    result = home.run("verify")
    assert result.code == 0 and result.out.startswith("ok:"), result.out + result.stderr
    return result.out.strip()


def doctor_lines(home: CorrlogHome) -> dict[str, str]:
    """`corrlog doctor --offline` lines keyed by check name ("ok"/"FAIL" plus the detail)."""
    found = {}
    for line in home.run("doctor", "--offline").out.splitlines():
        mark, _, rest = line.partition("  ")
        name = rest.split(":", 1)[0].strip()
        found[name] = f"{mark.strip()} {rest}"
    return found


def sha(data: bytes) -> str:
    """Hex sha256."""
    return hashlib.sha256(data).hexdigest()


class NoteRevisions:
    """Writes notes and new revisions of them, remembering every revision written."""

    def __init__(self, home: CorrlogHome) -> None:
        self.home = home
        self.current: dict[str, bytes] = {}
        self.written: list[tuple[str, str]] = []
        self.created = 0

    def write(self, relative: str, data: bytes) -> None:
        """Write one revision of a note."""
        path = self.home.note(relative, data)
        self.current[str(path)] = data
        self.written.append((str(path), sha(data)))

    def step(self, rand: Random, recorded: Counter[tuple[str, str]]) -> None:
        """Three new notes, and a new revision of up to three notes already archived.

        A note is only changed again once its current revision is in the ledger, so every
        revision written must end up archived: none may be lost to a later edit.
        """
        archived = [p for p, data in self.current.items() if recorded[(p, sha(data))]]
        for path in rand.sample(archived, min(3, len(archived))):
            data = self.current[path] + f"Revision line {len(self.written)}.\n".encode()
            self.write(str(Path(path).relative_to(self.home.notes)), data)
        for _ in range(3):
            self.created += 1
            n = self.created
            self.write(f"acme/log-{n}.md", f"# Log {n}\nThe notebird{n} entry.\n".encode())


# Crash points ------------------------------------------------------------------------------

TOTAL_MESSAGES = 3000
KILLS = 20


@pytest.mark.slow
@pytest.mark.imap
def test_kill_9_at_20_random_moments_loses_and_duplicates_nothing(
    home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """kill -9 of `corrlog run` 20 times while 3,000 messages and note revisions arrive: verify passes after each restart, 0 lost, 0 duplicated."""
    server = clean_mailboxes
    rand = rng()
    set_me(home)
    add_imap_account(home, server, batch_size=50)
    daemon_config(home)
    notes = NoteRevisions(home)
    notes.write("acme/agreement.md", AGREEMENT_NOTE.encode())
    append_many(server, "alice", "INBOX", [message(n) for n in range(TOTAL_MESSAGES)])
    uids = server.uids("alice", "INBOX")
    assert len(uids) == TOTAL_MESSAGES
    figures = Figures("crash points: kill -9 of corrlog run (IMAP + notes)")
    log = home.root / "daemon.log"
    killed_at: list[int] = []
    for kill in range(KILLS):
        archived = imap_records(home)
        share = (TOTAL_MESSAGES - archived) / (KILLS - kill + 1)
        # Never more than the mailbox holds: once every message is archived, the kill
        # lands while note revisions are still arriving.
        target = min(TOTAL_MESSAGES, archived + max(1, int(share * rand.uniform(0.2, 1.8))))
        proc = spawn_daemon(home, log)
        figures.runs += 1
        try:
            notes.step(rand, note_revisions_in_ledger(home))
            wait_for(
                lambda t=target, p=proc: imap_records(home) >= t or p.poll() is not None,
                120,
                f"{target} messages archived",
            )
            time.sleep(rand.uniform(0.0, 0.2))  # a random moment within the next batches
            assert proc.poll() is None, tail(log)
        finally:
            kill_9(proc)
        figures.faults += 1
        killed_at.append(imap_records(home))
        verify_ok(home)
        assert repeated_entries(home) == []
    ready_before = len(events(log, "ready"))
    final = spawn_daemon(home, log)
    figures.runs += 1
    try:
        wait_ready(final, log, 300, after=ready_before)
    finally:
        assert stop(final) == 0
    summary = verify_ok(home)
    lost_mail, dup_mail = lost_and_duplicated(uids, imap_uids_in_ledger(home, "work", "INBOX"))
    lost_notes, dup_notes = lost_and_duplicated(notes.written, note_revisions_in_ledger(home))
    figures.items = len(uids) + len(notes.written)
    figures.lost, figures.duplicated = lost_mail + lost_notes, dup_mail + dup_notes
    figures.extra.update(
        messages=len(uids),
        note_revisions=len(notes.written),
        records_at_kills=killed_at,
        verify=summary,
    )
    figures.report()
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert imap_records(home) == TOTAL_MESSAGES
    ingests = "SELECT COUNT(*) FROM ledger WHERE event = 'ingest' AND origin LIKE 'imap:%'"
    assert scalar(home, ingests) == TOTAL_MESSAGES
    assert set(imap_uids_in_ledger(home, "work", "INBOX")) == set(uids)
    assert doctor_lines(home)["index"].startswith("ok")
    for n in rand.sample(range(TOTAL_MESSAGES), 5):
        assert len(search_ids(home, f"word{n}")) == 1


# Server faults -----------------------------------------------------------------------------


def outage_events(log: Path) -> int:
    """How many times the daemon has logged a lost or failed IMAP connection."""
    return sum(1 for line in log_lines(log) if line.get("event") in OUTAGE_EVENTS)


def last_sync(home: CorrlogHome, source: str) -> str:
    """When the daemon last finished a pass over a source (from status.json)."""
    try:
        data = json.loads((home.data / "status.json").read_text())
    except (OSError, json.JSONDecodeError):
        return ""
    return str(data.get("sources", {}).get(source, {}).get("last_sync") or "")


@pytest.mark.slow
@pytest.mark.imap
def test_dovecot_killed_10_times_loses_nothing_and_never_spins(
    home: CorrlogHome, dovecot_fresh: DovecotServer
) -> None:
    """Dovecot's process group killed 10 times (during IDLE and mid-fetch) with mail delivered while down: all archived once, the daemon stays up and idles (< 5% CPU) while the server is down."""
    server = dovecot_fresh
    rand = rng()
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    add_imap_account(home, server, batch_size=50)
    daemon_config(home)
    log = home.root / "daemon.log"
    figures = Figures("server faults: Dovecot process group killed (IDLE and fetch)")
    proc = spawn_daemon(home, log)
    sent = 0
    down_seconds = down_cpu = worst = 0.0
    mid_fetch = 0
    try:
        wait_ready(proc, log, 60)
        figures.runs = 1
        for round_ in range(10):
            if round_ % 2 == 0:  # idle: everything archived, the IDLE connection waiting
                append_many(server, "alice", "INBOX", [message(sent + k) for k in range(5)])
                sent += 5
                wait_for(lambda s=sent: imap_records(home) >= s, 60, "mail archived")
                time.sleep(rand.uniform(0.2, 1.5))
            else:  # fetch: a burst of 300 is being fetched in batches of 50
                before = imap_records(home)
                append_many(server, "alice", "INBOX", [message(sent + k) for k in range(300)])
                sent += 300
                wait_for(lambda b=before: imap_records(home) > b, 60, "fetch started")
                time.sleep(rand.uniform(0.0, 0.3))
            noticed = outage_events(log)
            archived_at_kill = imap_records(home)
            server.kill()
            down_at = time.monotonic()
            figures.faults += 1
            mid_fetch += round_ % 2 == 1 and archived_at_kill < sent
            outage = rand.uniform(3.0, 5.0)
            deliver_while_down(server, "alice", [message(sent + k) for k in range(3)])
            sent += 3
            wait_for(lambda n=noticed: outage_events(log) > n, 20, "the daemon notices")
            start, cpu_start = time.monotonic(), cpu_seconds(proc.pid)
            time.sleep(max(1.0, down_at + outage - time.monotonic()))  # the outage itself
            span, used = time.monotonic() - start, cpu_seconds(proc.pid) - cpu_start
            down_seconds, down_cpu = down_seconds + span, down_cpu + used
            worst = max(worst, 100 * used / span)
            assert proc.poll() is None, tail(log)
            server.start()
        uids = server.uids("alice", "INBOX")
        assert len(uids) == sent
        wait_for(lambda: imap_records(home) >= sent, 120, f"all {sent} archived")
        done = datetime.now(UTC).isoformat()
        wait_for(lambda: last_sync(home, "work") > done, 30, "one more complete poll")
    finally:
        code = stop(proc)
    assert code == 0
    lost, duplicated = lost_and_duplicated(uids, imap_uids_in_ledger(home, "work", "INBOX"))
    percent = 100 * down_cpu / down_seconds
    figures.items, figures.lost, figures.duplicated = len(uids), lost, duplicated
    figures.extra.update(
        killed_mid_fetch=mid_fetch,
        seconds_down=round(down_seconds, 1),
        cpu_percent_while_down=round(percent, 2),
        worst_outage_cpu_percent=round(worst, 2),
        reconnects=len(events(log, "imap connection lost; reconnecting with backoff")),
    )
    figures.report()
    assert (lost, duplicated) == (0, 0)
    assert imap_records(home) == sent
    assert percent < 5.0
    verify_ok(home)


@pytest.mark.slow
@pytest.mark.imap
def test_uidvalidity_reset_under_a_running_daemon_duplicates_nothing(
    home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A folder recreated (new UIDVALIDITY) with the same 30 messages and 5 new ones while the daemon runs: 35 records, 35 ingests, no object twice."""
    server = clean_mailboxes
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    server.create_folder("alice", "Projects")
    first = [message(n) for n in range(30)]
    append_many(server, "alice", "Projects", first)
    add_imap_account(home, server, folders=["INBOX", "Projects"])
    daemon_config(home)
    figures = Figures("UIDVALIDITY reset under a running daemon")
    daemon = DaemonProcess(home).start()
    figures.runs = 1
    try:
        wait_for(lambda: imap_records(home) == 30, 30, "30 archived")
        objects = archive_objects(home)
        old = server.uidvalidity("alice", "Projects")
        server.delete_folder("alice", "Projects")
        server.create_folder("alice", "Projects")
        append_many(server, "alice", "Projects", first + [message(n) for n in range(30, 35)])
        new = server.uidvalidity("alice", "Projects")
        assert new != old
        figures.faults = 1
        fresh = "SELECT COUNT(*) FROM ledger WHERE origin LIKE ?"
        pattern = f"imap:work/Projects;UIDVALIDITY={new}/%"
        wait_for(
            lambda: scalar(home, fresh, pattern) == 35, 30, "35 seen under the new UIDVALIDITY"
        )
        assert daemon.events("UIDVALIDITY changed; rescanning folder")
    finally:
        assert daemon.stop() == 0
    ingests = "SELECT COUNT(*) FROM ledger WHERE event = 'ingest' AND origin LIKE 'imap:%'"
    figures.items = 35
    figures.duplicated = scalar(home, ingests) - 35 + len(repeated_entries(home))
    figures.lost = 35 - imap_records(home)
    figures.report()
    assert imap_records(home) == 35
    assert scalar(home, ingests) == 35
    assert repeated_entries(home) == []
    added = sorted(set(archive_objects(home)) - set(objects))
    assert len(added) == 5
    verify_ok(home)


# Index damage ------------------------------------------------------------------------------


def _segments(index: Path) -> list[Path]:
    return sorted(index.glob("*.seg"))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


INDEX_DAMAGE: dict[str, Callable[[Path], None]] = {
    "one segment deleted": lambda d: _segments(d)[0].unlink(),
    "every segment truncated": lambda d: [_truncate(p) for p in _segments(d)] and None,
    "one segment zeroed": lambda d: _segments(d)[-1].write_bytes(
        bytes(_segments(d)[-1].stat().st_size)
    ),
    "table of contents emptied": lambda d: [os.truncate(p, 0) for p in d.glob("*.toc")] and None,
    "index folder deleted": shutil.rmtree,
}

QUERIES = (
    "word7",
    "site",
    "from:acme.example",
    "kind:agreement",
    "contract:acme-site",
    "date:[2026-03-02 to 2026-03-05]",
    "okapi OR narwhal",
)


def _search_snapshot(home: CorrlogHome) -> dict[str, list[str]]:
    return {q: search_ids(home, q, "--sort", "date") for q in QUERIES}


@pytest.fixture
def indexed_home(home: CorrlogHome) -> CorrlogHome:
    """A home with notes and 300 Maildir messages, synced in several commits."""
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    home.note("acme/diary.md", "# Diary\nAn okapi was seen.\n")
    home.note("misc/ideas.md", "# Ideas\nA narwhal plan.\n")
    daemon_config(home, poll="1h")
    for start in range(0, 300, 100):
        write_maildir(home.data / "maildir", [message(n) for n in range(start, start + 100)])
        home.ok("sync")
    return home


@pytest.mark.slow
def test_damaged_index_is_rebuilt_at_start_with_the_same_results(indexed_home: CorrlogHome) -> None:
    """Segments deleted, truncated or zeroed, the TOC emptied, the folder removed: the daemon logs the damage, rebuilds, and search results equal those before."""
    home = indexed_home
    figures = Figures("index damage while the daemon is stopped")
    daemon = DaemonProcess(home).start()
    figures.runs = 1
    assert daemon.stop() == 0
    before = _search_snapshot(home)
    assert all(before.values()), before
    for number, (name, damage) in enumerate(INDEX_DAMAGE.items(), start=1):
        damage(home.data / "index")
        figures.faults += 1
        daemon = DaemonProcess(home, f"after-damage-{number}").start(timeout=120)
        figures.runs += 1
        try:
            assert daemon.events("index damaged; rebuilding it from the archive"), name
            assert daemon.events("index rebuilt"), name
        finally:
            assert daemon.stop() == 0
        after = _search_snapshot(home)
        figures.items += sum(len(ids) for ids in after.values())
        figures.lost += sum(len(set(before[q]) - set(after[q])) for q in QUERIES)
        figures.duplicated += sum(len(after[q]) - len(set(after[q])) for q in QUERIES)
        assert after == before, name
    figures.extra.update(kinds=len(INDEX_DAMAGE), queries=len(QUERIES))
    figures.report()
    assert (figures.lost, figures.duplicated) == (0, 0)


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_search_on_a_damaged_index_says_to_reindex(indexed_home: CorrlogHome, damage: str) -> None:
    """A search against a damaged index is one clear error naming `corrlog reindex`, never a traceback."""
    INDEX_DAMAGE[damage](indexed_home.data / "index")
    result = indexed_home.run("search", "word7")
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("corrlog: error:"), result.stderr[-2000:]
    assert "reindex" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# State damage ------------------------------------------------------------------------------


@pytest.fixture
def ledger_home(home: CorrlogHome) -> CorrlogHome:
    """A synced home with a ledger of about 20 entries and a Maildir for more mail."""
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    daemon_config(home, poll="1h")
    write_maildir(home.data / "maildir", [message(n) for n in range(20)])
    home.ok("sync")
    return home


def _tamper(db: Path, kind: str, seq: int) -> None:
    """Change the ledger behind corrlog's back (the append-only triggers dropped first)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER ledger_no_update")
        conn.execute("DROP TRIGGER ledger_no_delete")
        if kind == "altered":
            conn.execute("UPDATE ledger SET detail = ? WHERE seq = ?", ('{"forged":1}', seq))
        elif kind == "rehashed":
            row = conn.execute("SELECT * FROM ledger WHERE seq = ?", (seq,)).fetchone()
            detail = '{"forged":1}'
            digest = entry_hash(row[0], row[1], row[2], row[3], row[4], detail, row[6])
            conn.execute(
                "UPDATE ledger SET detail = ?, hash = ? WHERE seq = ?", (detail, digest, seq)
            )
        else:
            conn.execute("DELETE FROM ledger WHERE seq = ?", (seq,))
        conn.commit()
    finally:
        conn.close()


BROKEN = {
    "altered": "ledger entry 10: contents do not match its hash",
    "rehashed": "ledger entry 11: previous-hash link broken",
    "removed": "ledger entry 11: expected sequence number 10",
}


def _assert_refused(code: int, log: Path, position: str) -> None:
    """The daemon exited 1 with one error line naming `position`, and no traceback."""
    output = log.read_text()
    errors = [line for line in output.splitlines() if line.startswith("corrlog: error:")]
    assert code == 1
    assert "Traceback" not in output
    assert len(errors) == 1 and position in errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_ledger_chain_is_named_and_never_appended_to(
    ledger_home: CorrlogHome, kind: str
) -> None:
    """An altered, re-hashed or removed entry: verify and doctor name it, sync and the daemon refuse to append."""
    home = ledger_home
    figures = Figures(f"broken ledger chain ({kind} entry)", runs=3, faults=1)
    _tamper(home.data / "corrlog.db", kind, 10)
    position = BROKEN[kind]
    entries = scalar(home, "SELECT COUNT(*) FROM ledger")
    last = scalar(home, "SELECT MAX(seq) FROM ledger")
    write_maildir(home.data / "maildir", [message(n) for n in range(20, 25)])
    home.note("acme/new.md", "# New\nAfter the damage.\n")

    verify = home.run("verify")
    assert verify.code == 1
    assert position in verify.out
    assert verify.out.strip().splitlines()[-1].startswith("FAILED:")
    doctor = home.run("doctor", "--offline")
    assert doctor.code == 1
    assert any(line.startswith("FAIL  ledger: " + position) for line in doctor.out.splitlines())
    sync = home.run("sync")
    assert sync.code == 1
    assert "Traceback" not in sync.stderr
    assert position in sync.stderr
    log = home.root / "refused.log"
    daemon = spawn_daemon(home, log)
    try:
        code = daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            kill_9(daemon)
    figures.items = entries
    figures.lost = entries - scalar(home, "SELECT COUNT(*) FROM ledger")
    figures.report()
    _assert_refused(code, log, position)
    assert scalar(home, "SELECT COUNT(*) FROM ledger") == entries
    assert scalar(home, "SELECT MAX(seq) FROM ledger") == last


@pytest.mark.slow
def test_ledger_damaged_while_the_daemon_runs_stops_its_next_pass(
    ledger_home: CorrlogHome,
) -> None:
    """An entry removed behind a running daemon's back, the triggers re-created: the next
    pass (a new note) refuses to append, names the entry in one line, and the daemon exits."""
    home = ledger_home
    log = home.root / "running.log"
    daemon = spawn_daemon(home, log)
    try:
        wait_ready(daemon, log, 60)
        _tamper(home.data / "corrlog.db", "removed", 10)
        with sqlite3.connect(home.data / "corrlog.db") as conn:
            for sql in LEDGER_TRIGGERS.values():
                conn.execute(sql)
        conn.close()
        entries = scalar(home, "SELECT COUNT(*) FROM ledger")
        home.note("acme/new.md", "# New\nWritten after the damage.\n")
        code = daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            kill_9(daemon)
    _assert_refused(code, log, BROKEN["removed"])
    assert scalar(home, "SELECT COUNT(*) FROM ledger") == entries


@pytest.mark.slow
def test_truncated_database_is_reported_and_the_daemon_refuses_to_start(
    ledger_home: CorrlogHome,
) -> None:
    """corrlog.db cut in half: verify, doctor, sync and the daemon each say so in one line naming the file."""
    home = ledger_home
    figures = Figures("truncated corrlog.db", runs=4, faults=1, items=1)
    db = home.data / "corrlog.db"
    size = db.stat().st_size
    os.truncate(db, size // 2 // 4096 * 4096)
    verify = home.run("verify")
    assert verify.code == 1
    assert verify.stderr.startswith("corrlog: error:") and str(db) in verify.stderr
    doctor = home.run("doctor", "--offline")
    assert doctor.code == 1
    assert any(line.startswith(f"FAIL  database: {db}") for line in doctor.out.splitlines())
    sync = home.run("sync")
    assert sync.code == 1 and str(db) in sync.stderr
    log = home.root / "refused.log"
    daemon = spawn_daemon(home, log)
    try:
        code = daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            kill_9(daemon)
    output = log.read_text()
    figures.report()
    assert code == 1
    assert "Traceback" not in output + verify.stderr + sync.stderr
    errors = [line for line in output.splitlines() if line.startswith("corrlog: error:")]
    assert len(errors) == 1 and str(db) in errors[0]
    assert db.stat().st_size == size // 2 // 4096 * 4096


# Disk full ---------------------------------------------------------------------------------

SMALL_DISK = 8 * 1024 * 1024
DISK_MESSAGES = 40
_WORDS = ("invoice", "design", "page", "draft", "review", "budget", "meeting", "logo", "plan")


@pytest.fixture
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An 8 MB tmpfs mounted for the test (needs root; skipped where it cannot be mounted)."""
    mount = tmp_path_factory.mktemp("small-disk")
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount an 8 MB tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _big_messages(rand: Random) -> list[bytes]:
    return [
        message(n, body=" ".join(rand.choice(_WORDS) for _ in range(9000)) + f" word{n}\n")
        for n in range(DISK_MESSAGES)
    ]


def _free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def _pages(size: int) -> int:
    return -(-size // 4096) * 4096


def _errors(log: Path) -> list[dict[str, object]]:
    """Error lines the daemon logged (a failed pass or task, retried on the next event)."""
    return [line for line in log_lines(log) if line.get("level") == "error"]


def _half_written(home: CorrlogHome) -> list[str]:
    """Temp files left anywhere in the data dir (archive puts, status, index)."""
    return sorted(
        str(p.relative_to(home.data))
        for p in home.data.rglob("*")
        if p.is_file() and (p.name.startswith("put-") or p.suffix == ".tmp")
    )


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["archive", "index"])
def test_disk_full_stops_cleanly_and_resumes_when_space_is_freed(
    tmp_path_factory: pytest.TempPathFactory, small_disk: Path, stage: str
) -> None:
    """The data dir on a full 8 MB tmpfs (no room for the archive, or for the index after it): one clear error, nothing half-written, the daemon stays up and finishes once space is freed."""
    rand = rng()
    figures = Figures(f"disk full ({stage})", items=DISK_MESSAGES)
    root = tmp_path_factory.mktemp("diskfull")
    data = small_disk / "data"
    home = CorrlogHome(root, root / "config" / "corrlog.toml", data, data / "notes")
    assert home.run("init", "--data-dir", str(data)).code == 0
    capture_all(home)
    daemon_config(home)
    maildir = root / "maildir"
    raws = _big_messages(rand)
    write_maildir(maildir, raws)
    home.config.write_text(
        home.config.read_text() + f'\n[[maildir]]\nname = "big"\npath = "{maildir}"\n'
    )
    archive_need = sum(_pages(len(raw)) for raw in raws)
    # Room for the database and the empty index (~300 KB on first open), not for the archive.
    keep_free = 640 * 1024 if stage == "archive" else archive_need + 640 * 1024
    ballast = small_disk / "ballast"
    ballast.write_bytes(bytes(max(0, _free(small_disk) - keep_free)))

    first = home.run("sync")
    figures.runs, figures.faults = 1, 1
    assert first.code != 0, first.out
    assert "Traceback" not in first.stderr, first.stderr[-3000:]
    errors = [line for line in first.stderr.splitlines() if line.startswith("corrlog: error:")]
    assert len(errors) == 1 and "space" in errors[0], first.stderr[-3000:]
    assert _half_written(home) == []
    verify_ok(home)

    log = root / "daemon.log"
    proc = spawn_daemon(home, log)
    figures.runs += 1
    exits = 0
    indexed = "SELECT COUNT(*) FROM records WHERE indexed = 1"
    try:
        within(lambda: len(_errors(log)) >= 2 or proc.poll() is not None, 60)
        survived = proc.poll() is None
        ballast.unlink()
        if not survived:  # carry on as systemd's Restart=on-failure would, to count losses
            exits += 1
            proc = spawn_daemon(home, log)
            figures.runs += 1
        resumed = within(
            lambda: scalar(home, indexed) == DISK_MESSAGES or proc.poll() is not None, 60
        )
        exits += proc.poll() is not None
    finally:
        code = stop(proc)
    ingested = "SELECT COUNT(*) FROM ledger WHERE origin LIKE 'maildir:big:%'"
    figures.lost = DISK_MESSAGES - scalar(home, indexed)
    figures.duplicated = scalar(home, ingested) - scalar(home, "SELECT COUNT(*) FROM records")
    figures.extra.update(daemon_exits=exits, half_written=len(_half_written(home)))
    figures.report()
    assert survived, f"the daemon exited on a full disk instead of retrying:\n{tail(log)}"
    assert resumed and code == 0, tail(log)
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert _half_written(home) == []
    verify_ok(home)
    assert doctor_lines(home)["index"].startswith("ok")
    assert len(search_ids(home, "word7")) == 1


@pytest.mark.slow
def test_disk_full_during_a_poll_heals_once_space_is_freed(
    tmp_path_factory: pytest.TempPathFactory, small_disk: Path
) -> None:
    """The disk fills while the daemon runs; mail found by a poll fits in the archive but not in the index: once space is freed every message is indexed without a restart."""
    rand = rng()
    figures = Figures("disk full during a poll (daemon running)", items=DISK_MESSAGES)
    root = tmp_path_factory.mktemp("diskfull-live")
    data = small_disk / "data"
    home = CorrlogHome(root, root / "config" / "corrlog.toml", data, data / "notes")
    assert home.run("init", "--data-dir", str(data)).code == 0
    capture_all(home)
    daemon_config(home)
    maildir = root / "maildir"
    home.config.write_text(
        home.config.read_text() + f'\n[[maildir]]\nname = "big"\npath = "{maildir}"\n'
    )
    log = root / "daemon.log"
    proc = spawn_daemon(home, log)
    figures.runs = 1
    indexed = "SELECT COUNT(*) FROM records WHERE indexed = 1"
    ballast = small_disk / "ballast"
    try:
        wait_ready(proc, log, 60)
        raws = _big_messages(rand)
        keep_free = sum(_pages(len(raw)) for raw in raws) + 640 * 1024
        ballast.write_bytes(bytes(max(0, _free(small_disk) - keep_free)))
        write_maildir(maildir, raws)
        figures.faults = 1
        failed = within(lambda: _errors(log) or proc.poll() is not None, 60)
        ballast.unlink()
        healed = within(
            lambda: scalar(home, indexed) == DISK_MESSAGES or proc.poll() is not None, 60
        )
    finally:
        code = stop(proc)
    figures.lost = DISK_MESSAGES - scalar(home, indexed)
    figures.duplicated = scalar(
        home, "SELECT COUNT(*) FROM ledger WHERE origin LIKE 'maildir:%'"
    ) - scalar(home, "SELECT COUNT(*) FROM records")
    figures.extra.update(
        archived=scalar(home, "SELECT COUNT(*) FROM records"), half_written=len(_half_written(home))
    )
    figures.report()
    assert failed and code == 0, tail(log)
    assert healed, f"{figures.lost} archived messages still not indexed 60 s after space was freed"
    assert _half_written(home) == []
    verify_ok(home)


# Notes folder abuse --------------------------------------------------------------------------


def _start_notes_daemon(
    home: CorrlogHome, log: Path, prefix: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """`corrlog run` over the notes folder only (optionally under a wrapper like setpriv)."""
    daemon_config(home, poll="1h")
    proc = spawn_daemon(home, log, prefix=prefix)
    wait_ready(proc, log, 120)
    return proc


def _problems(log: Path, path: Path) -> list[dict[str, object]]:
    """Warnings and errors logged about one path."""
    return [
        line
        for line in log_lines(log)
        if line.get("path") == str(path) and line.get("level") in ("warning", "error")
    ]


def _another_pass(home: CorrlogHome, word: str) -> None:
    """Make the daemon run one more notes pass and wait until it is done."""
    home.note(f"pass-{word}.md", f"# Pass\nThe {word} marker.\n")
    wait_for(lambda: searchable(home, word), 30, f"{word} searchable")


@pytest.mark.slow
def test_rename_storm_of_1000_notes_in_2_seconds(home: CorrlogHome) -> None:
    """1,000 notes renamed within 2 s under the watcher: each old path deleted once, each new path recorded once, all searchable."""
    figures = Figures("notes: rename storm", runs=1, items=1000)
    for n in range(1000):
        home.note(f"storm/a-{n}.md", f"# Storm {n}\nstormword{n} text.\n")
    log = home.root / "daemon.log"
    proc = _start_notes_daemon(home, log)
    try:
        assert live_notes(home) == 1000
        start = time.monotonic()
        for n in range(1000):
            (home.notes / "storm" / f"a-{n}.md").rename(home.notes / "storm" / f"b-{n}.md")
            figures.faults += 1
            if n % 50 == 49:  # pace the storm over about 2 s
                time.sleep(max(0.0, start + 2.0 * (n + 1) / 1000 - time.monotonic()))
        storm = time.monotonic() - start
        deleted = "SELECT COUNT(*) FROM ledger WHERE event = 'delete'"
        wait_for(lambda: scalar(home, deleted) >= 1000, 120, "1000 deletions recorded")
        wait_for(lambda: live_notes(home) == 1000, 60, "1000 live notes")
        _another_pass(home, "calmmarker")
        assert proc.poll() is None, tail(log)
    finally:
        code = stop(proc)
    recorded = note_revisions_in_ledger(home)
    new_paths = [str(home.notes / "storm" / f"b-{n}.md") for n in range(1000)]
    per_new = Counter(path for path, _sha in recorded if path in set(new_paths))
    per_old = Counter(
        json.loads(d)["path"]
        for (d,) in query(home, "SELECT detail FROM ledger WHERE event = 'delete'")
    )
    figures.lost = sum(1 for p in new_paths if per_new[p] == 0)
    figures.duplicated = sum(c - 1 for c in per_new.values() if c > 1) + sum(
        c - 1 for c in per_old.values() if c > 1
    )
    figures.extra.update(storm_seconds=round(storm, 2))
    figures.report()
    assert code == 0
    assert storm < 3.0
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert len(per_old) == 1000
    for n in (0, 499, 999):
        hits = json.loads(home.ok("search", f"stormword{n}", "--format", "json").out)
        assert [h["origin"] for h in hits] == [str(home.notes / "storm" / f"b-{n}.md")]
    archived = [line for line in events(log, "note archived") if line["path"] in set(new_paths)]
    assert len(archived) == 1000


def _searchable_within(
    home: CorrlogHome, word: str, timeout: float, proc: subprocess.Popen[bytes]
) -> bool:
    """Whether `word` becomes searchable within `timeout` s (False at once if the daemon died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if searchable(home, word):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_50_mb_note_is_archived_and_does_not_stall_the_writer(home: CorrlogHome) -> None:
    """A 50 MB note is archived byte for byte and searchable, and a small note written after it is searchable within 45 s."""
    figures = Figures("notes: 50 MB note", runs=1, faults=1, items=2)
    log = home.root / "daemon.log"
    proc = _start_notes_daemon(home, log)
    rand = rng()
    lines = [" ".join(rand.choice(_WORDS) for _ in range(14)) + "\n" for _ in range(500)]
    big = home.notes / "big.md"
    small = whole = False
    latency = rss = 0.0
    try:
        with big.open("w", encoding="utf-8") as handle:
            handle.write("# Big export\nThe aardvark heading.\n")
            while handle.tell() < 50 * 1024 * 1024:
                handle.writelines(lines)
        home.note("after.md", "# After\nA pangolin follows.\n")
        start = time.monotonic()
        small = _searchable_within(home, "pangolin", 45, proc)
        latency = time.monotonic() - start
        whole = small and _searchable_within(home, "aardvark", 60, proc)
        rss = peak_rss_mb(proc.pid) if proc.poll() is None else 0.0
        assert proc.poll() is None, tail(log)
    finally:
        finished = small and proc.poll() is None
        if finished:
            assert stop(proc) == 0
        else:
            kill_9(proc)  # busy with the big note: SIGTERM would wait for the whole pass
    recorded = note_revisions_in_ledger(home)[(str(big), sha(big.read_bytes()))]
    figures.lost = int(finished and not recorded)
    figures.extra.update(
        finished=finished, small_note_seconds=round(latency, 1), peak_rss_mb=round(rss, 1)
    )
    figures.report()
    assert small, "a note written after a 50 MB note was not searchable within 45 s"
    assert whole and recorded == 1


@pytest.mark.slow
def test_symlink_loops_are_logged_once_and_never_followed(home: CorrlogHome) -> None:
    """A note symlinked to itself, two notes linked to each other and a folder linked to its parent: each loop logged once, real notes indexed once."""
    figures = Figures("notes: symlink loops", runs=1, faults=4, items=3)
    home.note("real/one.md", "# One\nA quokka note.\n")
    (home.notes / "self.md").symlink_to("self.md")
    (home.notes / "ping.md").symlink_to("pong.md")
    (home.notes / "pong.md").symlink_to("ping.md")
    (home.notes / "real" / "up").symlink_to("..")
    log = home.root / "daemon.log"
    proc = _start_notes_daemon(home, log)
    try:
        _another_pass(home, "firstmarker")
        _another_pass(home, "secondmarker")
        assert proc.poll() is None, tail(log)
    finally:
        code = stop(proc)
    loops = [home.notes / name for name in ("self.md", "ping.md", "pong.md")]
    logged = {p.name: len(_problems(log, p)) for p in loops}
    figures.report()
    assert code == 0
    assert len(search_ids(home, "quokka")) == 1
    assert live_notes(home) == 3
    assert logged == {"self.md": 1, "ping.md": 1, "pong.md": 1}


@pytest.mark.slow
def test_unreadable_note_is_logged_once_and_the_rest_indexed(home: CorrlogHome) -> None:
    """A note without read permission is skipped with one log line (as root, the daemon runs without CAP_DAC_OVERRIDE so the mode applies)."""
    prefix = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root chmod 000 does not stop reads, and setpriv is not installed")
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    figures = Figures("notes: unreadable note", runs=1, faults=1, items=4)
    secret = home.note("locked.md", "# Locked\nA tapir secret.\n")
    secret.chmod(0)
    home.note("open.md", "# Open\nA kinkajou note.\n")
    log = home.root / "daemon.log"
    proc = _start_notes_daemon(home, log, prefix)
    try:
        _another_pass(home, "firstmarker")
        _another_pass(home, "secondmarker")
        assert proc.poll() is None, tail(log)
    finally:
        code = stop(proc)
    problems = _problems(log, secret)
    figures.report()
    assert code == 0
    assert len(search_ids(home, "kinkajou")) == 1
    assert search_ids(home, "tapir") == []
    assert [p["event"] for p in problems][:1] == ["cannot read note; skipped"]
    assert len(problems) == 1


@pytest.mark.slow
def test_folder_replaced_by_a_file_of_the_same_name(home: CorrlogHome) -> None:
    """A notes sub-folder replaced by a note file with its name: its notes deleted once each, the new file indexed, nothing crashes."""
    figures = Figures("notes: folder replaced by a file", runs=1, faults=1, items=4)
    folder = home.notes / "journal.md"
    olds = [home.note(f"journal.md/day-{n}.md", f"# Day {n}\nolddayword{n}\n") for n in range(3)]
    log = home.root / "daemon.log"
    proc = _start_notes_daemon(home, log)
    try:
        assert live_notes(home) == 3
        shutil.rmtree(folder)
        folder.write_text("# Journal\nThe new wombat journal.\n")
        wait_for(lambda: searchable(home, "wombat"), 30, "the new file searchable")
        gone = within(lambda: live_notes(home) == 1, 30)
        _another_pass(home, "latermarker")
        assert proc.poll() is None, tail(log)
    finally:
        code = stop(proc)
    deletions = Counter(
        json.loads(d)["path"]
        for (d,) in query(home, "SELECT detail FROM ledger WHERE event = 'delete'")
    )
    figures.lost = 3 - len(deletions)
    figures.duplicated = sum(c - 1 for c in deletions.values())
    figures.report()
    assert code == 0
    assert gone, "the notes of the replaced folder are still live records after 30 s"
    assert deletions == Counter({str(p): 1 for p in olds})
    assert all(search_ids(home, f"olddayword{n}") == [] for n in range(3))
    assert len(search_ids(home, "wombat")) == 1
    said = Counter(e["path"] for e in events(log, "note deleted; archived revisions kept"))
    assert said == Counter({str(p): 1 for p in olds})
