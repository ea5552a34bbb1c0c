"""The engine-neutral index interface: requests, results, the query language and the engine factory.

Users write one query language (Whoosh syntax with corrlog's fields) whatever engine is
configured. This module validates and parses it into a Whoosh query tree whose words are
analysed as `corrlog.analysis` analyses documents; each engine runs that tree (Whoosh
directly, tantivy by translating it), so both find the same documents. Snippets are made
here for both. Engines are imported lazily.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from whoosh import query
from whoosh.analysis import (
    STOP_WORDS,
    StandardAnalyzer,
    StemmingAnalyzer,
)
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.formats import Positions
from whoosh.qparser import MultifieldParser
from whoosh.qparser.dateparse import DateParserPlugin
from whoosh.util.times import TimeError

from corrlog.analysis import MAX_STORED, MAX_TOKEN, Highlighter, Words, tokens
from corrlog.errors import ConfigError, IndexingError, QueryError
from corrlog.model import Origin, Record, SourceKind

ENGINES = ("whoosh", "tantivy")
DEFAULT_FIELDS = ("subject", "body", "attachment_text")
QUERY_FIELDS = (
    "id", "kind", "source", "direction", "contract", "client", "milestone",
    "from", "to", "subject", "body", "attachment", "date", "fulltext",
)  # fmt: skip
STORED_FIELDS = (
    "id", "kind", "source", "direction", "contract", "client", "milestone",
    "subject", "body", "attachment", "date_iso", "origin", "sender", "recipients", "sha256",
)  # fmt: skip
STEMMED_FIELDS = ("subject", "body", "attachment_text", "fulltext")  # analysis.words
NAME_FIELDS = ("client", "attachment")  # analysis.tokens: split and lower-cased only
MARK_START, MARK_END = "\x02", "\x03"
HIGHLIGHT_CHARS = 20_000  # snippets come from a text's start
SNIPPET_CHARS = 160  # the plain snippet when no word of the query is in the text


@functools.cache
def make_schema() -> Schema:
    """The fields of the query language as a Whoosh schema (the Whoosh engine stores this one).

    Its analysers do what `corrlog.analysis` does fast (`words`, `tokens`): documents arrive
    pre-analysed, and Whoosh's query parser runs these on query words.
    """
    words = StemmingAnalyzer(maxsize=MAX_TOKEN)
    names = StandardAnalyzer(stoplist=None, maxsize=MAX_TOKEN)
    schema = Schema(
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
    for name in (*STEMMED_FIELDS, *NAME_FIELDS):
        schema[name].format = WordPositions(field_boost=schema[name].format.field_boost)
    return schema


# Most words occur once in a message: their encoded position list is looked up, not pickled.
_ONE_POSITION: dict[int, bytes] = {}
_ONE_POSITION_CACHED = 100_000  # positions with a cached encoding


class WordPositions(Positions):  # type: ignore[misc]
    """Whoosh's Positions format, fast for documents that arrive as word lists.

    Whoosh turns a list into one Token per word and collects it through generators;
    this counts positions in one loop. The bytes written are Positions' own, so indexes
    read the same; text (a query, an older caller) still goes through the analyser.
    Schemas pickle this class by name: it stays here.
    """

    def word_values(self, value: Any, analyzer: Any, **kwargs: Any) -> Iterator[Any]:
        """(word, frequency, weight, encoded positions) for each distinct word."""
        if not isinstance(value, list):
            yield from super().word_values(value, analyzer, **kwargs)
            return
        positions: dict[str, Any] = {}  # a word seen once: its position; else a list
        for position, word in enumerate(value):
            found = positions.get(word)
            if found is None:
                positions[word] = position
            elif found.__class__ is int:
                positions[word] = [found, position]
            else:
                found.append(position)
        boost, encode, single = self.field_boost, self.encode, _ONE_POSITION
        for word, found in positions.items():
            if found.__class__ is not int:
                yield word, len(found), len(found) * boost, encode(found)
                continue
            encoded = single.get(found)
            if encoded is None:
                encoded = encode([found])
                if found < _ONE_POSITION_CACHED:
                    single[found] = encoded
            yield word, 1, boost, encoded


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


def stored_fields(record: Record) -> dict[str, Any]:
    """What a search result shows of a record: the same keys and types from every engine."""
    return {
        "id": record.id,
        "kind": record.kind.value,
        "source": record.source.value,
        "direction": record.direction.value,
        "contract": record.contract or "",
        "client": record.client or "",
        "milestone": record.milestone or "",
        "subject": record.subject[:MAX_STORED],
        "body": record.text[:MAX_STORED],
        "attachment": " ".join(record.attachments)[:MAX_STORED],
        "date_iso": record.date.isoformat(),
        "origin": origin_text(record.origin),
        "sender": record.sender,
        "recipients": list(record.recipients),
        "sha256": record.sha256,
    }


def utc_naive(when: datetime) -> datetime:
    """A date as the index keeps it: UTC without a time zone."""
    return when.astimezone(UTC).replace(tzinfo=None)


def plain_snippet(body: str) -> str:
    """The snippet shown when no word of the query is in the text: its start, unmarked."""
    return " ".join(body.split())[:SNIPPET_CHARS]


def _positive_leaves(tree: query.Query) -> Iterator[query.Query]:
    """The leaves a match can come from (not those under NOT or the right of ANDNOT)."""
    if isinstance(tree, query.Not):
        return
    if isinstance(tree, query.AndNot):
        yield from _positive_leaves(tree.a)
    elif tree.is_leaf():
        yield tree
    else:
        for child in tree.children():
            yield from _positive_leaves(child)


def query_words(tree: query.Query, fieldname: str) -> set[str]:
    """The analysed words a query looks for in one field (terms and phrase words)."""
    found: set[str] = set()
    for leaf in _positive_leaves(tree):
        if getattr(leaf, "fieldname", None) != fieldname:
            continue
        if isinstance(leaf, query.Term) and isinstance(leaf.text, str):
            found.add(leaf.text)
        elif isinstance(leaf, query.Phrase):
            found.update(leaf.words)
    return found


class Snippets:
    """Snippets for one search, the same on every engine.

    A window around the body's first match, else the subject's, else the body's start;
    only the first HIGHLIGHT_CHARS of a text are searched.
    """

    def __init__(self, tree: query.Query) -> None:
        self._highlighters = [
            (name, Highlighter(found, (MARK_START, MARK_END)))
            for name in ("body", "subject")
            if (found := query_words(tree, name))
        ]

    def __call__(self, fields: dict[str, Any]) -> str:
        """The marked snippet of one hit's stored fields."""
        for name, highlighter in self._highlighters:
            text = str(fields.get(name) or "")[:HIGHLIGHT_CHARS]
            marked = highlighter.snippet(text) if text else None
            if marked:
                return marked
        return plain_snippet(str(fields.get("body", "")))


