"""The Whoosh full-text index: schema, batched writes, query parsing and search with highlights."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from whoosh import highlight, index, query
from whoosh.analysis import STOP_WORDS, StandardAnalyzer, StemmingAnalyzer
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.qparser import MultifieldParser
from whoosh.qparser.dateparse import DateParserPlugin
from whoosh.searching import Searcher
from whoosh.util.times import TimeError

from corrlog.errors import IndexingError, QueryError
from corrlog.model import Origin, Record, SourceKind

DEFAULT_FIELDS = ("subject", "body", "attachment_text")
QUERY_FIELDS = (
    "id", "kind", "source", "direction", "contract", "client", "milestone",
    "from", "to", "subject", "body", "attachment", "date", "fulltext",
)  # fmt: skip
MARK_START, MARK_END = "\x02", "\x03"
MAX_TOKEN = 64  # longer "words" (base64 runs, 10 MB lines) are noise and cost time
MAX_STORED = 100_000  # characters of the text kept in the index for snippets
MAX_INDEXED = 1_000_000  # characters of any one text field indexed (the archive keeps all)


def make_schema() -> Schema:
    """The fields users search (`from:`, `contract:`, …) and the ones search results show."""
    words = StemmingAnalyzer(maxsize=MAX_TOKEN)
    names = StandardAnalyzer(stoplist=None, maxsize=MAX_TOKEN)
    return Schema(
        id=ID(stored=True, unique=True),
        kind=ID(stored=True),
        source=ID(stored=True),
        direction=ID(stored=True),
        unlinked=ID(),
        contract=KEYWORD(stored=True, lowercase=True),
        client=TEXT(stored=True, analyzer=names),
        milestone=KEYWORD(stored=True, lowercase=True),
        **{"from": KEYWORD(lowercase=True, scorable=True)},
        to=KEYWORD(lowercase=True, scorable=True),
        subject=TEXT(stored=True, analyzer=words, field_boost=2.0),
        body=TEXT(stored=True, analyzer=words),
        attachment=TEXT(stored=True, analyzer=names),
        attachment_text=TEXT(analyzer=words),
        fulltext=TEXT(analyzer=words),
        date=DATETIME(sortable=True),
        date_iso=STORED(),
        origin=STORED(),
        sender=STORED(),
        recipients=STORED(),
        sha256=STORED(),
    )


def address_tokens(addresses: list[str] | tuple[str, ...]) -> str:
    """Tokens that let `from:` match a whole address, its domain, its local part or a name."""
    tokens: list[str] = []
    for entry in addresses:
        for word in re.split(r"[\s<>,\"]+", entry.lower()):
            if not word:
                continue
            tokens.append(word)
            if "@" in word:
                local, _, domain = word.partition("@")
                tokens += [local, domain, "@" + domain]
    return " ".join(dict.fromkeys(tokens))


def origin_text(origin: Origin) -> str:
    """How a record's origin is shown: the note's path, or account/folder/UID."""
    if origin.source is SourceKind.IMAP:
        return f"{origin.name}/{origin.folder}/{origin.uid}"
    return origin.path or origin.name


def to_document(record: Record, attachment_text: str = "", fulltext: str = "") -> dict[str, Any]:
    """The Whoosh document for a record."""
    utc = record.date.astimezone(UTC).replace(tzinfo=None)
    return {
        "id": record.id,
        "kind": record.kind.value,
        "source": record.source.value,
        "direction": record.direction.value,
        "unlinked": "yes" if record.client and not record.contract else "no",
        "contract": record.contract or "",
        "client": record.client or "",
        "milestone": record.milestone or "",
        "from": address_tokens([record.sender]) if record.sender else "",
        "to": address_tokens(record.recipients),
        "subject": record.subject[:MAX_STORED],
        "body": record.text[:MAX_STORED],
        "attachment": " ".join(record.attachments)[:MAX_STORED],
        "attachment_text": attachment_text[:MAX_INDEXED],
        "fulltext": fulltext[:MAX_INDEXED],
        "date": utc,
        "date_iso": record.date.isoformat(),
        "origin": origin_text(record.origin),
        "sender": record.sender,
        "recipients": list(record.recipients),
        "sha256": record.sha256,
    }


class Index:
    """A Whoosh index in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def exists(self) -> bool:
        """Whether an index has been created here (damaged or not: opening tells)."""
        return self.directory.is_dir() and any(self.directory.glob("_MAIN_*.toc"))

    def create(self) -> None:
        """Create an empty index (replacing whatever is there)."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(mode=0o700, parents=True)
        index.create_in(str(self.directory), make_schema())

    def _open(self) -> index.Index:
        if not self.exists():
            raise IndexingError(
                f"no search index at {self.directory}; run 'corrlog sync' or 'corrlog reindex'"
            )
        try:
            return index.open_dir(str(self.directory))
        except Exception as exc:
            raise IndexingError(
                f"the search index at {self.directory} cannot be opened ({exc.__class__.__name__}: "
                f"{exc}); rebuild it with 'corrlog reindex'"
            ) from None

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """A batch of writes, committed once at the end (cancelled on error)."""
        if not self.exists():
            self.create()
        ix = self._open()
        raw = ix.writer()
        batch = Writer(raw)
        try:
            yield batch
        except BaseException:
            batch.close_searcher()
            raw.cancel()
            raise
        batch.flush()
        batch.close_searcher()
        raw.commit()
        self._fix_lock_mode()

    def _fix_lock_mode(self) -> None:
        """Whoosh creates its lock file executable (0700); data files are 0600."""
        for lock in self.directory.glob("*LOCK"):
            lock.chmod(0o600)

    @contextmanager
    def searcher(self) -> Iterator[Searcher]:
        """A searcher over the committed index."""
        ix = self._open()
        with ix.searcher() as s:
            yield s

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
        low, high = expected
        if not low <= count <= high:
            return f"the index holds {count} documents but {low} records are archived and indexed"
        return None


class Writer:
    """Adds and replaces documents within one Whoosh commit (the last write of an id wins)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._searcher: Any = None
        self._pending: dict[str, dict[str, Any]] = {}
        self._deleted: set[str] = set()

    def _shared_searcher(self) -> Any:
        if self._searcher is None:
            self._searcher = self._raw.searcher()
        return self._searcher

    def add(
        self, record: Record, *, replace: bool, attachment_text: str = "", fulltext: str = ""
    ) -> None:
        """Add a record's document; `replace` first removes the committed one with the same id."""
        if replace or record.id in self._pending:
            self._deleted.add(record.id)
        self._pending[record.id] = to_document(record, attachment_text, fulltext)

    def delete(self, record_id: str) -> None:
        """Remove a record's document (no-op when absent)."""
        self._pending.pop(record_id, None)
        self._deleted.add(record_id)

    def flush(self) -> None:
        """Hand the batch to Whoosh: deletions first (one shared searcher), then additions."""
        for record_id in sorted(self._deleted):
            self._raw.delete_by_term("id", record_id, searcher=self._shared_searcher())
        for document in self._pending.values():
            self._raw.add_document(**document)
        self._deleted.clear()
        self._pending.clear()

    def close_searcher(self) -> None:
        """Release the searcher used for deletions."""
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What a user asks for: a query string and filters."""

    text: str
    contract: str | None = None
    client: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    sort: str = "relevance"
    unlinked: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: stored fields, score and a snippet with match markers."""

    fields: dict[str, Any]
    score: float | None
    marked_snippet: str

    @property
    def snippet(self) -> str:
        """The snippet without match markers."""
        return self.marked_snippet.replace(MARK_START, "").replace(MARK_END, "")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits plus the total number of matches."""

    hits: list[Hit] = field(default_factory=list)
    total: int = 0


class _MarkFormatter(highlight.Formatter):  # type: ignore[misc]
    between = " … "

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f"{MARK_START}{highlight.get_text(text, token, replace)}{MARK_END}"


_FIELD_REF = re.compile(r"(?<![\w\"\\])([A-Za-z_][\w-]*):")
_ISO_IN_RANGE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
_DATE_RANGE = re.compile(r"date:\[([^\]]*)\]", re.I)


MAX_QUERY = 10_000
MAX_DEPTH = 64


def _quote(text: str) -> str:
    """A query as shown in an error: quoted, and cut short when long."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _strip_quoted(text: str) -> str:
    return re.sub(r'"[^"]*"', '""', text)


