"""The documents a Whoosh query matches, and their scores, read a posting block at a time.

Whoosh's `Searcher.docs_for_query` walks a query's matcher tree one posting at a time:
three or four Python calls per posting per term, most of a date-sorted search for a common
word (`gas` on the Enron index, 5,000 matches: 84 % of the search under cProfile). A query
made of terms, ORs and ANDs (what a word, several words or `field:word` parse into) is
answered here from each term's blocks of document numbers and set operations instead;
anything else (a phrase, a prefix) goes through Whoosh's matchers.

A ranked search scores every match (corrlog counts them all) through three to five Python
calls per posting per term, and reads each one's field length through four more: 75 % of
a common word's search. `scored` computes the same BM25F scores a block of postings at a
time, with Whoosh's own scorer's statistics and formula, and adds a document's scores in
the order Whoosh's matcher tree adds them, so every score is the very float Whoosh gives.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from operator import itemgetter
from typing import Any

from whoosh import query
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.columns import NumericColumn
from whoosh.matching.wrappers import FilterMatcher
from whoosh.scoring import BM25FScorer, WeightScorer
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

Scores = dict[int, float]  # document number -> score
_LENGTHS = tuple(byte_to_length(code) for code in range(256))  # a length column's byte decoded


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
    if type(q) is query.Term:
        return _term_ids(leaf, q)
    if type(q) in (query.Or, query.And) and q.subqueries:  # a subclass may match otherwise
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
    found = _postings(leaf, q)
    if found is None or isinstance(found, set):
        return found
    matcher, deleted, _text = found
    # inlined postings (a term in one document) are a list already
    ids = _block_ids(matcher) if isinstance(matcher, W3LeafMatcher) else set(matcher.all_ids())
    return ids - deleted if deleted else ids


def _postings(leaf: Searcher, q: query.Term) -> tuple[Any, frozenset[int], bytes] | set[int] | None:
    """The term's matcher in one segment, the segment's deleted documents and the term as
    stored; an empty set when the term matches nothing there; None when Whoosh's matchers
    must answer."""
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
    if isinstance(matcher, FilterMatcher):  # how a segment with deletions hides them
        if not matcher._exclude or matcher.boost != 1.0:
            return None
        return matcher.child, frozenset(matcher._ids), text
    return matcher, frozenset(), text


def _block_ids(matcher: W3LeafMatcher) -> set[int]:
    """Every document number of a fresh matcher, a block at a time (Whoosh's block format:
    a pickled tuple whose first item is the delta-encoded numbers)."""
    ids: set[int] = set()
    while not matcher._atend:
        matcher._read_data()
        ids.update(_decoded_ids(matcher))
        matcher._next_block()
    return ids


def _decoded_ids(matcher: W3LeafMatcher) -> Iterable[int]:
    """The current block's document numbers (read with `_read_data` first)."""
    raw: Iterable[int] = matcher._data[0]
    return raw if matcher._byteids else accumulate(raw)


# scores ---------------------------------------------------------------------------------------


def scored(searcher: Searcher, q: query.Query) -> Scores | None:
    """Every (global) document `q` matches with the score Whoosh's collector gives it;
    None when some part of `q` needs Whoosh's matchers (then search the usual way).

    Call it with the query as it is searched (`Or` nodes as binary unions: the default
    matcher type; see index_whoosh._binary_unions).
    """
    found: Scores = {}
    scorers: dict[tuple[str, bytes], Any] = {}  # a term's statistics are the whole index's
    for leaf, offset in searcher.leaf_searchers():
        scores = _leaf_scores(leaf, q, scorers)
        if scores is None:
            return None
        found.update(scores if offset == 0 else {d + offset: s for d, s in scores.items()})
    return found


def _leaf_scores(
    leaf: Searcher, q: query.Query, scorers: dict[tuple[str, bytes], Any]
) -> Scores | None:
    """One segment's scores, combined as `CompoundQuery.matcher` builds its matcher tree."""
    if type(q) is query.Term:
        return _term_scores(leaf, q, scorers)
    if type(q) not in (query.Or, query.And) or not q.subqueries or q.boost != 1.0:
        return None
    if isinstance(q, query.Or) and (
        q.matcher_type != query.Or.DEFAULT_MATCHER or q.scale or q.minmatch
    ):
        return None
    parts = []
    for sub in q.subqueries:
        part = _leaf_scores(leaf, sub, scorers)
        if part is None:
            return None
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    reader = leaf.reader()
    if isinstance(q, query.Or):  # DefaultOr: a tree of unions, the smallest joined first
        sizes = [sub.estimate_size(reader) for sub in q.subqueries]
        return _weighted_tree(_union, list(zip(sizes, parts, strict=True)))
    sizes = [0 - sub.estimate_size(reader) for sub in q.subqueries]  # And: the largest first
    return _weighted_tree(_intersection, list(zip(sizes, parts, strict=True)))


