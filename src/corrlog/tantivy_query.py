"""Translate a parsed query (a Whoosh tree of analysed words) into a tantivy query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import tantivy
from whoosh import query
from whoosh.util.times import long_to_datetime

from corrlog.errors import QueryError

Occur = tantivy.Occur
Q = tantivy.Query
BOOSTS = {"subject": 2.0}  # Whoosh's field_boost
# tantivy dates are nanoseconds in an i64 (1677-2262); mail may claim year 1 or 9999
EARLIEST = tantivy.MIN_DATETIME.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
LATEST = tantivy.MAX_DATETIME.replace(tzinfo=None, microsecond=0) - timedelta(seconds=1)
_REGEX_SPECIAL = frozenset('.^$*+?()[]{}|\\#&~"<>@-')


def translate(schema: Any, tree: query.Query) -> Any:
    """The tantivy query for a parsed tree (its words are already analysed, as indexed)."""
    translated = _Translator(schema).node(tree)
    return Q.all_query() if translated is None else translated


def clamp_date(when: datetime) -> datetime:
    """A naive UTC date moved into tantivy's range (the stored ISO date keeps the real one)."""
    return min(max(when, EARLIEST), LATEST)


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _wildcard(pattern: str) -> str:
    return "".join({"*": ".*", "?": "."}.get(c, _escape(c)) for c in pattern)


def _when(value: int | None) -> datetime | None:
    """A Whoosh date number (as its parser makes for a single day) as a datetime."""
    return None if value is None else long_to_datetime(value)


def _everything_but(excluded: Any) -> Any:
    return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, excluded)])


class _Translator:
    """One translation against a schema."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def node(self, q: query.Query) -> Any | None:
        """A tantivy query, or None for a clause that constrains nothing (stop words only)."""
        if isinstance(q, query.And):
            return self._and(q.subqueries)
        if isinstance(q, query.Or):
            return self._or(q.subqueries)
        if isinstance(q, query.Not):
            inner = self.node(q.query)
            return None if inner is None else _everything_but(inner)
        if isinstance(q, query.AndNot | query.AndMaybe | query.Require):
            return self._binary(q)
        if isinstance(q, query.Every):
            return Q.all_query()
        if isinstance(q, type(query.NullQuery)):
            return Q.empty_query()
        return self._boosted(q, self._leaf(q))

    def _and(self, children: list[query.Query]) -> Any | None:
        clauses = []
        for child in children:
            negated = isinstance(child, query.Not)
            translated = self.node(child.query if negated else child)
            if translated is not None:
                clauses.append((Occur.MustNot if negated else Occur.Must, translated))
        if not clauses:
            return None
        if all(occur == Occur.MustNot for occur, _ in clauses):
            clauses.append((Occur.Must, Q.all_query()))
        return Q.boolean_query(clauses)

    def _or(self, children: list[query.Query]) -> Any | None:
        clauses = [(Occur.Should, t) for c in children if (t := self.node(c)) is not None]
        return Q.boolean_query(clauses) if clauses else None

    def _binary(self, q: query.BinaryQuery) -> Any | None:
        first, second = self.node(q.a), self.node(q.b)
        if first is None or second is None:
            return first if second is None else second
        occur = {query.AndNot: Occur.MustNot, query.AndMaybe: Occur.Should}.get(type(q))
        return Q.boolean_query([(Occur.Must, first), (occur or Occur.Must, second)])

    def _boosted(self, q: query.Query, translated: Any | None) -> Any | None:
        if translated is None:
            return None
        boost = float(getattr(q, "boost", 1.0)) * BOOSTS.get(getattr(q, "fieldname", ""), 1.0)
        return translated if boost == 1.0 else Q.boost_query(translated, boost)

    def _leaf(self, q: query.Query) -> Any | None:
        if isinstance(q, query.DateRange):
            return self._dates(q.startdate, q.enddate, q.startexcl, q.endexcl)
        if isinstance(q, query.NumericRange) and q.fieldname == "date":  # a day: date:2026-01-15
            return self._dates(_when(q.start), _when(q.end), q.startexcl, q.endexcl)
        if isinstance(q, query.Term):
            return self._term(q.fieldname, q.text)
        if isinstance(q, query.Phrase):
            return self._words(q.fieldname, list(q.words))
        if isinstance(q, query.Prefix):
            return self._regex(q.fieldname, _escape(self._case(q.fieldname, q.text)) + ".*")
        if isinstance(q, query.Wildcard):
            return self._regex(q.fieldname, _wildcard(self._case(q.fieldname, q.text)))
        raise QueryError(
            f"the tantivy engine cannot run a {q.__class__.__name__} query ({q}); "
            "rewrite it with words, phrases, wild* or date ranges"
        )

    def _term(self, field: str, text: Any) -> Any | None:
        if field == "date" and isinstance(text, datetime):
            return self._dates(text, text, False, False)
        return Q.term_query(self._schema, field, text)

    def _words(self, field: str, words: list[str]) -> Any | None:
        if not words:  # a phrase of stop words only
            return None
        if len(words) == 1:
            return Q.term_query(self._schema, field, words[0])
        phrase: list[str | tuple[int, str]] = list(words)
        return Q.phrase_query(self._schema, field, phrase)

    def _regex(self, field: str, pattern: str) -> Any:
        return Q.regex_query(self._schema, field, pattern)

    @staticmethod
    def _case(field: str, text: str) -> str:
        return text if field == "id" else text.lower()

    def _dates(
        self, start: datetime | None, end: datetime | None, start_excl: bool, end_excl: bool
    ) -> Any:
        if start is None and end is None:
            return Q.all_query()
        return Q.range_query(
            self._schema,
            "date",
            tantivy.FieldType.Date,
            None if start is None else clamp_date(start),
            None if end is None else clamp_date(end),
            include_lower=not start_excl,
            include_upper=not end_excl,
        )
