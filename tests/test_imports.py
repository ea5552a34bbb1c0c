"""What a command imports: heavy modules load only where they are needed."""

from __future__ import annotations

import json
import subprocess
import sys


def _loaded(code: str, modules: tuple[str, ...]) -> list[str]:
    """Run `code` in a fresh interpreter; which of `modules` it left in sys.modules."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return sorted(json.loads(done.stdout))


def test_mail_sync_and_note_parsing_load_neither_imapclient_nor_yaml() -> None:
    """A Maildir-only sync imports the mail pass and the note parser without IMAP or YAML."""
    code = "import corrlog.mailsync, corrlog.sync, corrlog.parse.note"
    assert [] == _loaded(code, ("imapclient", "corrlog.sources.imap", "yaml"))


def test_front_matter_and_imap_load_them_when_used() -> None:
    """Parsing front matter loads YAML; the IMAP pass still finds its connection class."""
    code = (
        "from corrlog.parse.note import split_front_matter\n"
        "assert split_front_matter('---\\na: 1\\n---\\nbody') == ({'a': 1}, 'body')\n"
        "import corrlog.mailsync, corrlog.sources.imap\n"
    )
    assert ["imapclient", "yaml"] == _loaded(code, ("imapclient", "yaml"))