def _weighted_tree(
    join: Callable[[Scores, Scores], Scores], parts: list[tuple[int, Scores]]
) -> Scores:
    """`whoosh.util.make_weighted_tree`'s order: the two lightest parts are joined (first
    with second) and the result goes back after those of equal weight, until one is left.
    Matchers compare equal to each other there, so ties keep their order, as here."""
    weight = itemgetter(0)
    parts.sort(key=weight)
    while len(parts) > 1:
        (first, a), (second, b) = parts.pop(0), parts.pop(0)
        insort(parts, (first + second, join(a, b)), key=weight)
    return parts[0][1]


def _union(a: Scores, b: Scores) -> Scores:
    """`UnionMatcher.score`: a document in both scores a's plus b's, else its one score."""
    if not a or not b:
        return a or b
    joined = {**b, **a}
    for docnum in a.keys() & b.keys():
        joined[docnum] = a[docnum] + b[docnum]
    return joined


def _intersection(a: Scores, b: Scores) -> Scores:
    """`IntersectionMatcher.score`: a's score plus b's."""
    return {docnum: a[docnum] + b[docnum] for docnum in a.keys() & b.keys()}


def _term_scores(
    leaf: Searcher, q: query.Term, scorers: dict[tuple[str, bytes], Any]
) -> Scores | None:
    """A term's scores in one segment: Whoosh's scorer for it, applied to each posting.

    The scorer is made once per query: its idf and average field length come from the
    whole index (the segment's parent searcher), whichever segment asks.
    """
    if q.boost != 1.0 or q.minquality:
        return None
    found = _postings(leaf, q)
    if found is None or isinstance(found, set):
        return None if found is None else {}
    matcher, deleted, text = found
    ids, weights = _ids_and_weights(matcher)
    if deleted:
        kept = [(d, w) for d, w in zip(ids, weights, strict=True) if d not in deleted]
        ids, weights = [d for d, _ in kept], [w for _, w in kept]
    scorer = scorers.get((q.fieldname, text))
    if scorer is None:
        scorer = scorers[q.fieldname, text] = leaf.weighting.scorer(leaf, q.fieldname, text)
    if type(scorer) is WeightScorer:  # a field without lengths: the score is the weight
        return dict(zip(ids, weights, strict=True))
    if type(scorer) is not BM25FScorer:
        return None
    lengths = _field_lengths(leaf, q.fieldname)
    if lengths is None or (ids and ids[-1] >= len(lengths)):
        return None
    return _bm25(scorer, ids, weights, lengths)


def _ids_and_weights(matcher: Any) -> tuple[list[int], list[float]]:
    """A fresh matcher's document numbers and weights, in order."""
    ids: list[int] = []
    weights: list[float] = []
    if isinstance(matcher, W3LeafMatcher):
        while not matcher._atend:
            matcher._read_data()
            ids.extend(_decoded_ids(matcher))
            weights.extend(_decoded_weights(matcher))
            matcher._next_block()
        return ids, weights
    while matcher.is_active():  # inlined postings: a handful, through the matcher itself
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return ids, weights


def _decoded_weights(matcher: W3LeafMatcher) -> Sequence[float]:
    """The current block's weights, as `W3LeafMatcher._read_weights` decodes them: none
    stored means 1.0 each, one number means that number (as a 32-bit float) each."""
    stored = matcher._data[1]
    if stored is None:
        return [1.0] * matcher._blocklength
    if isinstance(stored, float):
        return [array("f", (stored,))[0]] * matcher._blocklength
    weights: Sequence[float] = stored
    return weights


def _field_lengths(leaf: Searcher, fieldname: str) -> Any:
    """The segment's length column of a field, one byte per document (None: unexpected)."""
    perdoc = getattr(leaf.reader(), "_perdoc", None)
    if perdoc is None:
        return None
    column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if type(column) is not NumericColumn.Reader or column._fixedlen != 1:
        return None
    return column._dbfile.get(column._basepos, column._count)


def _bm25(scorer: BM25FScorer, ids: list[int], weights: list[float], lengths: Any) -> Scores:
    """`whoosh.scoring.bm25` for each posting, the same expression in the same order."""
    idf, avgfl, b, k1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
    k1_plus_1, one_minus_b, decode = k1 + 1, 1 - b, _LENGTHS
    return {
        docnum: idf
        * ((tf * k1_plus_1) / (tf + k1 * (one_minus_b + b * decode[lengths[docnum]] / avgfl)))
        for docnum, tf in zip(ids, weights, strict=True)
    }
