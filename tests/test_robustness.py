"""Regression tests from review: inputs that once blocked indexing, lost notes or crashed a command."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

from support.cli import CorrlogHome
from support.mail import AGREEMENT_NOTE, message, write_maildir


def test_a_date_out_of_range_never_blocks_the_index(home: CorrlogHome) -> None:
    """A client mail dated in year 9999 at -14:00 is archived and indexed; later mail too."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    bad = message(1, body="The dugong draft.").replace(
        b"Date: ", b"Date: Fri, 31 Dec 9999 23:00:00 -1400\nX-Old-Date: ", 1
    )
    write_maildir(home.data / "maildir", [bad])
    assert home.run("sync").code == 0
    write_maildir(home.data / "maildir", [message(2, body="The manatee draft.")])
    result = home.run("sync")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert home.ok("search", "manatee", "--format", "ids").out.strip()
    assert home.ok("search", "dugong", "--format", "ids").out.strip()


def test_a_note_dated_out_of_range_is_skipped_with_a_reason(home: CorrlogHome) -> None:
    """A front-matter date that cannot exist in UTC is reported; other notes are indexed."""
    home.note("bad.md", "---\ndate: 0001-01-01T00:00:00+14:00\n---\n# Old\n")
    home.note("good.md", "# Good\nA wombat.\n")
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    assert "out of range" in result.stderr
    assert home.ok("search", "wombat", "--format", "ids").out.strip()


def test_a_missing_notes_folder_is_not_a_mass_deletion(home: CorrlogHome) -> None:
    """Moving the notes folder away and back records no deletion and loses nothing."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    home.ok("sync")
    aside = home.root / "notes-aside"
    shutil.move(home.notes, aside)
    home.ok("sync")
    shutil.move(aside, home.notes)
    home.ok("sync")
    with sqlite3.connect(home.data / "corrlog.db") as conn:
        events = [row[0] for row in conn.execute("SELECT event FROM ledger ORDER BY seq")]
    assert "delete" not in events and "contract-removed" not in events
    assert json.loads(home.ok("contracts", "--format", "json").out)[0]["id"] == "acme-site"


def test_a_note_name_that_is_not_utf8_is_skipped_with_a_warning(home: CorrlogHome) -> None:
    """A file name with invalid UTF-8 bytes is reported; the sync goes on."""
    os.makedirs(home.notes, exist_ok=True)
    with open(os.path.join(os.fsencode(home.notes), b"caf\xe9.md"), "wb") as handle:
        handle.write(b"# Cafe\n")
    home.note("good.md", "# Good\nA quokka.\n")
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    assert "not valid UTF-8" in result.stderr
    assert home.ok("search", "quokka", "--format", "ids").out.strip()


def test_impossible_dates_in_a_range_are_query_errors(home: CorrlogHome) -> None:
    """date:[2026-13-01 to 2026-14-01] and Feb 30 give exit 2, not a traceback."""
    home.ok("sync")
    for query in ("date:[2026-13-01 to 2026-14-01]", "date:[2026-02-30 to 2026-03-01]"):
        result = home.run("search", query)
        assert result.code == 2, (query, result.stderr)
        assert "Traceback" not in result.stderr


def test_search_right_after_an_empty_sync_says_no_matches(home: CorrlogHome) -> None:
    """A sync that archived nothing still leaves a searchable (empty) index."""
    home.ok("sync")
    assert home.ok("search", "anything").out.strip() == "no matches"