def read_error(directory: Path, exc: BaseException) -> IndexingError:
    """The error for an index that cannot be read (a damaged segment, a missing file...)."""
    return IndexingError(
        f"the search index at {directory} cannot be read ({exc.__class__.__name__}); "
        "rebuild it with 'corrlog reindex'"
    )


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
    """Parse a user query (Whoosh syntax) into a tree of analysed words.

    QueryError with a hint when the query makes no sense.
    """
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
        words = tokens(request.client)  # as the client field is analysed
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


def _widen_fulltext(parsed: query.Query) -> query.Query:
    """`fulltext:x` means body or the rest of the full text (each indexed once)."""
    if not parsed.is_leaf():
        return parsed.apply(_widen_fulltext)
    if getattr(parsed, "fieldname", None) != "fulltext":
        return parsed
    body = copy.copy(parsed)
    body.fieldname = "body"
    return query.Or([body, parsed])


def build_query(request: SearchRequest) -> query.Query:
    """The whole request (query text and filters) as one Whoosh query tree."""
    parsed = _widen_fulltext(parse_query(request.text))
    filters = _filters(request)
    return query.And([parsed, *filters]) if filters else parsed


class IndexBatch(Protocol):
    """Writes within one commit of an index."""

    def add(
        self,
        record: Record,
        *,
        replace: bool,
        attachment_text: str = "",
        fulltext: str = "",
        words: Words | None = None,
    ) -> None:
        """Add a record's document; `replace` first removes the committed one with its id.

        `words` are the text fields already analysed (`analysis.analyse` of the same texts);
        without them the engine analyses the texts itself.
        """

    def delete(self, record_id: str) -> None:
        """Remove a record's document (no-op when absent)."""


