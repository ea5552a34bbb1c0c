"""`matching`: the documents a query matches, as Whoosh's `docs_for_query` finds them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from whoosh import index as whoosh_index
from whoosh import query

from corrlog.index import open_index
from corrlog.model import Record
from corrlog.whoosh_match import _leaf_ids, matching
from test_index import mail


def _record(n: int, tag: str = "") -> Record:
    """Terms with 1 to ~400 postings: inlined, one block, several 128-posting blocks."""
    return mail(
        f"r{n:03}",
        datetime(2026, 3, 1 + n % 27, tzinfo=UTC),
        f"Day {n} invoice {n % 7} {tag}",
        " ".join(f"word{(n * k) % 53} text{k % 5}" for k in range(1 + n % 40)),
        n,
    )


@pytest.fixture(scope="module")
def searchers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, whoosh_index.Index]:
    """One segment; several segments with deleted documents (replaced and removed ones)."""
    made = {}
    for name, commits in (("one", 1), ("many", 4)):
        path = tmp_path_factory.mktemp(name)
        index = open_index(path, "whoosh")
        for start in range(0, 400, 400 // commits):
            with index.writer() as writer:
                for n in range(start, start + 400 // commits):
                    writer.add(_record(n), replace=False)
        if commits > 1:
            with index.writer() as writer:
                for n in range(0, 400, 9):
                    writer.add(_record(n, "revised"), replace=True)
                for n in range(5, 400, 31):
                    writer.delete(f"r{n:03}")
        made[name] = whoosh_index.open_dir(str(path))
    return made


def _term(field: str, text: str) -> query.Term:
    return query.Term(field, text)


QUERIES = {
    "many blocks": _term("body", "text1"),
    "one block": _term("body", "word52"),
    "inlined": _term("subject", "399"),
    "missing word": _term("body", "nowhere"),
    "missing field": _term("nosuchfield", "text1"),
    "not a value of the field": _term("date", "not a date"),
    "or": query.Or([_term("subject", "revis"), _term("body", "word7"), _term("body", "none")]),
    "and": query.And([_term("body", "word3"), _term("body", "text4")]),
    "nested": query.And(
        [query.Or([_term("subject", "6"), _term("body", "word11")]), _term("body", "text0")]
    ),
    "phrase (Whoosh's matchers)": query.Phrase("body", ["word0", "text0"]),
    "and with a phrase": query.And(
        [_term("body", "text2"), query.Phrase("body", ["word0", "text0"])]
    ),
    "every": query.Every(),
    "empty or": query.Or([]),
}


def test_the_layouts_are_what_the_tests_need(searchers: dict[str, whoosh_index.Index]) -> None:
    """One segment without deletions; several, some with deleted documents."""
    with searchers["one"].searcher() as one, searchers["many"].searcher() as many:
        assert 1 == len(one.leaf_searchers())
        assert not one.reader().has_deletions()
        assert len(many.leaf_searchers()) > 1
        assert any(leaf.reader().has_deletions() for leaf, _ in many.leaf_searchers())
        assert not all(leaf.reader().has_deletions() for leaf, _ in many.leaf_searchers())


@pytest.mark.parametrize("layout", ["one", "many"])
@pytest.mark.parametrize("name", list(QUERIES))
def test_matches_are_whooshs(
    searchers: dict[str, whoosh_index.Index], layout: str, name: str
) -> None:
    """Every query, on one segment and on several with deletions: Whoosh's documents."""
    q = QUERIES[name]
    with searchers[layout].searcher() as searcher:
        expected = set(searcher.docs_for_query(q))
        assert expected == matching(searcher, q)
    if name not in {"missing word", "missing field", "not a value of the field", "empty or"}:
        assert expected, "the query should match something"


def test_deleted_documents_are_not_matched(searchers: dict[str, whoosh_index.Index]) -> None:
    """A removed record's document is gone from the matches, a revised one's old version too."""
    with searchers["many"].searcher() as searcher:
        found = matching(searcher, _term("subject", "invoic"))
        ids = {searcher.stored_fields(docnum)["id"] for docnum in found}
        assert 400 - len(range(5, 400, 31)) == len(found) == len(ids)
        assert "r005" not in ids and "r009" in ids


@pytest.mark.parametrize(
    ("name", "from_blocks"),
    [("many blocks", True), ("inlined", True), ("nested", True), ("and with a phrase", False)],
)
def test_terms_are_read_from_blocks(
    searchers: dict[str, whoosh_index.Index], name: str, from_blocks: bool
) -> None:
    """On a segment without deletions, terms, ORs and ANDs skip Whoosh's matchers."""
    with searchers["one"].searcher() as searcher:
        (leaf, _offset), *_ = searcher.leaf_searchers()
        assert (_leaf_ids(leaf, QUERIES[name]) is not None) is from_blocks
