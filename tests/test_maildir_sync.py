"""The Maildir source: trees of folders, capture filter, files never touched, same results as IMAP."""

from __future__ import annotations

import json
import mailbox
import os
import sqlite3
from pathlib import Path

import pytest

from support.cli import CorrlogHome
from support.dovecot import DovecotServer
from support.mail import (
    AGREEMENT_NOTE,
    CLIENT,
    FRIEND,
    ME,
    add_imap_account,
    message,
    set_me,
    write_maildir,
)


@pytest.fixture
def maildir_home(home: CorrlogHome) -> CorrlogHome:
    """A home with the Acme contract and `me` set; the default Maildir under the data dir."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    set_me(home)
    return home


def maildir_records(home: CorrlogHome) -> int:
    """How many Maildir records exist."""
    with sqlite3.connect(home.data / "corrlog.db") as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM records WHERE source = 'maildir'").fetchone()[0]
        )


def test_default_maildir_tree_is_read_once_and_left_untouched(maildir_home: CorrlogHome) -> None:
    """Every folder of an mbsync-style tree is read; personal mail skipped; files unchanged."""
    root = maildir_home.data / "maildir"
    write_maildir(root, [message(n) for n in range(5)])
    write_maildir(root / "Sent", [message(n, sender=ME, to=CLIENT) for n in range(5, 8)])
    write_maildir(root / "Archive" / "2025", [message(n) for n in range(8, 10)])
    write_maildir(root, [message(n, sender=FRIEND) for n in range(10, 14)])
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}
    result = maildir_home.ok("sync")
    assert "maildir local: 10 archived, 0 already known, 4 personal skipped" in result.out
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert maildir_records(maildir_home) == 10
    assert "maildir local: 0 archived" in maildir_home.ok("sync").out


def test_flag_rename_is_not_a_new_message(maildir_home: CorrlogHome) -> None:
    """An mbsync flag change renames new/X to cur/X:2,S; it is the same message."""
    root = maildir_home.data / "maildir"
    write_maildir(root, [message(1)])
    maildir_home.ok("sync")
    (path,) = (root / "new").iterdir()
    os.rename(path, root / "cur" / f"{path.name}:2,S")
    assert "maildir local: 0 archived" in maildir_home.ok("sync").out
    assert maildir_records(maildir_home) == 1


def test_file_and_folder_names_that_are_not_utf8_are_read(maildir_home: CorrlogHome) -> None:
    """A file or folder named with bytes that are not UTF-8 is archived like any other (its
    name kept with escapes) and does not stop the rest of the Maildir."""
    root = maildir_home.data / "maildir"
    write_maildir(root, [message(1)])
    odd = os.fsdecode(bytes(root / "Archiv") + b"\xe9")
    write_maildir(Path(odd), [message(2)])
    (name,) = os.listdir(root / "new")
    os.rename(root / "new" / name, root / "cur" / os.fsdecode(b"x\xff" + name.encode() + b":2,S"))
    result = maildir_home.ok("sync")
    assert "maildir local: 2 archived, 0 already known, 0 personal skipped" in result.out
    assert "maildir local: 0 archived" in maildir_home.ok("sync").out
    with sqlite3.connect(maildir_home.data / "corrlog.db") as conn:
        folders = {row[0] for row in conn.execute("SELECT folder FROM maildir_files")}
        keys = {row[0] for row in conn.execute("SELECT key FROM maildir_files")}
    assert {"", "Archiv\\xe9"} == folders
    assert any(key.startswith("x\\xff") for key in keys)


def test_unparseable_message_is_archived_and_quarantined(maildir_home: CorrlogHome) -> None:
    """Garbage from a client is kept raw with its reason and never stops the batch."""
    root = maildir_home.data / "maildir"
    box = mailbox.Maildir(str(root), create=True)
    box.add(message(1))
    box.add(
        b"From: bob@acme.example\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n\x00\xff"
        * 3
    )
    box.add(message(2))
    result = maildir_home.ok("sync")
    assert "3 archived" in result.out
    assert maildir_home.ok("verify").out.startswith("ok:")


@pytest.mark.imap
def test_maildir_and_imap_give_the_same_search_results(
    maildir_home: CorrlogHome,
    clean_mailboxes: DovecotServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same messages through Maildir and through IMAP are found by the same queries."""
    msgs = [message(n, body=f"Status of the zebra{n % 3} milestone, word{n}.") for n in range(12)]
    write_maildir(maildir_home.data / "maildir", msgs)
    maildir_home.ok("sync")
    imap_home = CorrlogHome.create(tmp_path_factory.mktemp("imap-home"))
    imap_home.note("acme/agreement.md", AGREEMENT_NOTE)
    set_me(imap_home)
    add_imap_account(imap_home, clean_mailboxes)
    for raw in msgs:
        clean_mailboxes.append("alice", "INBOX", raw)
    imap_home.ok("sync")

    def results(home: CorrlogHome, query: str) -> list[tuple[str, str, str]]:
        hits = json.loads(home.ok("search", query, "--format", "json", "--sort", "date").out)
        return [(h["id"], h["subject"], h["contract"]) for h in hits if h["source"] != "notes"]

    for query in ("zebra1", "milestone", "from:bob@acme.example", "word3", "contract:acme-site"):
        assert results(maildir_home, query) == results(imap_home, query), query
        assert results(maildir_home, query), query
