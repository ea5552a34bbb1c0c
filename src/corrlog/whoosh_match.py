"""The documents a Whoosh query matches, without scores, read a posting block at a time.

Whoosh's `Searcher.docs_for_query` walks a query's matcher tree one posting at a time:
three or four Python calls per posting per term, most of a date-sorted search for a common
word (`gas` on the Enron index, 5,000 matches: 84 % of the search under cProfile). A query
made of terms, ORs and ANDs (what a word, several words or `field:word` parse into) is
answered here from each term's blocks of document numbers and set operations instead;
anything else (a phrase, a prefix, a segment with deleted documents) goes through
Whoosh's matchers.
"""

from __future__ import annotations

from itertools import accumulate

from whoosh import query
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.searching import Searcher


def matching(searcher: Searcher, q: query.Query) -> set[int]:
    """The (global) numbers of the documents `q` matches: `docs_for_query`'s, as a set."""
    found: set[int] = set()
    for leaf, offset in searcher.leaf_searchers():
        ids = _leaf_ids(leaf, q)
        if ids is None:
            ids = set(q.docs(leaf))
        found.update(ids if offset == 0 else (docnum + offset for docnum in ids))
    return found


def _leaf_ids(leaf: Searcher, q: query.Query) -> set[int] | None:
    """The segment's matching document numbers; None when `q` needs Whoosh's matchers."""
    if isinstance(q, query.Term):
        return _term_ids(leaf, q)
    if isinstance(q, query.Or | query.And) and q.subqueries:
        parts = []
        for sub in q.subqueries:
            ids = _leaf_ids(leaf, sub)
            if ids is None:
                return None
            parts.append(ids)
        if isinstance(q, query.Or):
            return set().union(*parts)
        return set.intersection(*parts)
    return None


def _term_ids(leaf: Searcher, q: query.Term) -> set[int] | None:
    """A term's document numbers in one segment, as Whoosh's `Term.matcher` finds them."""
    schema, reader = leaf.schema, leaf.reader()
    if q.fieldname not in schema:
        return set()
    try:
        text = schema[q.fieldname].to_bytes(q.text)
    except ValueError:  # not a value of that field (a word in a date field): no match
        return set()
    if (q.fieldname, text) not in reader:
        return set()
    matcher = reader.postings(q.fieldname, text)
    if isinstance(matcher, W3LeafMatcher):
        return _block_ids(matcher)
    if reader.has_deletions():
        return None  # wrapped to skip deleted documents: Whoosh's way
    return set(matcher.all_ids())  # inlined postings: a list already


def _block_ids(matcher: W3LeafMatcher) -> set[int]:
    """Every document number of a fresh matcher, a block at a time (Whoosh's block format:
    a pickled tuple whose first item is the delta-encoded numbers)."""
    ids: set[int] = set()
    while not matcher._atend:
        matcher._read_data()
        ids.update(accumulate(matcher._data[0]))
        matcher._next_block()
    return ids
