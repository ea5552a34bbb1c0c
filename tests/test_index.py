"""The index on every engine: writing records, query syntax, filters, sorting and snippets."""

from __future__ import annotations

import os
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from corrlog.analysis import words
from corrlog.errors import ConfigError, IndexingError, QueryError
from corrlog.index import (
    ENGINES,
    MARK_END,
    MARK_START,
    SearchIndex,
    SearchRequest,
    address_tokens,
    open_index,
    origin_text,
    parse_query,
    search,
)
from corrlog.model import Direction, Kind, Origin, Record, SourceKind

CET = timezone(timedelta(hours=1))


def mail(
    record_id: str, when: datetime, subject: str, text: str, uid: int, **fields: Any
) -> Record:
    """A mail record from the `work` IMAP account's INBOX."""
    return Record(
        id=record_id,
        source=SourceKind.IMAP,
        kind=fields.pop("kind", Kind.MESSAGE),
        direction=Direction.IN,
        date=when,
        subject=subject,
        sha256=record_id[0] * 64,
        origin=Origin(SourceKind.IMAP, "work", folder="INBOX", uidvalidity=1, uid=uid),
        text=text,
        **fields,
    )


JAN = mail(
    "jan",
    datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
    "Mockups",
    "We will deliver the mockups on Friday.",
    7,
    kind=Kind.UPDATE,
    sender="Bob Smith <Bob@Acme.Example>",
    recipients=("me@work.example",),
    client="Acme Corp",
    contract="acme-site",
)
FEB = mail(
    "feb",
    datetime(2026, 2, 20, 12, 0, tzinfo=UTC),
    "Invoice",
    "Payment for the zebracorn illustrations.",
    8,
    sender="alice@globex.example",
    client="Globex",
    contract="globex",
)
DEC = mail(
    "dec",
    datetime(2025, 12, 1, 12, 0, tzinfo=UTC),
    "Kickoff",
    "Agreement on scope and rate.",
    9,
    kind=Kind.AGREEMENT,
    sender="carol@acme.example",
    client="Acme Corp",
    contract="acme-site",
)
NOTE = Record(
    id="note",
    source=SourceKind.NOTES,
    kind=Kind.UPDATE,
    direction=Direction.INTERNAL,
    date=datetime(2026, 1, 20, 9, 0, tzinfo=CET),
    subject="Call notes",
    sha256="n" * 64,
    origin=Origin(SourceKind.NOTES, "main", path="acme-site/call.md"),
    text="Phone call about the colour palette.",
    client="Acme Corp",
    contract="acme-site",
)
ALL = (JAN, FEB, DEC, NOTE)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn: every engine-level test runs against Whoosh and tantivy."""
    return str(request.param)


@pytest.fixture(scope="module")
def idx(tmp_path_factory: pytest.TempPathFactory, engine: str) -> SearchIndex:
    """An index holding JAN, FEB, DEC and NOTE (read-only for the tests that use it)."""
    index = open_index(tmp_path_factory.mktemp("index") / "ix", engine)
    with index.writer() as writer:
        for record in ALL:
            writer.add(record, replace=False)
    return index


def ids(index: SearchIndex, text: str, **filters: Any) -> set[str]:
    """The ids of every hit for a query."""
    result = search(index, SearchRequest(text, limit=100, **filters))
    return {hit.fields["id"] for hit in result.hits}


# pure helpers


def test_address_tokens() -> None:
    """An address yields itself, its local part, its domain and @domain, plus name words, once each."""
    assert "bob smith bob@acme.example acme.example @acme.example" == address_tokens(
        ["Bob Smith <Bob@Acme.Example>"]
    )
    assert "ann@x.example ann x.example @x.example" == address_tokens(
        ["ann@x.example", "ANN@X.EXAMPLE"]
    )


def test_origin_text() -> None:
    """Mail origins show account/folder/UID; note origins show the path."""
    assert "work/INBOX/7" == origin_text(JAN.origin)
    assert "acme-site/call.md" == origin_text(NOTE.origin)


# searching by field


def test_index_holds_every_record(idx: SearchIndex) -> None:
    """Every written record is a document."""
    assert 4 == idx.doc_count()


@pytest.mark.parametrize("word", ["delivered", "deliver", "delivering", "Delivered"])
def test_body_words_are_stemmed(idx: SearchIndex, word: str) -> None:
    """A body word is found through its other forms (stemming), in any case."""
    assert {"jan"} == ids(idx, word)


def test_subject_searched_by_default(idx: SearchIndex) -> None:
    """A bare word also searches the subject."""
    assert {"feb"} == ids(idx, "invoice")


def test_unknown_word_finds_nothing(idx: SearchIndex) -> None:
    """A word in no document gives no hits."""
    assert set() == ids(idx, "xylophone")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contract:acme-site", {"jan", "dec", "note"}),
        ("contract:globex", {"feb"}),
        ("kind:agreement", {"dec"}),
        ("kind:update", {"jan", "note"}),
        ("source:notes", {"note"}),
        ("direction:internal", {"note"}),
        ("id:feb", {"feb"}),
        ("subject:invoice", {"feb"}),
        ("body:zebracorn", {"feb"}),
    ],
)
def test_field_queries(idx: SearchIndex, text: str, expected: set[str]) -> None:
    """`field:value` matches that field only."""
    assert expected == ids(idx, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from:bob@acme.example", {"jan"}),
        ("from:Bob@ACME.example", {"jan"}),
        ("from:acme.example", {"jan", "dec"}),
        ("from:@acme.example", {"jan", "dec"}),
        ("from:bob", {"jan"}),
        ("from:smith", {"jan"}),
        ("from:globex.example", {"feb"}),
        ("to:me@work.example", {"jan"}),
        ("from:me@work.example", set()),
    ],
)
def test_address_queries(idx: SearchIndex, text: str, expected: set[str]) -> None:
    """`from:`/`to:` match a full address, its domain, its local part or a name word."""
    assert expected == ids(idx, text)


@pytest.mark.parametrize(
    "text", ["client:acme", "client:Acme", "client:corp", 'client:"acme corp"']
)
def test_client_query_matches_words(idx: SearchIndex, text: str) -> None:
    """`client:` matches a word or phrase of the client name, case-insensitively."""
    assert {"jan", "dec", "note"} == ids(idx, text)


def test_boolean_operators(idx: SearchIndex) -> None:
    """AND, OR and NOT combine clauses."""
    assert {"jan", "feb"} == ids(idx, "deliver OR zebracorn")
    assert {"dec", "note"} == ids(idx, "contract:acme-site NOT kind:message NOT deliver")
    assert {"jan"} == ids(idx, "contract:acme-site AND from:bob")


# dates


def test_date_range_with_hyphenated_dates(idx: SearchIndex) -> None:
    """date:[2026-01-01 to 2026-02-01] includes Jan 15 and 20 and excludes Feb 20 and Dec 1.

    Whoosh on its own reads the hyphenated end date as the end of 2026; index.py
    rewrites it, and this test fails if the rewrite is lost.
    """
    assert {"jan", "note"} == ids(idx, "date:[2026-01-01 to 2026-02-01]")


def test_date_range_compact_and_month_forms(idx: SearchIndex) -> None:
    """Ranges also accept compact dates and whole months."""
    assert {"jan", "note"} == ids(idx, "date:[20260101 to 20260201]")
    assert {"jan", "note", "feb"} == ids(idx, "date:[2026-01 to 2026-02]")


def test_open_ended_date_range(idx: SearchIndex) -> None:
    """A range without an end reaches into the future."""
    assert {"jan", "note", "feb"} == ids(idx, "date:[2026-01-01 to]")


def test_single_day(idx: SearchIndex) -> None:
    """date:YYYY-MM-DD matches that (UTC) day."""
    assert {"jan"} == ids(idx, "date:2026-01-15")


def test_date_range_combined_with_word(idx: SearchIndex) -> None:
    """A date range combines with other clauses."""
    assert {"note"} == ids(idx, "date:[2026-01-01 to 2026-02-01] palette")


def test_range_end_day_is_inclusive(tmp_path: Path, engine: str) -> None:
    """A range's end date includes that whole day."""
    index = open_index(tmp_path / "ix", engine)
    late = mail("late", datetime(2026, 2, 1, 20, 0, tzinfo=UTC), "Late", "evening mail", 1)
    with index.writer() as writer:
        writer.add(late, replace=False)
    assert {"late"} == ids(index, "date:[2026-01-01 to 2026-02-01]")
    assert set() == ids(index, "date:[2026-01-01 to 2026-01-31]")


