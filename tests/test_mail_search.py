"""Real-world mail shapes are searchable as a user expects (through Maildir, the CLI and each engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrlog.index import ENGINES
from support.cli import CorrlogHome
from support.mail import write_maildir

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


@pytest.fixture(scope="module", params=ENGINES)
def mail_home(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> CorrlogHome:
    """Every fixture message delivered to the default Maildir and synced with capture = all."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("mailsearch"))
    config = home.config.read_text().replace('capture = "clients"', 'capture = "all"')
    home.config.write_text(f'{config}\n[index]\nengine = "{request.param}"\n')
    write_maildir(home.data / "maildir", [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))])
    home.ok("sync")
    return home


def subjects(home: CorrlogHome, query: str) -> list[str]:
    """Subjects of the hits for a query."""
    return [h["subject"] for h in json.loads(home.ok("search", query, "--format", "json").out)]


@pytest.mark.parametrize(
    ("query", "subject"),
    [
        ("portal", "Invoice 2024-017 approved"),  # HTML-only, link text kept
        ("plaintextonlyword", "Scope for the landing page"),  # multipart/alternative: the text part
        ("devis", "Devis révisé"),  # iso-8859-1 headers and body
        ('"café menu"', "Progress update"),  # declared utf-8, really cp1252
        ("zanzibarquill", "Signed SOW attached"),  # a word inside a PDF attachment
        ("marmalutefig", "Change request CR-3"),  # a word inside a DOCX attachment
        ("attachment:CR-3.docx", "Change request CR-3"),
        ("fulltext:quintessaurus", "Fwd: Budget for the website"),  # forwarded text: fulltext:
    ],
)
def test_word_is_found(mail_home: CorrlogHome, query: str, subject: str) -> None:
    """Each kind of message is found by a word a user would remember from it."""
    assert subject in subjects(mail_home, query)


def test_word_only_in_the_quote_is_not_matched_by_default(mail_home: CorrlogHome) -> None:
    """A word only in the quoted part is not found by default, but is with fulltext:."""
    assert subjects(mail_home, "xylocarpish") == []
    assert subjects(mail_home, "fulltext:xylocarpish") == ["Re: Milestone 2 delivered"]
    assert subjects(mail_home, "approved Friday") == ["Re: Milestone 2 delivered"]


def test_html_only_mail_never_shows_markup(mail_home: CorrlogHome) -> None:
    """The snippet of an HTML-only mail is text, not tags."""
    (hit,) = json.loads(mail_home.ok("search", "portal", "--format", "json").out)
    assert "<" not in hit["snippet"]