def _check_syntax(text: str) -> None:
    if text.count('"') % 2:
        raise QueryError(f'unbalanced quote in query {_quote(text)}; close the phrase with "')
    unquoted = _strip_quoted(text)
    depth = deepest = 0
    for char in unquoted:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
        if depth < 0:
            break
    if depth != 0:
        raise QueryError(f"unbalanced parenthesis in query {_quote(text)}")
    if deepest > MAX_DEPTH:
        raise QueryError(f"query nests parentheses {deepest} deep; at most {MAX_DEPTH} are allowed")
    _check_operators(unquoted)
    for name in _FIELD_REF.findall(unquoted):
        if name.lower() not in QUERY_FIELDS:
            known = ", ".join(f"{f}:" for f in QUERY_FIELDS)
            raise QueryError(
                f"unknown field {name[:40]!r} in query; known fields: {known} "
                "(put text in double quotes to search for it literally)"
            )


_OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}


def _check_operators(unquoted: str) -> None:
    tokens = re.sub(r"[()]", " ", unquoted).split()
    for position, token in enumerate(tokens):
        if token not in _OPERATORS:
            continue
        following = tokens[position + 1] if position + 1 < len(tokens) else None
        binary = token != "NOT"  # noqa: S105 - an operator, not a secret
        if following is None or following in _OPERATORS - {"NOT"}:
            raise QueryError(f"{token} needs a word after it in query {_quote(unquoted)}")
        if binary and position == 0:
            raise QueryError(f"{token} needs a word before it in query {_quote(unquoted)}")