# request filters


def test_since_and_until_filters(idx: SearchIndex) -> None:
    """since/until keep records inside the bounds (inclusive), compared in UTC."""
    assert {"jan", "note", "feb"} == ids(idx, "", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert {"dec", "jan"} == ids(idx, "*", until=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    # 09:00+01:00 is 08:00 UTC: a since of 08:30 UTC written in CET excludes the note.
    since = datetime(2026, 1, 20, 9, 30, tzinfo=CET)
    assert {"feb"} == ids(idx, "", since=since)


def test_contract_kind_client_filters(idx: SearchIndex) -> None:
    """contract (any case), kind and client filters narrow the hits."""
    assert {"jan", "dec", "note"} == ids(idx, "", contract="ACME-site")
    assert {"dec"} == ids(idx, "", contract="acme-site", kind="agreement")
    assert {"feb"} == ids(idx, "", client="globex")
    assert {"jan", "dec", "note"} == ids(idx, "", client="Acme Corp")


def test_filters_combine_with_query(idx: SearchIndex) -> None:
    """Filters apply on top of the query text."""
    assert {"jan"} == ids(idx, "deliver", contract="acme-site")
    assert set() == ids(idx, "deliver", contract="globex")


def test_client_filter_without_words(idx: SearchIndex) -> None:
    """A client filter with no letters or digits is a QueryError, not a crash."""
    with pytest.raises(QueryError):
        search(idx, SearchRequest("", client="!!"))


# sorting and paging


def test_sort_by_date_newest_first(idx: SearchIndex) -> None:
    """sort='date' orders hits newest first and gives no score."""
    result = search(idx, SearchRequest("*", sort="date"))
    assert ["feb", "note", "jan", "dec"] == [hit.fields["id"] for hit in result.hits]
    assert [None] * 4 == [hit.score for hit in result.hits]


def test_relevance_has_scores(idx: SearchIndex) -> None:
    """The default relevance sort gives each hit a score."""
    [hit] = search(idx, SearchRequest("zebracorn")).hits
    assert isinstance(hit.score, float)
    assert hit.score > 0


def test_limit_and_total(idx: SearchIndex) -> None:
    """limit caps the hits; total still counts every match."""
    result = search(idx, SearchRequest("contract:acme-site", limit=2, sort="date"))
    assert (["note", "jan"], 3) == ([hit.fields["id"] for hit in result.hits], result.total)


def test_stored_fields(idx: SearchIndex) -> None:
    """A hit carries the stored fields shown in results."""
    [hit] = search(idx, SearchRequest("id:jan")).hits
    fields = hit.fields
    assert "2026-01-15T12:00:00+00:00" == fields["date_iso"]
    assert "work/INBOX/7" == fields["origin"]
    assert "Bob Smith <Bob@Acme.Example>" == fields["sender"]
    assert ["me@work.example"] == fields["recipients"]
    assert ("Acme Corp", "acme-site", "update") == (
        fields["client"],
        fields["contract"],
        fields["kind"],
    )


def test_note_date_kept_with_offset(idx: SearchIndex) -> None:
    """The stored ISO date keeps the record's own offset."""
    [hit] = search(idx, SearchRequest("id:note")).hits
    assert "2026-01-20T09:00:00+01:00" == hit.fields["date_iso"]


# snippets


def test_snippet_marks_matched_word(idx: SearchIndex) -> None:
    """The snippet wraps the matched word (as written) in MARK_START/MARK_END."""
    [hit] = search(idx, SearchRequest("delivered")).hits
    assert f"{MARK_START}deliver{MARK_END}" in hit.marked_snippet
    assert "We will deliver the mockups on Friday" in hit.snippet
    assert MARK_START not in hit.snippet
    assert MARK_END not in hit.snippet


def test_snippet_without_text_match(idx: SearchIndex) -> None:
    """A hit found by a field query shows the start of its body, unmarked."""
    [hit] = search(idx, SearchRequest("id:feb")).hits
    assert "Payment for the zebracorn illustrations." == hit.marked_snippet


# writing


def test_replace_does_not_duplicate(tmp_path: Path, engine: str) -> None:
    """Adding a record again with replace=True swaps the document instead of adding one."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=True)
    changed = mail("jan", JAN.date, "Mockups", "Revised wording about quokkas.", 7)
    with index.writer() as writer:
        writer.add(changed, replace=True)
    assert 1 == index.doc_count()
    assert {"jan"} == ids(index, "quokkas")
    assert set() == ids(index, "deliver")


def test_replace_within_one_batch(tmp_path: Path, engine: str) -> None:
    """replace=True also replaces a document added earlier in the same batch."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=True)
        writer.add(JAN, replace=True)
    assert 1 == index.doc_count()


def test_delete_removes(tmp_path: Path, engine: str) -> None:
    """delete removes a document by id; deleting an absent id is a no-op."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
        writer.add(FEB, replace=False)
    with index.writer() as writer:
        writer.delete("jan")
        writer.delete("nope")
    assert 1 == index.doc_count()
    assert {"feb"} == ids(index, "*")


def test_writer_error_cancels_batch(tmp_path: Path, engine: str) -> None:
    """An error inside writer() discards the whole batch."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
    with pytest.raises(RuntimeError, match="boom"), index.writer() as writer:
        writer.add(FEB, replace=False)
        writer.delete("jan")
        raise RuntimeError("boom")
    assert {"jan"} == ids(index, "*")


def test_create_replaces_existing(tmp_path: Path, engine: str) -> None:
    """create() starts an empty index even when one exists."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
    index.create()
    assert 0 == index.doc_count()


def test_missing_index_is_indexing_error(tmp_path: Path, engine: str) -> None:
    """Opening an index that was never created is an IndexingError suggesting reindex."""
    index = open_index(tmp_path / "none", engine)
    assert not index.exists()
    with pytest.raises(IndexingError, match="corrlog reindex"):
        index.doc_count()
    with pytest.raises(IndexingError, match="corrlog reindex"):
        search(index, SearchRequest("deliver"))


def test_damaged_index_is_indexing_error(tmp_path: Path, engine: str) -> None:
    """A damaged index is an IndexingError suggesting reindex, not an engine's exception."""
    directory = tmp_path / "ix"
    directory.mkdir()
    (directory / {"whoosh": "_MAIN_1.toc", "tantivy": "meta.json"}[engine]).write_bytes(b"garbage")
    index = open_index(directory, engine)
    with pytest.raises(IndexingError, match="corrlog reindex"):
        index.doc_count()
    assert "cannot be read" in (index.problem((0, 0)) or "")


# query parsing


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"unbalanced phrase', "unbalanced quote"),
        ("(deliver OR invoice", "unbalanced parenthesis"),
        ("deliver)", "unbalanced parenthesis"),
        (")deliver(", "unbalanced parenthesis"),
        ("foo:bar", "unknown field 'foo'"),
        ("(foo:bar)", "unknown field 'foo'"),
        ("date:[garbage to 2023]", "date"),
        ("a OR", "OR"),
    ],
)
def test_parse_query_rejects(text: str, reason: str) -> None:
    """Queries that make no sense are a QueryError with a reason."""
    with pytest.raises(QueryError, match=reason):
        parse_query(text)


