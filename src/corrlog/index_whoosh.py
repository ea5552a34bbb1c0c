"""The Whoosh engine: documents, batched writes, a warm searcher and highlighted search."""

from __future__ import annotations

import bisect
import heapq
import shutil
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import index, query
from whoosh.collectors import Collector, FilterCollector, TopCollector
from whoosh.searching import Searcher

from corrlog.analysis import Words, analyse, tokens
from corrlog.errors import IndexingError, QueryError
from corrlog.index import (
    Hit,
    SearchRequest,
    SearchResult,
    Snippets,
    address_tokens,
    build_query,
    count_problem,
    make_schema,
    open_existing,
    read_error,
    stored_fields,
    utc_naive,
)
from corrlog.model import Record
from corrlog.whoosh_match import matching, scored
from corrlog.whoosh_postings import PostingsCodec, TermPool, add_document
from corrlog.whoosh_storage import MappedStorage, open_mapped

LIMIT_MB = 64  # Whoosh's own pool, which takes over from TermPool past MAX_POSTINGS


def to_document(
    record: Record, attachment_text: str = "", fulltext: str = "", words: Words | None = None
) -> dict[str, Any]:
    """The Whoosh document for a record (`fulltext` holds only what `body` does not).

    Text fields are handed to Whoosh already analysed (`corrlog.analysis`: the same words
    its analysers make, much faster; `words` when the caller analysed them already);
    `_stored_<field>` keeps the text itself.
    """
    return _document(*_parts(record, attachment_text, fulltext, words))


def _parts(
    record: Record, attachment_text: str, fulltext: str, words: Words | None
) -> tuple[dict[str, Any], Words]:
    """A document without its analysed text fields, and those fields as joined words.

    A batch keeps documents in this form until its commit: one string per field instead of
    one string per word (split again only as each document goes to Whoosh).
    """
    stored = stored_fields(record)
    analysed = words or analyse(record.subject, record.text, attachment_text, fulltext)
    names = {"client": tokens(stored["client"]), "attachment": tokens(stored["attachment"])}
    plain = {
        **stored,
        **names,
        **{f"_stored_{name}": stored[name] for name in ("subject", "body", *names)},
        "unlinked": "yes" if record.client and not record.contract else "no",
        "from": address_tokens([record.sender]) if record.sender else "",
        "to": address_tokens(record.recipients),
        "date": utc_naive(record.date),
    }
    return plain, analysed


def _document(plain: dict[str, Any], analysed: Words) -> dict[str, Any]:
    return {**plain, **{name: joined.split() for name, joined in analysed.items()}}


