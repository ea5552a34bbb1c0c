"""`corrlog run` end to end: live mail and notes, outages, crashes, signals, concurrency, idle cost."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cli import CorrlogHome
from support.daemon import DaemonProcess, count, wait_for
from support.dovecot import DovecotServer
from support.mail import (
    AGREEMENT_NOTE,
    CLIENT,
    ME,
    add_imap_account,
    message,
    set_me,
    write_maildir,
)

pytestmark = [pytest.mark.imap, pytest.mark.slow]


def fast_daemon_config(home: CorrlogHome, poll: str = "2s") -> None:
    """Short poll and flag intervals for tests."""
    text = home.config.read_text().replace(
        "[notes]",
        f'[daemon]\npoll_interval = "{poll}"\ncheck_interval = "1m"\ndebounce = 0.2\n\n[notes]',
    )
    home.config.write_text(text)


def searchable(home: CorrlogHome, query: str) -> bool:
    """Whether the CLI finds at least one hit for `query`."""
    result = home.run("search", query, "--format", "ids")
    return result.code == 0 and bool(result.out.strip())


def latency(home: CorrlogHome, query: str, timeout: float) -> float:
    """Seconds until `query` is searchable through the CLI."""
    start = time.monotonic()
    wait_for(lambda: searchable(home, query), timeout, f"{query!r} searchable", interval=0.1)
    return time.monotonic() - start


def imap_records(home: CorrlogHome) -> int:
    """Mail records from IMAP."""
    return count(home, "SELECT COUNT(*) FROM records WHERE source = 'imap'")


@pytest.fixture
def live(home: CorrlogHome, clean_mailboxes: DovecotServer) -> CorrlogHome:
    """A home with a contract, alice's account and fast intervals."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    set_me(home)
    add_imap_account(home, clean_mailboxes)
    fast_daemon_config(home)
    return home