def test_unknown_field_lists_known_fields() -> None:
    """The unknown-field error lists the known fields and how to search literally."""
    with pytest.raises(QueryError) as caught:
        parse_query("foo:bar")
    message = str(caught.value)
    assert "from:" in message
    assert "double quotes" in message


def test_bad_date_error_shows_format() -> None:
    """A bad date in a range is a QueryError showing how to write dates."""
    with pytest.raises(QueryError, match=r"date:\[2026-01-01 to 2026-02-01\]"):
        parse_query("date:[garbage to 2023]")


def test_quoted_colon_is_literal(tmp_path: Path, engine: str) -> None:
    """A quoted "foo:bar" is a phrase, not a field, and finds that text."""
    parse_query('"foo:bar"')
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(mail("url", JAN.date, "Link", "see foo:bar here", 1), replace=False)
    assert {"url"} == ids(index, '"foo:bar"')


@pytest.mark.parametrize("text", ["the", "x", "it OR is"])
def test_stop_words_not_blamed_on_operators(text: str) -> None:
    """A query of words too common or short to index does not blame operators or dates."""
    try:
        parse_query(text)
    except QueryError as exc:
        assert "operators" not in str(exc)


@pytest.mark.parametrize("text", ["", "   ", "*"])
def test_empty_query_matches_everything(idx: SearchIndex, text: str) -> None:
    """An empty query or `*` matches every document."""
    assert {"jan", "feb", "dec", "note"} == ids(idx, text)


