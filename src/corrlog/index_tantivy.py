"""The tantivy engine: the same fields, words and query language as Whoosh, on a Rust index.

Text fields hold the words `corrlog.analysis` makes, separated by spaces and split again
by a whitespace tokenizer, so tantivy indexes exactly the terms the Whoosh engine does.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tantivy

from corrlog.analysis import Words, analyse, tokens
from corrlog.errors import IndexingError, QueryError
from corrlog.index import (
    NAME_FIELDS,
    STEMMED_FIELDS,
    Hit,
    SearchRequest,
    SearchResult,
    Snippets,
    address_tokens,
    build_query,
    count_problem,
    open_existing,
    read_error,
    stored_fields,
    utc_naive,
)
from corrlog.model import Record
from corrlog.tantivy_query import clamp_date, translate

HEAP_BYTES = 128_000_000  # the writer's memory budget before it writes a segment
RAW = ("id", "kind", "source", "direction", "unlinked", "contract", "milestone", "from", "to")
WORDS = "corrlog_words"  # the tokenizer of analysed fields: split pre-analysed words on spaces
STORED = "stored"  # one JSON blob: exactly the fields a Whoosh hit carries


def make_schema() -> Any:
    """The tantivy schema: Whoosh's fields holding corrlog's words, plus the stored blob."""
    builder = tantivy.SchemaBuilder()
    for name in RAW:
        builder.add_text_field(name, tokenizer_name="raw")
    for name in (*STEMMED_FIELDS, *NAME_FIELDS):
        builder.add_text_field(name, tokenizer_name=WORDS)
    builder.add_date_field("date", indexed=True, fast=True)
    builder.add_bytes_field(STORED, stored=True)
    return builder.build()


def _with_tokenizer(ix: Any) -> Any:
    """An opened index that knows the WORDS tokenizer (tantivy does not store analysers)."""
    ix.register_tokenizer(
        WORDS, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    )
    return ix


def analyser_problem(directory: Path) -> str | None:
    """Why an existing index cannot be used with today's analysis (an older layout), or None."""
    try:
        fields = json.loads((directory / "meta.json").read_text())["schema"]
        options = {f["name"]: f.get("options", {}) for f in fields}
        tokenizer = options["body"]["indexing"]["tokenizer"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: opening the index reports it
    if tokenizer != WORDS:
        return "the index was built by an older corrlog with other word analysis"
    return None


def to_document(
    record: Record, attachment_text: str = "", fulltext: str = "", words: Words | None = None
) -> Any:
    """The tantivy document for a record (`fulltext` holds only what `body` does not)."""
    stored = stored_fields(record)
    analysed = words or analyse(record.subject, record.text, attachment_text, fulltext)
    doc = tantivy.Document()
    for name in ("id", "kind", "source", "direction"):
        doc.add_text(name, stored[name])
    for name in ("contract", "milestone"):  # keywords, as Whoosh splits them
        for token in str(stored[name]).lower().split():
            doc.add_text(name, token)
    doc.add_text("unlinked", "yes" if record.client and not record.contract else "no")
    for name, addresses in (("from", [record.sender] if record.sender else []), ("to", None)):
        for token in address_tokens(record.recipients if addresses is None else addresses).split():
            doc.add_text(name, token)
    for name in STEMMED_FIELDS:
        doc.add_text(name, analysed[name])
    for name in NAME_FIELDS:
        doc.add_text(name, " ".join(tokens(stored[name])))
    doc.add_date("date", clamp_date(utc_naive(record.date)))
    doc.add_bytes(STORED, json.dumps(stored, ensure_ascii=False).encode())
    return doc


def _fix_modes(directory: Path) -> None:
    """tantivy writes with the process umask; the data dir is owner-only (0600/0700)."""
    directory.chmod(0o700)
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o600)