def test_new_mail_and_note_edits_are_searchable_within_seconds(
    live: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """INBOX via IDLE < 3 s, Sent within one 2 s poll, a note edit < 3 s, a vim save = one revision."""
    daemon = DaemonProcess(live).start()
    try:
        clean_mailboxes.append("alice", "INBOX", message(1, body="The okapi report is attached."))
        inbox = latency(live, "okapi", 10)
        clean_mailboxes.append(
            "alice", "Sent", message(2, sender=ME, to=CLIENT, body="Sent the tapir draft.")
        )
        sent = latency(live, "tapir", 10)
        note = live.note("acme/diary.md", "# Diary\nA narwhal idea.\n")
        edited = latency(live, "narwhal", 10)
        before = count(live, "SELECT COUNT(*) FROM ledger WHERE origin LIKE ?", f"%{note}")
        tmp = note.with_name("diary.md.swp")
        tmp.write_text("# Diary\nA narwhal idea, and a pangolin.\n")
        tmp.replace(note)
        vim = latency(live, "pangolin", 10)
        time.sleep(0.5)
        after = count(live, "SELECT COUNT(*) FROM ledger WHERE origin LIKE ?", f"%{note}")
        print(
            f"\nlatency: INBOX {inbox:.2f}s, Sent {sent:.2f}s, note {edited:.2f}s, vim save {vim:.2f}s"
        )
        assert inbox < 3.0
        assert sent < 2.0 + 3.0
        assert edited < 3.0
        assert after - before == 1
    finally:
        assert daemon.stop() == 0


def test_server_outage_reconnects_with_backoff_and_loses_nothing(
    home: CorrlogHome, dovecot_fresh: DovecotServer
) -> None:
    """Dovecot down for 10 s; 20 messages arrive after it is back; all archived once."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    add_imap_account(home, dovecot_fresh)
    fast_daemon_config(home)
    daemon = DaemonProcess(home).start()
    try:
        dovecot_fresh.kill()
        time.sleep(10)  # the outage itself: the daemon must ride it out
        dovecot_fresh.restart()
        for n in range(20):
            dovecot_fresh.append("alice", "INBOX", message(n))
        wait_for(lambda: imap_records(home) >= 20, 90, "20 messages archived", interval=0.2)
        time.sleep(2.5)
        assert imap_records(home) == 20
        assert (
            count(home, "SELECT COUNT(*) FROM ledger WHERE event='ingest' AND origin LIKE 'imap:%'")
            == 20
        )
        backoff = daemon.events("imap connection lost; reconnecting with backoff")
        print(f"\nbackoff lines: {[b['retry_in'] for b in backoff]}")
        assert backoff
    finally:
        assert daemon.stop() == 0


def test_kill_9_during_a_big_batch_then_restart_archives_each_once(
    live: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """kill -9 while 1,000 messages are being ingested; after a restart each is archived once."""
    client = clean_mailboxes.client("alice")
    try:
        for n in range(1000):
            client.append("INBOX", message(n))
    finally:
        client.logout()
    live.config.write_text(live.config.read_text().replace("batch_size = 100", "batch_size = 50"))
    first = DaemonProcess(live, "first")
    argv = [
        sys.executable,
        "-m",
        "corrlog",
        "--config",
        str(live.config),
        "--log-format",
        "json",
        "run",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=live.env()
    )
    wait_for(lambda: imap_records(live) >= 100, 120, "some messages archived", interval=0.05)
    proc.kill()
    proc.wait(timeout=10)
    partial = imap_records(live)
    print(f"\nkilled after {partial} of 1000")
    daemon = first.start()
    try:
        wait_for(lambda: imap_records(live) >= 1000, 180, "all 1000 archived", interval=0.5)
    finally:
        assert daemon.stop() == 0
    assert imap_records(live) == 1000
    assert (
        count(live, "SELECT COUNT(*) FROM ledger WHERE event='ingest' AND origin LIKE 'imap:%'")
        == 1000
    )
    assert live.ok("verify").out.startswith("ok:")


def test_sigterm_exits_0_quickly_and_sighup_adds_an_account(
    live: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """SIGHUP picks up a second account from the edited config; SIGTERM exits 0 within 5 s."""
    daemon = DaemonProcess(live).start()
    try:
        add_imap_account(live, clean_mailboxes, name="second", user="bob")
        clean_mailboxes.append(
            "bob", "INBOX", message(7, body="The second account has a kinkajou.")
        )
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("config reloaded"), 10, "reload")
        latency(live, "kinkajou", 15)
    finally:
        start = time.monotonic()
        code = daemon.stop(timeout=10)
        took = time.monotonic() - start
    print(f"\nSIGTERM exit after {took:.2f}s")
    assert code == 0
    assert took < 5.0


def test_sighup_keeps_the_running_engine_and_says_a_restart_is_needed(
    live: CorrlogHome,
) -> None:
    """A reload that switches `[index] engine` is refused for the engine (one warning), not applied halfway."""
    daemon = DaemonProcess(live).start()
    try:
        live.config.write_text(live.config.read_text() + '\n[index]\nengine = "tantivy"\n')
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("config reloaded"), 10, "reload")
        warned = daemon.events(
            "data_dir and [index] engine take effect when corrlog run restarts; "
            "keeping the running ones"
        )
        assert len(warned) == 1 and warned[0]["engine"] == "whoosh"
        live.note("acme/after.md", "# After\nThe okapi arrived after the reload.\n")
        latency(live, "okapi", 15)  # still searched and written through the Whoosh index
    finally:
        assert daemon.stop() == 0
    assert not (live.data / "index-tantivy").exists()


def test_searches_succeed_while_the_daemon_ingests(home: CorrlogHome) -> None:
    """50 concurrent searches all succeed while 2,000 messages are being ingested."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    write_maildir(home.data / "maildir", [message(n) for n in range(2000)])
    fast_daemon_config(home, poll="1h")
    argv = [
        sys.executable,
        "-m",
        "corrlog",
        "--config",
        str(home.config),
        "--log-format",
        "json",
        "run",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=home.env()
    )
    try:
        wait_for(
            lambda: count(home, "SELECT COUNT(*) FROM records WHERE source='maildir'") > 0,
            60,
            "ingest",
        )
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            results = list(
                pool.map(
                    lambda n: home.run("search", f"word{n * 37}", "--format", "ids"), range(50)
                )
            )
        during = count(home, "SELECT COUNT(*) FROM records WHERE source='maildir'")
        print(f"\n50 searches done while {during} of 2000 were archived")
        assert [r.code for r in results] == [0] * 50, [r.stderr for r in results if r.code]
        assert all("Traceback" not in r.stderr for r in results)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime in clock ticks (USER_HZ=100)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_idle_daemon_costs_almost_nothing(live: CorrlogHome) -> None:
    """With nothing happening for 60 s: under 1% CPU and under 120 MB RSS."""
    text = live.config.read_text().replace('poll_interval = "2s"', 'poll_interval = "5m"')
    live.config.write_text(text)
    daemon = DaemonProcess(live).start()
    try:
        time.sleep(2)
        cpu_before, start = _cpu_seconds(daemon.pid), time.monotonic()
        peak = 0.0
        while time.monotonic() - start < 60:
            time.sleep(5)  # sampling the idle process is the measurement
            peak = max(peak, _rss_mb(daemon.pid))
        used = _cpu_seconds(daemon.pid) - cpu_before
        percent = 100 * used / (time.monotonic() - start)
        print(f"\nidle: {percent:.2f}% CPU over 60 s, peak RSS {peak:.1f} MB")
        assert percent < 1.0
        assert peak < 120
    finally:
        assert daemon.stop() == 0