@pytest.mark.parametrize("text", ["From:bob", "CONTRACT:acme-site"])
def test_field_names_any_case(idx: SearchIndex, text: str) -> None:
    """A field name accepted in upper case finds what the lower-case one finds."""
    assert ids(idx, text.lower()) == ids(idx, text)


# engines: the interface, warm searchers, text indexed once


def test_stored_fields_match_hits(idx: SearchIndex) -> None:
    """stored(id) gives what a hit carries; an id not indexed gives None."""
    [hit] = search(idx, SearchRequest("id:jan")).hits
    assert hit.fields == idx.stored("jan")
    assert idx.stored("nope") is None


def test_engines_store_the_same_fields(tmp_path: Path) -> None:
    """Hits from every engine carry the same keys and value types (output renders both alike)."""
    stored = []
    for engine in ENGINES:
        index = open_index(tmp_path / engine, engine)
        with index.writer() as writer:
            for record in ALL:
                writer.add(record, replace=False)
        stored.append({r.id: index.stored(r.id) for r in ALL})
    assert stored[0] == stored[1]


def test_warm_searcher_sees_a_later_commit(tmp_path: Path, engine: str) -> None:
    """An index object searched before a commit (by it or another object) finds the new document."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
    assert set() == ids(index, "zebracorn")
    with index.writer() as writer:
        writer.add(FEB, replace=False)
    assert {"feb"} == ids(index, "zebracorn")
    with open_index(tmp_path / "ix", engine).writer() as writer:
        writer.delete("feb")
    assert set() == ids(index, "zebracorn")
    assert 1 == index.doc_count()


def test_warm_searcher_after_create(tmp_path: Path, engine: str) -> None:
    """After create() (as reindex does) the searcher reads the new, empty index."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
    assert {"jan"} == ids(index, "*")
    open_index(tmp_path / "ix", engine).create()
    assert set() == ids(index, "*")