def _compact_dates(text: str) -> str:
    """Whoosh misreads `2026-01-15` inside ranges; rewrite as `20260115`."""

    def compact(match: re.Match[str]) -> str:
        inner = _ISO_IN_RANGE.sub(lambda m: "".join(g for g in m.groups() if g), match.group(1))
        return f"date:[{inner}]"

    return _DATE_RANGE.sub(compact, text)


_DATE_CLAUSE = re.compile(r"date:(\[[^\]]*\]|\S+)", re.I)
_DATE_HINT = "write dates like 2026-01-31, ranges like date:[2026-01-01 to 2026-02-01]"


def _parser() -> MultifieldParser:
    parser = MultifieldParser(list(DEFAULT_FIELDS), make_schema())
    parser.add_plugin(DateParserPlugin(free=False))
    return parser


def _parse(parser: MultifieldParser, text: str, original: str) -> query.Query:
    try:
        parsed: query.Query = parser.parse(_compact_dates(text))
    except RecursionError:
        raise QueryError(f"query {_quote(original)} is nested too deeply") from None
    except (ValueError, TypeError, OverflowError, TimeError) as exc:
        raise QueryError(
            f"cannot read the date in query {_quote(original)} ({exc}); {_DATE_HINT}"
        ) from None
    return parsed


def _only_common_words(text: str) -> bool:
    """Whether every searchable word is a stop word or a single character."""
    words = [w.lower() for w in re.findall(r"[\w:]+", text) if w not in _OPERATORS]
    return all(":" not in w and (w in STOP_WORDS or len(w) < 2) for w in words)


def _lower_fields(text: str) -> str:
    """Field names are case-insensitive for users (`From:`), lower-case in the schema."""
    parts = re.split(r'("[^"]*")', text)
    for i in range(0, len(parts), 2):
        parts[i] = _FIELD_REF.sub(lambda m: m.group(1).lower() + ":", parts[i])
    return "".join(parts)


