"""`matching` and `scored`: the documents a query matches, as Whoosh's `docs_for_query`
finds them, and their scores, as Whoosh's collectors compute them (the very floats)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh import query

import corrlog.index_whoosh
from corrlog.index import SearchRequest, open_index
from corrlog.index_whoosh import _binary_unions
from corrlog.model import Record
from corrlog.whoosh_match import _leaf_ids, matching, scored
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
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
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
        made[name] = path
    return made


@pytest.fixture(scope="module")
def searchers(paths: dict[str, Path]) -> dict[str, whoosh_index.Index]:
    """The indexes as plain Whoosh opens them."""
    return {name: whoosh_index.open_dir(str(path)) for name, path in paths.items()}


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
    "ordered (an And that needs positions)": query.Ordered(  # word0 always comes first
        [_term("body", "text0"), _term("body", "word0")]
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
        if name.startswith("ordered"):  # in the wrong order: none, though all hold both words
            assert not expected and matching(searcher, query.And(q.subqueries))
        elif name not in {"missing word", "missing field", "not a value of the field", "empty or"}:
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


# scores ----------------------------------------------------------------------------------------

RANKED = {
    **QUERIES,
    "same term, three fields": query.Or(
        [_term("subject", "invoic"), _term("body", "text3"), _term("body", "word9")]
    ),
    "or of ands": query.Or(
        [
            query.And([_term("body", "text1"), _term("body", "word2")]),
            query.And([_term("subject", "day"), _term("body", "text4")]),
            _term("subject", "3"),
        ]
    ),
    "a field without lengths": _term("id", "r017"),
}
NEEDS_WHOOSH = {
    "phrase (Whoosh's matchers)",
    "and with a phrase",
    "ordered (an And that needs positions)",
    "every",
    "empty or",
}


def _as_searched(q: query.Query) -> query.Query:
    searched = copy.deepcopy(q)
    _binary_unions(searched)
    return searched


@pytest.mark.parametrize("layout", ["one", "many"])
@pytest.mark.parametrize("name", list(RANKED))
def test_scores_are_whooshs(
    searchers: dict[str, whoosh_index.Index], layout: str, name: str
) -> None:
    """Every query Whoosh scores term by term gets the same score for every document (the
    same float: the sums in Whoosh's order); the others are left to Whoosh (None)."""
    q = _as_searched(RANKED[name])
    with searchers[layout].searcher() as searcher:
        found = scored(searcher, q)
        if name in NEEDS_WHOOSH:
            assert found is None
            return
        expected = dict(
            (hit.docnum, hit.score) for hit in searcher.search(q, limit=None, optimize=False)
        )
        assert expected == found
        assert set(found) == matching(searcher, q)


def test_sums_follow_whooshs_tree_not_the_query_order(
    searchers: dict[str, whoosh_index.Index],
) -> None:
    """Floating-point sums depend on their order: Whoosh adds an OR's parts smallest first
    (a weighted tree), and the query's own order gives other floats for some documents."""
    q = _as_searched(RANKED["same term, three fields"])
    with searchers["many"].searcher() as searcher:
        found = scored(searcher, q)
        parts = [scored(searcher, _as_searched(sub)) for sub in q.subqueries]
    assert found is not None and all(part is not None for part in parts)
    in_query_order = {
        docnum: sum((part[docnum] for part in parts if part and docnum in part), 0.0)
        for docnum in found
    }
    assert in_query_order.keys() == found.keys()
    assert in_query_order != found


REQUESTS = [
    SearchRequest(text="invoice", limit=7),
    SearchRequest(text="text1 word2", limit=5),
    SearchRequest(text="subject:revised OR word7", limit=3),
    SearchRequest(text="text0 date:[2026-03-05 to 2026-03-19]", limit=6),
    SearchRequest(text="invoice", limit=1000),
    SearchRequest(text="word0 text0", limit=4, sort="date"),
    SearchRequest(text="nowhere", limit=5),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=[r.text for r in REQUESTS])
def test_search_ranks_as_whooshs_collector(
    paths: dict[str, Path], request_: SearchRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the index: the same hits in the same order (ties: lower document first),
    the same scores and totals as Whoosh's collector, date filters included."""
    index = open_index(paths["many"], "whoosh")
    fast = index.search(request_)
    monkeypatch.setattr(corrlog.index_whoosh, "scored", lambda searcher, q: None)
    slow = open_index(paths["many"], "whoosh").search(request_)
    assert [(h.fields["id"], h.score) for h in slow.hits] == [
        (h.fields["id"], h.score) for h in fast.hits
    ]
    assert (slow.total, [h.marked_snippet for h in slow.hits]) == (
        fast.total,
        [h.marked_snippet for h in fast.hits],
    )
    if request_.text != "nowhere":
        assert fast.hits, "the request should find something"