def test_concurrent_searches_while_writing(tmp_path: Path, engine: str) -> None:
    """Searches from several threads run while another commits; none fails or sees a partial batch."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(JAN, replace=False)
    errors: list[BaseException] = []
    counts: list[int] = []

    def searching() -> None:
        try:
            for _ in range(20):
                counts.append(search(index, SearchRequest("*", limit=10)).total)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searching) for _ in range(3)]
    for thread in threads:
        thread.start()
    for record in (FEB, DEC, NOTE):
        with index.writer() as writer:
            writer.add(record, replace=False)
    for thread in threads:
        thread.join()
    assert [] == errors
    assert set(counts) <= {1, 2, 3, 4}
    assert 4 == search(index, SearchRequest("*")).total


QUOTED = mail(
    "quoted",
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    "Re: Mockups",
    "Thanks, approved.",
    11,
    sender="bob@acme.example",
)
QUOTED_FULLTEXT = QUOTED.text + "\n\n> We will deliver the marsupial mockups on Friday."


def test_fulltext_matches_body_and_quoted_text(tmp_path: Path, engine: str) -> None:
    """`fulltext:` finds words of the new text and of the quote; a bare word only the new text."""
    index = open_index(tmp_path / "ix", engine)
    with index.writer() as writer:
        writer.add(QUOTED, replace=False, fulltext=QUOTED_FULLTEXT)
    assert {"quoted"} == ids(index, "fulltext:approved")
    assert {"quoted"} == ids(index, "fulltext:marsupial")
    assert {"quoted"} == ids(index, 'fulltext:"marsupial mockups"')
    assert {"quoted"} == ids(index, "fulltext:marsup*")
    assert set() == ids(index, "marsupial")
    assert {"quoted"} == ids(index, "approved")


def test_whoosh_indexes_body_text_once() -> None:
    """The Whoosh document's fulltext holds only the text after the body."""
    from corrlog.index_whoosh import to_document

    document = to_document(QUOTED, fulltext=QUOTED_FULLTEXT)
    assert words(QUOTED_FULLTEXT.removeprefix(QUOTED.text)) == document["fulltext"]
    other = to_document(QUOTED, fulltext="unrelated text")
    assert ["unrelat", "text"] == other["fulltext"]


