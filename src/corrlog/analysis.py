"""The one text analysis every engine uses: words as Whoosh's StemmingAnalyzer makes them, fast.

Both engines index the word lists made here (Whoosh takes them as pre-analysed field
values, tantivy as whitespace-separated tokens), so a query finds the same documents
whichever engine runs it. `words()` gives exactly the tokens of
`StemmingAnalyzer(maxsize=MAX_TOKEN)` (a differential test holds it to that) at a
fraction of the cost: one C-level `findall` and a cached stem per distinct word instead
of a generator chain per token. Snippets are cut here too, the same for both engines.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from whoosh.analysis import STOP_WORDS
from whoosh.lang.porter import stem

MAX_TOKEN = 64  # longer "words" (base64 runs, 10 MB lines) are noise and cost time
MAX_STORED = 100_000  # characters of subject and body kept in the index (and analysed)
MAX_INDEXED = 1_000_000  # characters of any other text field analysed (the archive keeps all)
STEM_CACHE = 50_000  # distinct words remembered before the cache starts over (as Whoosh)
FRAGMENT_CHARS = 200  # a snippet's length around its first match
CONTEXT_CHARS = 40  # how much text before the first match a snippet shows

_TOKEN = re.compile(r"[\w*]+(?:\.?[\w*]+)*")  # Whoosh's RegexTokenizer default pattern
_TOKEN_CHAR = re.compile(r"[\w*]")
_WORD_RUN = re.compile(r"[\w*]*")
_PARTIAL_END = re.compile(r"[\w*]+\Z")
_STOP = frozenset(STOP_WORDS)
_stems: dict[str, str] = {}


def tokens(text: str) -> list[str]:
    """The lower-cased tokens of a text (what the `client` and `attachment` fields index)."""
    if text.isascii():
        return _TOKEN.findall(text.lower())
    return [token.lower() for token in _TOKEN.findall(text)]


def _stem(word: str) -> str:
    if len(_stems) >= STEM_CACHE:
        _stems.clear()
    stemmed: str = stem(word)
    _stems[word] = stemmed
    return stemmed


def words(text: str) -> list[str]:
    """The indexed words of a text: tokens without stop words, short or long ones, stemmed."""
    get = _stems.get
    return [
        get(token) or _stem(token)
        for token in tokens(text)
        if 1 < len(token) <= MAX_TOKEN and token not in _STOP
    ]


Words = dict[str, str]  # a record's analysed text fields: words joined by single spaces


def fulltext_extra(body: str, fulltext: str) -> str:
    """The part of `fulltext` not already indexed as `body` (each text is analysed once).

    `fulltext:` queries search body and this remainder together (see `index.build_query`).
    """
    if body and fulltext.startswith(body):
        return fulltext[len(body) :]
    return fulltext


def analyse(subject: str, body: str, attachment_text: str, fulltext: str) -> Words:
    """The words of a record's stemmed fields, cut as the index cuts them, space-joined.

    Mail is analysed in the parse workers (corrlog.prepare), so the process that writes the
    index only hands the words on. One string per field (words never hold a space) costs
    a fraction of a list of words to send between processes and to hold until the commit.
    """
    body = body[:MAX_STORED]
    return {
        "subject": " ".join(words(subject[:MAX_STORED])),
        "body": " ".join(words(body)),
        "attachment_text": " ".join(words(attachment_text[:MAX_INDEXED])),
        "fulltext": " ".join(words(fulltext_extra(body, fulltext)[:MAX_INDEXED])),
    }


def _token_start(text: str, at: int) -> int:
    """Where the token holding `text[at]` starts (tokens join word runs with single dots)."""
    start = at
    while start > 0 and (
        _TOKEN_CHAR.match(text[start - 1])
        or (text[start - 1] == "." and start > 1 and _TOKEN_CHAR.match(text[start - 2]))
    ):
        start -= 1
    return start


def _word_end(text: str, at: int) -> int:
    """Where the run of word characters at `at` ends (`at` itself outside a word)."""
    found = _WORD_RUN.match(text, at)
    return found.end() if found else at


class Highlighter:
    """Marks the words of a query in texts: finds candidates by prefix, checks each exactly.

    A stem always begins with all but the last character of the word it came from
    (Porter changes only a word's ending), so the candidates are the tokens starting
    with one of those prefixes; each candidate is analysed before it counts as a match.
    """

    def __init__(self, terms: Collection[str], mark: tuple[str, str]) -> None:
        self._terms = frozenset(terms)
        prefixes = sorted({t[: max(1, len(t) - 1)] for t in self._terms}, key=len, reverse=True)
        self._prefixes = tuple(prefixes)
        pattern = "|".join(re.escape(p) for p in prefixes)
        self._candidates = re.compile(rf"(?<![\w*])(?:{pattern})", re.I) if prefixes else None
        self._mark = mark

    def _matches(self, token: str) -> bool:
        analysed = words(token)
        return len(analysed) == 1 and analysed[0] in self._terms

    def first_match(self, text: str) -> tuple[int, int] | None:
        """The (start, end) of the first token of `text` that is one of the terms."""
        if self._candidates is None:
            return None
        if not text.isascii() and len(text.lower()) != len(text):
            return self._first_of_all(text)  # "İ" lowers to two characters: see below
        position = 0
        while found := self._candidates.search(text, position):
            start = _token_start(text, found.start())
            token = _TOKEN.match(text, start)
            if token is None:  # cannot happen: a candidate starts inside a token
                break
            if self._matches(token.group()):
                return token.span()
            position = max(token.end(), found.end())
        return None

    def _first_of_all(self, text: str) -> tuple[int, int] | None:
        """`first_match` analysing every token: a case-blind search for a prefix compares
        character by character and misses a word whose lower case is longer ("İnvoice")."""
        for token in _TOKEN.finditer(text):
            if self._matches(token.group()):
                return token.span()
        return None

    def snippet(self, text: str) -> str | None:
        """A fragment around the first match with every match in it marked, or None."""
        first = self.first_match(text)
        if first is None:
            return None
        start = max(0, first[0] - CONTEXT_CHARS)
        if start and _TOKEN_CHAR.match(text[start - 1]):  # inside a word: begin after it
            start = min(first[0], _word_end(text, start))
        end = min(len(text), max(first[1], start + FRAGMENT_CHARS))
        fragment = text[start:end]
        if end < len(text) and _TOKEN_CHAR.match(text[end]):  # ends inside a word: drop it
            partial = _PARTIAL_END.search(fragment)
            if partial and start + partial.start() >= first[1]:
                fragment = fragment[: partial.start()]
        begin, finish = self._mark
        prefixes = self._prefixes
        out, last = [], 0
        for token in _TOKEN.finditer(fragment):
            word = token.group()
            if word.lower().startswith(prefixes) and self._matches(word):  # candidates only
                out += [fragment[last : token.start()], begin, word, finish]
                last = token.end()
        out.append(fragment[last:])
        return " ".join("".join(out).split())
