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


def test_built_in_classification_patterns_compile_on_first_use() -> None:
    """Loading the rules compiles no built-in pattern; config patterns compile (and fail) at once."""
    code = (
        "from corrlog.rules import classify as c\n"
        "rules = c.ClassifyRules.from_config(['we sign'], None)\n"
        "sizes = [c._compile.cache_info().currsize, c._compile_source.cache_info().currsize]\n"
        "assert [1, 4] == sizes, sizes  # 'we sign'; the agreement and combined prefilters\n"
        "kind, _ = c.classify(subject='', new_text='We sign.', direction=c.Direction.OUT,\n"
        "                     declared=None, rules=rules)\n"
        "assert kind is c.Kind.AGREEMENT\n"
        "try:\n"
        "    c.ClassifyRules.from_config(['(unclosed'], None)\n"
        "except ValueError as exc:\n"
        "    assert '(unclosed' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('a bad config pattern was accepted')\n"
    )
    assert [] == _loaded(code, ())