class WhooshIndex:
    """A Whoosh index in one directory, with one warm searcher shared by all searches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # Whoosh searchers are not thread-safe
        self._searcher: Searcher | None = None
        self._stamp: tuple[str, int, int] | None = None
        self._storage: MappedStorage | None = None  # the warm searcher's files
        self._dates: DateColumn | None = None  # the warm searcher's sorted date column

    def exists(self) -> bool:
        """Whether an index has been created here (damaged or not: opening tells)."""
        return self.directory.is_dir() and any(self.directory.glob("_MAIN_*.toc"))

    def create(self) -> None:
        """Create an empty index (replacing whatever is there)."""
        with self._lock:
            self._drop_searcher()
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(mode=0o700, parents=True)
        index.create_in(str(self.directory), make_schema())

    def _open(self) -> index.Index:
        return open_existing(
            self.directory, self.exists(), lambda: open_mapped(str(self.directory))
        )

    @contextmanager
    def writer(self) -> Iterator[WhooshBatch]:
        """A batch of writes, committed once at the end (cancelled on error)."""
        if not self.exists():
            self.create()
        raw = self._open().writer(limitmb=LIMIT_MB, codec=PostingsCodec())
        raw.pool = TermPool(raw.pool)  # Whoosh ignores its own `poolclass` argument
        batch = WhooshBatch(raw)
        try:
            yield batch
        except BaseException:
            batch.close_searcher()
            raw.cancel()
            raise
        batch.flush()
        batch.close_searcher()
        raw.commit(mergetype=merge_small_segments)
        self._fix_lock_mode()

    def _fix_lock_mode(self) -> None:
        """Whoosh creates its lock file executable (0700); data files are 0600."""
        for lock in self.directory.glob("*LOCK"):
            lock.chmod(0o600)

    def _current_stamp(self) -> tuple[str, int, int] | None:
        """The newest table of contents (name, inode, mtime): it changes with every commit."""
        try:
            tocs = sorted(self.directory.glob("_MAIN_*.toc"), key=lambda p: int(p.stem[6:] or 0))
            if not tocs:
                return None
            info = tocs[-1].stat()
        except FileNotFoundError:  # a commit replaced it under us: a new stamp either way
            return None
        return tocs[-1].name, info.st_ino, info.st_mtime_ns

    def _drop_searcher(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
        self._searcher, self._stamp, self._dates, self._storage = None, None, None, None

    def _date_column(self) -> DateColumn:
        """The warm searcher's sorted date column (call with the lock held, after `_warm`)."""
        if self._dates is None:
            assert self._searcher is not None
            self._dates = DateColumn(self._searcher)
        return self._dates

    def _warm(self) -> Searcher:
        """The shared searcher, reopened when a newer commit exists or a file it maps has
        changed size (damage; see `MappedStorage.maps_intact`). Call with the lock held."""
        stamp = self._current_stamp() if self.directory.is_dir() else None
        if (
            self._searcher is None
            or stamp != self._stamp
            or (self._storage is not None and not self._storage.maps_intact())
        ):
            self._drop_searcher()
            opened = self._open()
            self._searcher, self._stamp, self._storage = opened.searcher(), stamp, opened.storage
        return self._searcher

    @contextmanager
    def searcher(self) -> Iterator[Searcher]:
        """The warm searcher over the latest commit, held exclusively while in use."""
        with self._lock:
            yield self._warm()

    def doc_count(self) -> int:
        """How many documents the index holds."""
        with self.searcher() as s:
            return int(s.doc_count())

    def problem(self, expected: tuple[int, int]) -> str | None:
        """What is wrong with the index (missing, unreadable, wrong size), or None when healthy.

        `expected` bounds the document count: records committed to the index, and those
        plus the ones still pending (a crash between the two commits leaves some pending).
        """
        if not self.exists():
            return "the index is missing"
        try:
            with self.searcher() as s:
                count = int(s.doc_count())
                for hit in s.search(query.Every(), limit=3):
                    hit.fields()
        except Exception as exc:
            return f"the index cannot be read ({exc.__class__.__name__}: {exc})"
        return count_problem(count, expected)

    def stored(self, record_id: str) -> dict[str, Any] | None:
        """A record's stored fields, or None when it is not in the index."""
        with self.searcher() as s:
            doc = s.document(id=record_id)
        return dict(doc) if doc is not None else None

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a search and return its hits (newest first when sorting by date)."""
        combined = build_query(request)
        for attempt in (1, 2):
            try:
                with self.searcher() as searcher:
                    return _run_search(searcher, request, combined, self._date_column)
            except (IndexingError, QueryError):
                raise
            except FileNotFoundError as exc:  # a commit merged segments away under us
                if attempt == 2:
                    raise read_error(self.directory, exc) from None
                with self._lock:
                    self._drop_searcher()
            except Exception as exc:  # a damaged segment: OSError, EOFError, struct.error...
                raise read_error(self.directory, exc) from None
        raise AssertionError("unreachable")


SMALL_SEGMENT = 1_000  # documents: segments this small are merged together, when there are
MERGE_AT = 8  # this many of them; bigger segments are never merged by a commit


def merge_small_segments(writer: Any, segments: list[Any]) -> list[Any]:
    """A commit's merge policy: the small segments into the one being written, once there
    are MERGE_AT of them; segments whose every document is deleted are dropped.

    Whoosh's default (MERGE_SMALL) merges every segment once there are about twenty: after
    a large import (2,500 documents per commit), the second or third small sync would
    rewrite the whole index (154 s for the 44,600 Enron messages). Here a commit merges at
    most MERGE_AT x SMALL_SEGMENT documents, and each month of mail adds about one segment
    the search reads (~1,000 messages).
    """
    from whoosh.reading import SegmentReader

    live = [segment for segment in segments if segment.doc_count() > 0]
    small = [segment for segment in live if segment.doc_count_all() < SMALL_SEGMENT]
    if len(small) < MERGE_AT:
        return live
    for segment in small:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        try:
            writer.add_reader(reader)
        finally:
            reader.close()
    return [segment for segment in live if segment.doc_count_all() >= SMALL_SEGMENT]


class WhooshBatch:
    """Adds and replaces documents within one Whoosh commit (the last write of an id wins)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._searcher: Any = None
        self._pending: dict[str, tuple[dict[str, Any], Words]] = {}
        self._deleted: set[str] = set()

    def _shared_searcher(self) -> Any:
        if self._searcher is None:
            self._searcher = self._raw.searcher()
        return self._searcher

    def add(
        self,
        record: Record,
        *,
        replace: bool,
        attachment_text: str = "",
        fulltext: str = "",
        words: Words | None = None,
    ) -> None:
        """Add a record's document; `replace` first removes the committed one with the same id."""
        if replace or record.id in self._pending:
            self._deleted.add(record.id)
        self._pending[record.id] = _parts(record, attachment_text, fulltext, words)

    def delete(self, record_id: str) -> None:
        """Remove a record's document (no-op when absent)."""
        self._pending.pop(record_id, None)
        self._deleted.add(record_id)

    def flush(self) -> None:
        """Hand the batch to Whoosh: deletions first (one shared searcher), then additions."""
        for record_id in sorted(self._deleted):
            self._raw.delete_by_term("id", record_id, searcher=self._shared_searcher())
        for plain, analysed in self._pending.values():
            add_document(self._raw, _document(plain, analysed))
        self._deleted.clear()
        self._pending.clear()

    def close_searcher(self) -> None:
        """Release the searcher used for deletions."""
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None