def test_tantivy_files_are_private(tmp_path: Path) -> None:
    """The tantivy engine's files are 0600 and its folder 0700 even under a loose umask."""
    old = os.umask(0o022)
    try:
        index = open_index(tmp_path / "ix", "tantivy")
        with index.writer() as writer:
            writer.add(JAN, replace=False)
    finally:
        os.umask(old)
    assert 0o700 == stat.S_IMODE((tmp_path / "ix").stat().st_mode)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "ix").iterdir()}
    assert {0o600} == set(modes.values()), modes


def test_missing_tantivy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the tantivy package, opening its engine is one ConfigError saying how to install it."""
    monkeypatch.setitem(sys.modules, "tantivy", None)
    with pytest.raises(ConfigError) as caught:
        open_index(tmp_path / "ix", "tantivy")
    expected = "the tantivy engine needs the tantivy package: pip install 'corrlog[tantivy]'"
    assert expected == str(caught.value)


def test_unknown_engine(tmp_path: Path) -> None:
    """An engine name nobody knows is a ConfigError listing the known ones."""
    with pytest.raises(ConfigError, match="whoosh, tantivy"):
        open_index(tmp_path / "ix", "lucene")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deliv*", {"jan"}),
        ("from:bob*", {"jan"}),
        ("NOT contract:acme-site", {"feb"}),
        ("zebracorn OR (palette AND NOT deliver)", {"feb", "note"}),
        ("contract:acme-site ANDNOT kind:update", {"dec"}),
        ("palette ANDMAYBE deliver", {"note"}),
        ('subject:"call notes"', {"note"}),
        ("the palette", {"note"}),
        ("attachment:nothing OR milestone:none OR to:me@work.example", {"jan"}),
    ],
)
def test_more_query_shapes(idx: SearchIndex, text: str, expected: set[str]) -> None:
    """Wildcards, negation, AND NOT / AND MAYBE, phrases and stop words behave alike on every engine."""
    assert expected == ids(idx, text)


def test_dates_far_from_now_are_indexed(tmp_path: Path, engine: str) -> None:
    """Mail claiming year 1 or 9999 is indexed, sorts to the ends and matches open ranges."""
    index = open_index(tmp_path / "ix", engine)
    ancient = mail("ancient", datetime(1, 1, 2, tzinfo=UTC), "Old", "old mail", 1)
    future = mail("future", datetime(9999, 12, 30, tzinfo=UTC), "New", "new mail", 2)
    with index.writer() as writer:
        for record in (JAN, ancient, future):
            writer.add(record, replace=False)
    result = search(index, SearchRequest("*", sort="date"))
    assert ["future", "jan", "ancient"] == [hit.fields["id"] for hit in result.hits]
    assert {"future"} == ids(index, "date:[9000-01-01 to]")
    assert {"ancient"} == ids(index, "date:[to 1000-01-01]")
    assert "0001-01-02T00:00:00+00:00" == index.stored("ancient")["date_iso"]  # type: ignore[index]


# Whoosh: top-level date ranges are applied to the date column, with the same results


def test_whoosh_date_filter_matches_whoosh_daterange(tmp_path: Path) -> None:
    """Bounds, exclusive ends and open ends: the column filter returns what DateRange returns."""
    from whoosh import query

    from corrlog.index_whoosh import split_dates

    index = open_index(tmp_path / "ix", "whoosh")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = [
        mail(f"r{n:02}", start + timedelta(hours=7 * n), f"Day {n}", f"word{n % 3} text", n)
        for n in range(60)
    ]
    with index.writer() as writer:
        for record in records:
            writer.add(record, replace=False)
    queries = [
        "date:[2026-03-03 to 2026-03-09]",
        "date:[2026-03-05 to]",
        "date:[to 2026-03-04]",
        "date:2026-03-10",
        "word1 date:[2026-03-02 to 2026-03-12]",
        "(word0 OR word2) date:[2026-03-06 to 2026-03-08]",
    ]
    for text in queries:
        parsed = parse_query(text)
        _rest, ranges = split_dates(parsed)
        assert ranges, text
        with index.searcher() as searcher:  # type: ignore[attr-defined]
            plain = searcher.search(parsed, limit=None)
            expected = {hit["id"] for hit in plain}
        got = search(index, SearchRequest(text, limit=100, sort="date"))
        assert {hit.fields["id"] for hit in got.hits} == expected, text
        assert got.total == len(expected), text
        dates = [hit.fields["date_iso"] for hit in got.hits]
        assert dates == sorted(dates, reverse=True)
    assert split_dates(query.Term("body", "x")) == (query.Term("body", "x"), [])


def test_whoosh_term_pool_yields_postings_in_order() -> None:
    """Postings come out by field, term and document number, whatever order they went in."""
    from corrlog.whoosh_postings import TermPool

    postings = [
        ("body", b"gas", 4, 1.0, b"v4"),
        ("body", b"alpha", 2, 2.0, b"v2"),
        ("subject", b"gas", 1, 2.0, b"s1"),
        ("body", b"gas", 7, 3.0, b"v7"),
        ("body", b"gas", 5, 1.0, None),  # a merged segment's document, out of order
        ("body", b"alpha", 9, 1.0, b"v9"),
    ]
    pool = TermPool(overflow=None)
    for posting in postings:
        pool.add(posting)
    assert sorted(postings, key=lambda p: (p[0], p[1], p[2])) == list(pool.iter_postings())


def test_whoosh_index_past_the_term_pool_limit_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit too big for the term pool goes through Whoosh's spilling pool: same results."""
    import corrlog.index_whoosh
    import corrlog.whoosh_postings

    records = [
        mail(f"r{n:02}", datetime(2026, 3, 1, tzinfo=UTC), f"Day {n}", f"word{n % 3} text", n)
        for n in range(40)
    ]
    found = []
    for limit in (corrlog.whoosh_postings.MAX_POSTINGS, 25):
        monkeypatch.setattr(corrlog.whoosh_postings, "MAX_POSTINGS", limit)
        monkeypatch.setattr(corrlog.index_whoosh, "LIMIT_MB", 0)  # and it spills runs to disk
        index = open_index(tmp_path / f"ix{limit}", "whoosh")
        with index.writer() as writer:
            for record in records:
                writer.add(record, replace=False)
        found.append([sorted(ids(index, q)) for q in ("word1", "text", "day", '"word2 text"')])
    assert found[0] == found[1]
    assert 40 == len(found[0][1])