class TantivyIndex:
    """A tantivy index in one directory, with a warm searcher reopened after each commit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.schema = make_schema()
        self._lock = threading.Lock()  # guards the swap only: tantivy searchers are thread-safe
        self._warm: tuple[tuple[int, int, int] | None, Any, Any] | None = None

    @property
    def _meta(self) -> Path:
        return self.directory / "meta.json"

    def exists(self) -> bool:
        """Whether an index has been created here (damaged or not: opening tells)."""
        return self._meta.is_file()

    def create(self) -> None:
        """Create an empty index (replacing whatever is there)."""
        with self._lock:
            self._warm = None
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(mode=0o700, parents=True)
        tantivy.Index(self.schema, path=str(self.directory))
        _fix_modes(self.directory)

    def _open(self) -> Any:
        ix = open_existing(
            self.directory, self.exists(), lambda: tantivy.Index.open(str(self.directory))
        )
        if problem := analyser_problem(self.directory):
            raise IndexingError(f"{problem} ({self.directory}); rebuild it with 'corrlog reindex'")
        return _with_tokenizer(ix)

    @contextmanager
    def writer(self) -> Iterator[TantivyBatch]:
        """A batch of writes, committed once at the end (rolled back on error)."""
        if not self.exists():
            self.create()
        try:
            raw = self._open().writer(heap_size=HEAP_BYTES)
        except ValueError as exc:
            raise IndexingError(
                f"cannot write the search index at {self.directory} ({exc}); "
                "is another corrlog process writing?"
            ) from None
        try:
            yield TantivyBatch(raw)
        except BaseException:
            raw.rollback()
            raw.wait_merging_threads()
            raise
        raw.commit()
        raw.wait_merging_threads()
        _fix_modes(self.directory)

    def _stamp(self) -> tuple[int, int, int] | None:
        """meta.json is replaced on every commit: its inode, mtime and size say which one."""
        try:
            info = self._meta.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def _searcher(self) -> tuple[Any, Any]:
        """The open index and its searcher over the latest commit (reopened after a commit)."""
        stamp = self._stamp()
        with self._lock:
            if self._warm is None or self._warm[0] != stamp:
                ix = self._open()
                self._warm = (stamp, ix, ix.searcher())
            return self._warm[1], self._warm[2]

    def doc_count(self) -> int:
        """How many documents the index holds."""
        return int(self._searcher()[1].num_docs)

    def problem(self, expected: tuple[int, int]) -> str | None:
        """What is wrong with the index (missing, unreadable, wrong size), or None when healthy."""
        if not self.exists():
            return "the index is missing"
        if problem := analyser_problem(self.directory):
            return problem
        try:
            _, searcher = self._searcher()
            count = int(searcher.num_docs)
            for _score, address in searcher.search(tantivy.Query.all_query(), 3).hits:
                _stored(searcher.doc(address))
        except Exception as exc:
            return f"the index cannot be read ({exc.__class__.__name__}: {exc})"
        return count_problem(count, expected)

    def stored(self, record_id: str) -> dict[str, Any] | None:
        """A record's stored fields, or None when it is not in the index."""
        _, searcher = self._searcher()
        found = searcher.search(tantivy.Query.term_query(self.schema, "id", record_id), 1).hits
        return _stored(searcher.doc(found[0][1])) if found else None

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a search and return its hits (newest first when sorting by date)."""
        tree = build_query(request)
        try:
            _, searcher = self._searcher()
            return _run_search(searcher, request, translate(self.schema, tree), Snippets(tree))
        except (IndexingError, QueryError):
            raise
        except Exception as exc:  # a damaged or vanished segment file
            raise read_error(self.directory, exc) from None


class TantivyBatch:
    """Adds and replaces documents within one tantivy commit (the last write of an id wins)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._added: set[str] = set()

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
        if replace or record.id in self._added:
            self._raw.delete_documents_by_term("id", record.id)  # only earlier documents
        self._raw.add_document(to_document(record, attachment_text, fulltext, words))
        self._added.add(record.id)

    def delete(self, record_id: str) -> None:
        """Remove a record's document (no-op when absent)."""
        self._raw.delete_documents_by_term("id", record_id)
        self._added.discard(record_id)


def _stored(doc: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(bytes(doc.get_first(STORED)))
    return value


def _run_search(
    searcher: Any, request: SearchRequest, translated: Any, snippets: Snippets
) -> SearchResult:
    by_date = request.sort == "date"
    kwargs: dict[str, Any] = {"count": True}
    if by_date:
        kwargs.update(order_by_field="date", order=tantivy.Order.Desc)
    found = searcher.search(translated, max(request.limit, 1), **kwargs)
    hits = []
    for score, address in found.hits[: request.limit]:
        fields = _stored(searcher.doc(address))
        hits.append(
            Hit(
                fields=fields,
                score=None if by_date else float(score),
                marked_snippet=snippets(fields),
            )
        )
    return SearchResult(hits=hits, total=int(found.count or 0))