def _is_date_range(q: query.Query) -> bool:
    return isinstance(q, query.NumericRange) and q.fieldname == "date"


def _conjuncts(q: query.Query) -> list[query.Query]:
    """The parts of a top-level AND (nested ANDs flattened), or the query itself."""
    if isinstance(q, query.And):
        return [part for sub in q.subqueries for part in _conjuncts(sub)]
    return [q]


def split_dates(q: query.Query) -> tuple[query.Query, list[query.NumericRange]]:
    """(the query without its top-level date ranges, those ranges).

    Whoosh runs a DateRange by expanding it into the numeric terms it spans and merging
    their postings in Python: seconds on a large index. A top-level date range is a
    filter, so it is applied to the date column instead (see `DateColumn`).
    """
    parts = _conjuncts(q)
    ranges = [p for p in parts if _is_date_range(p)]
    if not ranges:
        return q, []
    rest = [p for p in parts if not _is_date_range(p)]
    if not rest:
        return query.Every(), ranges
    return (rest[0] if len(rest) == 1 else query.And(rest)), ranges


class DateColumn:
    """One searcher's sortable date column, sorted once: a date range is two bisections.

    Kept beside the warm searcher, so only the first date filter after a commit reads the
    column (a Python loop over every document); later ones cost a slice.
    """

    def __init__(self, searcher: Searcher) -> None:
        column = searcher.reader().column_reader("date", translate=False)
        pairs = sorted((value, docnum) for docnum, value in enumerate(column))
        self._values = [value for value, _ in pairs]
        self._docnums = [docnum for _, docnum in pairs]
        self.rank = [0] * len(pairs)  # a document's place in date order
        for place, docnum in enumerate(self._docnums):
            self.rank[docnum] = place

    def newest(self, docnums: Iterable[int], limit: int) -> list[int]:
        """The `limit` newest of `docnums`, newest first."""
        places = heapq.nlargest(limit, map(self.rank.__getitem__, docnums))
        return [self._docnums[place] for place in places]

    def _span(self, window: query.NumericRange) -> tuple[int, int]:
        low, high = 0, len(self._values)
        if window.start is not None:
            side = bisect.bisect_right if window.startexcl else bisect.bisect_left
            low = side(self._values, window.start)
        if window.end is not None:
            side = bisect.bisect_left if window.endexcl else bisect.bisect_right
            high = side(self._values, window.end)
        return low, high

    def within(self, ranges: list[query.NumericRange]) -> Dated:
        """The documents dated within every range."""
        low, high = 0, len(self._values)
        for window in ranges:
            start, end = self._span(window)
            low, high = max(low, start), min(high, end)
        return Dated(self, low, high)

    def docs(self, ranges: list[query.NumericRange]) -> list[int]:
        """Document numbers dated within every range, oldest first."""
        return self.within(ranges).docs()


@dataclass(frozen=True, slots=True)
class Dated:
    """The documents whose place in date order is in [low, high): a date filter."""

    column: DateColumn
    low: int
    high: int

    def docs(self) -> list[int]:
        """Their numbers, oldest first."""
        return self.column._docnums[self.low : self.high] if self.low < self.high else []

    def keep(self, docnums: Iterable[int]) -> list[int]:
        """Those of `docnums` dated here (cheaper than a set of every dated document when
        `docnums` are the matches of a query and the range spans most of the index)."""
        rank, low, high = self.column.rank, self.low, self.high
        return [docnum for docnum in docnums if low <= rank[docnum] < high]


def _binary_unions(q: query.Query) -> None:
    """Make every OR match through a tree of union matchers.

    On segments under 5,000 documents Whoosh picks an array matcher that walks each
    segment's whole document range in parts; the default query (subject OR body OR
    attachment_text) then costs that for every word. The tree only visits matching
    documents: a rare word 3x, a common word 1.8x faster on the Enron index.
    """
    if isinstance(q, query.Or):
        q.matcher_type = query.Or.DEFAULT_MATCHER
    for child in q.children():
        _binary_unions(child)