@pytest.mark.parametrize("sort", ["relevance", "date"])
def test_date_only_query_skips_replaced_documents(idx_engine_path: Any, sort: str) -> None:
    """Replaced records leave deleted documents behind: a date-only query counts each once."""
    index = idx_engine_path
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = [mail(f"d{n}", start + timedelta(days=n), f"Day {n}", "text", n) for n in range(10)]
    with index.writer() as writer:
        for record in records:
            writer.add(record, replace=False)
    with index.writer() as writer:
        for record in records[2:5]:
            writer.add(record, replace=True)
    result = search(index, SearchRequest("date:[2026-03-01 to 2026-03-31]", limit=6, sort=sort))
    assert 10 == result.total
    found = [hit.fields["id"] for hit in result.hits]
    assert len(found) == len(set(found)) == 6
    if sort == "date":
        assert ["d9", "d8", "d7", "d6", "d5", "d4"] == found


@pytest.fixture
def idx_engine_path(tmp_path: Path, engine: str) -> SearchIndex:
    """An empty index of each engine in a fresh directory."""
    return open_index(tmp_path / "ix", engine)


def test_word_positions_encode_exactly_like_whoosh_positions() -> None:
    """A word list indexed through WordPositions gives Positions' postings, byte for byte."""
    from whoosh.formats import Positions

    from corrlog.index import WordPositions, make_schema

    text = "We will deliver the mockups on Friday; the mockups follow the brief. Mockups!"
    analysed = words(text)
    field = make_schema()["subject"]
    assert isinstance(field.format, WordPositions)
    plain = Positions(field_boost=field.format.field_boost)
    expected = sorted(plain.word_values(analysed, field.analyzer, mode="index"))
    assert expected == sorted(field.format.word_values(analysed, field.analyzer, mode="index"))
    from_text = sorted(field.format.word_values(text, field.analyzer, mode="index"))
    assert [p[:3] for p in expected] == [p[:3] for p in from_text]  # text still works
    assert any(freq == 3 for _word, freq, _weight, _value in expected)  # "mockup" three times