class SearchIndex(Protocol):
    """A full-text index in one directory; what every engine provides.

    Implementations keep a warm searcher between `search()` calls, refresh it when a newer
    commit exists, and allow searches from several threads while one thread writes.
    """

    directory: Path

    def exists(self) -> bool:
        """Whether an index has been created here (damaged or not: opening tells)."""

    def create(self) -> None:
        """Create an empty index (replacing whatever is there)."""

    def writer(self) -> AbstractContextManager[IndexBatch]:
        """A batch of writes, committed once at the end (cancelled on error)."""

    def doc_count(self) -> int:
        """How many documents the index holds."""

    def problem(self, expected: tuple[int, int]) -> str | None:
        """What is wrong (missing, unreadable, wrong size), or None; `expected` bounds the count."""

    def stored(self, record_id: str) -> dict[str, Any] | None:
        """A record's stored fields (as in `Hit.fields`), or None when it is not indexed."""

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a search: hits (newest first when sorting by date) and the total."""


Index = SearchIndex  # the name callers used before engines were pluggable

TANTIVY_MISSING = "the tantivy engine needs the tantivy package: pip install 'corrlog[tantivy]'"


def index_dirname(engine: str) -> str:
    """The folder under the data dir where an engine keeps its index (never shared)."""
    return "index" if engine == "whoosh" else f"index-{engine}"


T = TypeVar("T")


def open_existing(directory: Path, exists: bool, opener: Callable[[], T]) -> T:
    """Open an engine's index; IndexingError naming the remedy when missing or unreadable."""
    if not exists:
        raise IndexingError(
            f"no search index at {directory}; run 'corrlog sync' or 'corrlog reindex'"
        )
    try:
        return opener()
    except Exception as exc:
        raise IndexingError(
            f"the search index at {directory} cannot be opened ({exc.__class__.__name__}: "
            f"{exc}); rebuild it with 'corrlog reindex'"
        ) from None


def count_problem(count: int, expected: tuple[int, int]) -> str | None:
    """What is wrong with an index holding `count` documents, given the bounds `expected`."""
    low, high = expected
    if not low <= count <= high:
        return f"the index holds {count} documents but {low} records are archived and indexed"
    return None


def open_index(directory: Path, engine: str = "whoosh") -> SearchIndex:
    """The index of the configured engine in `directory` (only that engine is imported)."""
    if engine == "whoosh":
        from corrlog.index_whoosh import WhooshIndex

        return WhooshIndex(directory)
    if engine == "tantivy":
        try:
            importlib.import_module("tantivy")
        except ImportError:
            raise ConfigError(TANTIVY_MISSING) from None
        from corrlog.index_tantivy import TantivyIndex

        return TantivyIndex(directory)
    raise ConfigError(f"unknown index engine {engine!r}; use one of: {', '.join(ENGINES)}")


def search(idx: SearchIndex, request: SearchRequest) -> SearchResult:
    """Run a search on any engine (the facade callers use)."""
    return idx.search(request)