def _run_search(
    searcher: Searcher,
    request: SearchRequest,
    combined: query.Query,
    dates: Callable[[], DateColumn],
) -> SearchResult:
    combined, ranges = split_dates(combined)
    _binary_unions(combined)
    snippets = Snippets(combined)
    if not ranges:
        if request.sort == "date":
            return _newest(searcher, request, combined, None, dates(), snippets)
        return _collect(searcher, request, combined, None, snippets)
    dated = dates().within(ranges)
    if isinstance(combined, query.Every):  # nothing but dates: no need to ask Whoosh
        return _dated_only(searcher, request, dated.docs(), snippets)
    if dated.low >= dated.high:  # Whoosh reads an empty filter as no filter at all
        return SearchResult(hits=[], total=0)
    if request.sort == "date":
        return _newest(searcher, request, combined, dated, dates(), snippets)
    return _collect(searcher, request, combined, dated, snippets)


def _newest(
    searcher: Searcher,
    request: SearchRequest,
    combined: query.Query,
    allowed: Dated | None,
    dates: DateColumn,
    snippets: Snippets,
) -> SearchResult:
    """Sorted by date: every match once (no scores), the newest picked by date rank.

    Whoosh would read the date column per match through Python and then run the query a
    second time to count; this is one set of the matches (`matching`) and a heap.
    """
    found: Collection[int] = matching(searcher, combined)
    if allowed is not None:
        found = allowed.keep(found)
    hits = [_hit(searcher, docnum, None, snippets) for docnum in dates.newest(found, request.limit)]
    return SearchResult(hits=hits, total=len(found))


def _collect(
    searcher: Searcher,
    request: SearchRequest,
    combined: query.Query,
    allowed: Dated | None,
    snippets: Snippets,
) -> SearchResult:
    """By relevance: every match scored (`scored`: Whoosh's scores, a block at a time) and
    the best kept as Whoosh's collector keeps them: higher score first, then lower number."""
    scores = scored(searcher, combined)
    if scores is None:
        return _collect_by_whoosh(searcher, request, combined, allowed, snippets)
    if allowed is not None:
        scores = {docnum: scores[docnum] for docnum in allowed.keep(scores)}
    best = heapq.nsmallest(request.limit, scores.items(), key=_by_rank)
    hits = [_hit(searcher, docnum, score, snippets) for docnum, score in best]
    return SearchResult(hits=hits, total=len(scores))


def _by_rank(item: tuple[int, float]) -> tuple[float, int]:
    return -item[1], item[0]


def _hit(searcher: Searcher, docnum: int, score: float | None, snippets: Snippets) -> Hit:
    """A hit: the document's stored fields, its score and its snippet."""
    stored = dict(searcher.stored_fields(docnum))
    return Hit(fields=stored, score=score, marked_snippet=snippets(stored))


def _collect_by_whoosh(
    searcher: Searcher,
    request: SearchRequest,
    combined: query.Query,
    allowed: Dated | None,
    snippets: Snippets,
) -> SearchResult:
    """By relevance through Whoosh's collector (queries `scored` does not take)."""
    # Every match is scored once and counted: Whoosh's default skips blocks and swaps in
    # pruned matchers, which then needs a second run of the query to count the matches.
    top: Collector = TopCollector(limit=request.limit, usequality=False, replace=0)
    collector = top if allowed is None else FilterCollector(top, allow=set(allowed.docs()))
    searcher.search_with_collector(combined, collector)
    results = collector.results()
    hits = []
    for hit in results:
        stored = dict(hit.fields())
        score = None if hit.score is None else float(hit.score)
        hits.append(Hit(fields=stored, score=score, marked_snippet=snippets(stored)))
    return SearchResult(hits=hits, total=len(results))


def _dated_only(
    searcher: Searcher, request: SearchRequest, dated: list[int], snippets: Snippets
) -> SearchResult:
    """A query of date ranges only: the dated documents, as Whoosh would rank them.

    Every document scores 1.0, so relevance order is document order; by date, newest first.
    """
    reader = searcher.reader()
    if reader.has_deletions():
        dated = [docnum for docnum in dated if not reader.is_deleted(docnum)]
    by_date = request.sort == "date"
    chosen = dated[::-1][: request.limit] if by_date else sorted(dated)[: request.limit]
    score = None if by_date else 1.0
    hits = [_hit(searcher, docnum, score, snippets) for docnum in chosen]
    return SearchResult(hits=hits, total=len(dated))