def test_word_positions_match_positions_on_long_and_repeated_lists() -> None:
    """Single-position encodings are cached: long lists (past the cache bound) and repeated
    calls still give Positions' own bytes."""
    import random

    from whoosh.formats import Positions

    from corrlog.index import make_schema

    field = make_schema()["body"]
    plain = Positions(field_boost=field.format.field_boost)
    rng = random.Random(7)
    lists = [[f"w{rng.randrange(n)}" for _ in range(n)] for n in (1, 5, 300, 3000)]
    lists.append([f"u{i}" for i in range(100_010)])  # every word once, positions past the cache
    for value in [*lists, *lists]:
        expected = sorted(plain.word_values(value, field.analyzer, mode="index"))
        assert expected == sorted(field.format.word_values(value, field.analyzer, mode="index"))


def test_whoosh_index_made_before_word_positions_still_takes_word_lists(tmp_path: Path) -> None:
    """An index whose schema has Whoosh's plain Positions (older corrlog) indexes and finds the same."""
    import copy

    from whoosh import index as whoosh_index
    from whoosh.formats import Positions

    from corrlog.index import NAME_FIELDS, STEMMED_FIELDS, WordPositions, make_schema

    old = copy.deepcopy(make_schema())
    for name in (*STEMMED_FIELDS, *NAME_FIELDS):
        old[name].format = Positions(field_boost=old[name].format.field_boost)
    (tmp_path / "old").mkdir()
    whoosh_index.create_in(str(tmp_path / "old"), old)
    found = []
    for name in ("old", "new"):
        index = open_index(tmp_path / name, "whoosh")
        with index.writer() as writer:
            for record in ALL:
                writer.add(record, replace=False)
        found.append([sorted(ids(index, q)) for q in ("mockups", '"the mockups"', "client:acme")])
    assert not isinstance(
        whoosh_index.open_dir(str(tmp_path / "old")).schema["body"].format, WordPositions
    )
    assert found[0] == found[1]
    assert found[0][0]