def _is_null(parsed: query.Query) -> bool:
    return isinstance(parsed, type(query.NullQuery))


def parse_query(text: str) -> query.Query:
    """Parse a user query (Whoosh syntax); QueryError with a hint when it makes no sense."""
    stripped = text.strip()
    if not stripped or stripped == "*":
        return query.Every()
    if len(stripped) > MAX_QUERY:
        raise QueryError(
            f"query of {len(stripped):,} characters; at most {MAX_QUERY:,} are allowed"
        )
    _check_syntax(stripped)
    parser = _parser()
    for clause in _DATE_CLAUSE.findall(_strip_quoted(stripped)):
        if _is_null(_parse(parser, f"date:{clause}", stripped)):
            raise QueryError(
                f"cannot read date:{clause[:40]} in query {_quote(stripped)}; {_DATE_HINT}"
            )
    parsed = _parse(parser, _lower_fields(stripped), stripped)
    if _is_null(parsed):
        if _only_common_words(stripped):
            raise QueryError(
                f"nothing to search for in {_quote(text)}: its words are too common or too short "
                "to be indexed; add a more specific word"
            )
        raise QueryError(
            f"cannot make sense of query {_quote(text)}; check operators (AND, OR, NOT) and "
            "dates (date:2026-01-31 or date:[2026-01-01 to 2026-02-01])"
        )
    return parsed


def _filters(request: SearchRequest) -> list[query.Query]:
    parts: list[query.Query] = []
    if request.contract:
        parts.append(query.Term("contract", request.contract.lower()))
    if request.kind:
        parts.append(query.Term("kind", request.kind))
    if request.unlinked:
        parts.append(query.Term("unlinked", "yes"))
    if request.client:
        words = [w for w in re.split(r"\W+", request.client.lower()) if w]
        if not words:
            raise QueryError(f"--client {request.client!r} has no letters or digits to match")
        parts.append(
            query.Phrase("client", words) if len(words) > 1 else query.Term("client", words[0])
        )
    if request.since or request.until:
        start = request.since.astimezone(UTC).replace(tzinfo=None) if request.since else None
        end = request.until.astimezone(UTC).replace(tzinfo=None) if request.until else None
        parts.append(query.DateRange("date", start, end))
    return parts


def _snippet(hit: Any, fields: dict[str, Any]) -> str:
    for name in ("body", "subject"):
        marked = hit.highlights(name, top=2, minscore=1) if fields.get(name) else ""
        if marked:
            return str(marked)
    return " ".join(str(fields.get("body", "")).split())[:160]


def search(idx: Index, request: SearchRequest) -> SearchResult:
    """Run a search and return its hits (newest first when sorting by date)."""
    parsed = parse_query(request.text)
    filters = _filters(request)
    combined = query.And([parsed, *filters]) if filters else parsed
    try:
        return _run_search(idx, request, combined)
    except (IndexingError, QueryError):
        raise
    except (
        Exception
    ) as exc:  # a damaged segment surfaces here as OSError, EOFError, struct.error...
        raise IndexingError(
            f"the search index at {idx.directory} cannot be read ({exc.__class__.__name__}); "
            "rebuild it with 'corrlog reindex'"
        ) from None


def _run_search(idx: Index, request: SearchRequest, combined: query.Query) -> SearchResult:
    with idx.searcher() as searcher:
        kwargs: dict[str, Any] = {"limit": request.limit, "terms": True}
        if request.sort == "date":
            kwargs.update(sortedby="date", reverse=True)
        results = searcher.search(combined, **kwargs)
        results.formatter = _MarkFormatter()
        results.fragmenter = highlight.ContextFragmenter(maxchars=200, surround=40)
        hits = []
        for hit in results:
            stored = dict(hit.fields())
            score = float(hit.score) if hit.score is not None and request.sort != "date" else None
            hits.append(Hit(fields=stored, score=score, marked_snippet=_snippet(hit, stored)))
        return SearchResult(hits=hits, total=len(results))
