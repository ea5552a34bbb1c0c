"""Classification: is an item an agreement, a progress update or a plain message (pure)."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

from corrlog.model import Direction, Kind

# Patterns are regular expressions matched case-insensitively as whole words: each is wrapped
# in (?<!\w)(?:...)(?!\w), so "signed" does not match "designed". They are data: lists from the
# config replace these defaults. Agreement patterns want affirmative phrasing
# ("we accept", "approved", "signed"), never bare nouns like "contract" or "rate", which
# questions and proposals use just as often.
DEFAULT_AGREEMENT: tuple[str, ...] = (
    # assent to terms
    r"(?<!as )agreed",
    r"(?:we|i|he|she|they) (?:also |hereby )?accept(?:s|ed)?",
    r"accepted",
    r"(?:we|i) (?:fully )?agree (?:to|on|with the)",
    r"(?:we|i) (?:hereby )?approve",
    r"approved",
    r"ok'?d|okayed|signed off|green light",
    r"(?:counter-?)?signed(?! up)",
    r"(?:happy|glad|pleased) to (?:accept|sign|proceed|go ahead)",
    r"executed (?:agreement|contract|copy|sow)",
    r"confirm(?:s|ed|ing)[^.?!\n]{0,40}?"
    r"(?:scope|terms?|rates?|price|budget|timeline|order|deadline|milestones?|schedule|contract)",
    r"^confirmed[.,!:]",
    r"(?:statement of work|sow)(?: v?\d+)? (?:is )?attached",
    # go-ahead idioms
    r"go[- ]ahead",
    r"proceed",
    r"let's (?:do it|do this|get started|renew|extend)",
    r"(?:please|let's|we'll|we will|we'd like to) go (?:with|for)",
    r"(?:you have|with) our (?:approval|ok|okay|blessing|sign-off)",
    r"on the (?:same|agreed|quoted) terms",
    r"it'?s a deal",
    r"^deal[.!]",
    r"(?:we're|we are|count us) in[.!]",
    r"(?:we'll|we will|i'll|i will) take it",
    r"no objections?",
    # satisfied with the terms
    r"(?:happy|fine|ok|okay|good) with (?:[$\u20ac\u00a3]?\d[\d,.]*|(?:the|your|that|this|these) "
    r"(?:terms|rate|price|budget|scope|quote|estimate|proposal|timeline|plan|offer))",
    r"(?:terms|scope|price|budget|rates?|milestones?|schedule|plan|quote|estimate|fee|amount)"
    r"[^.?!\n]{0,30}?(?:(?:looks?|sounds?) good|(?:is|are) (?:fine|ok|okay|acceptable))",
)

DEFAULT_UPDATE: tuple[str, ...] = (
    # reports
    r"progress",
    r"(?:status|weekly|daily|progress|quick|project|sprint|monday|tuesday|wednesday|thursday|"
    r"friday|weekend|month|end-of-day|eod) (?:update|report)",
    r"update(?: on|:)",
    r"wrap-?up|recap",
    r"this week",
    r"on track",
    r"where things stand",
    r"demo",
    # work finished or handed over
    r"delivered",
    r"completed",
    r"(?:is|are|now) (?:complete|written|ready|implemented|live)",
    r"submit(?:ted|ting)",
    r"done",
    r"finished",
    r"deployed",
    r"shipped",
    r"released",
    r"launched",
    r"published",
    r"merged",
    r"implemented",
    r"fixed(?![- ](?:price|fee|rate|cost|budget|amount|term|bid|scope))",
    r"went (?:out|live)",
    r"live on (?:staging|production)",
    r"uploaded",
    r"handed (?:it )?over",
    r"ready (?:for (?:your )?(?:review|approval|feedback|testing)|to (?:publish|ship|launch|deploy))",
    r"for your (?:review|approval|feedback|sign-off)",
    r"(?:is|are) (?:now )?(?:in|on|up on) (?:the|your) "
    r"(?:repo|folder|drive|shared drive|dropbox|google doc|doc|figma|platform|cms|wiki|staging)",
    r"(?:^|(?:i|we)(?:'ve| have)? )(?:wrote|written|built|added|designed|drafted|styled|created|"
    r"refactored|cleaned up|set up|configured|migrated|integrated|tested|wired up|polished|"
    r"translated|edited|recorded|investigated|found)",
    r"(?:tickets?|stories|issues?|tasks?|bugs?)[^.?!\n]{0,10}?(?:closed|resolved)",
    r"(?:closed|resolved|fixed) \d+(?: of \d+)?",
    # deliverables
    r"(?:drafts?|designs?|variations?|illustrations?|files|mockups?|report|chapters?|copy|assets|"
    r"photos|images|video|recording|screenshots?|build)[^.?!\n]{0,30}?attached",
    r"attached[^.?!\n]{0,30}?(?:drafts?|designs?|illustrations?|mockups?|report|chapters?|"
    r"screenshots?|recording|build)",
    r"(?:mockups?|wireframes?|prototype|screenshots?|recording)",
    # work logs
    r"end[- ]of[- ](?:the )?week",
    r"(?:work|daily) ?log",
    r"(?:spent|worked)[^.?!\n]{0,30}? on",
    r"\d+(?:\.\d+)?\s?h(?:ours?)?(?: on|:)",
)


_BUILT_IN = frozenset((*DEFAULT_AGREEMENT, *DEFAULT_UPDATE))


@dataclass(frozen=True, slots=True)
class ClassifyRules:
    """Regex patterns (case-insensitive, whole words) that make an item an agreement or an update.

    Patterns are compiled on first use (a sync with nothing to classify compiles none);
    patterns from the config are compiled at construction, so a bad one fails there, by name.
    """

    agreement: tuple[str, ...]
    update: tuple[str, ...]
    _prefilters: tuple[Prefilter | None, Prefilter | None, Prefilter | None] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Compile the patterns that are not built in (a bad one raises ValueError, by name)."""
        for pattern in (*self.agreement, *self.update):
            if pattern not in _BUILT_IN:
                _compile(pattern)
        prefilters = (
            Prefilter.build((*self.agreement, *self.update)),
            Prefilter.build(self.agreement),
            Prefilter.build(self.update),
        )
        object.__setattr__(self, "_prefilters", prefilters)

    @classmethod
    def from_config(cls, agreement: list[str] | None, update: list[str] | None) -> ClassifyRules:
        """Rules from config lists; a missing list keeps the defaults, a given one replaces them."""
        return cls(
            agreement=DEFAULT_AGREEMENT if agreement is None else tuple(agreement),
            update=DEFAULT_UPDATE if update is None else tuple(update),
        )


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_ESCAPE_OR_GROUP_NAME = re.compile(r"\\.|\(\?P[<=]")


@dataclass(frozen=True, slots=True)
class Prefilter:
    """One alternation of many patterns: a sentence it misses matches none of them.

    It only picks the sentences worth the exact, pattern-by-pattern check (one C-level scan
    instead of one per pattern). Case-insensitive matching is the slow part of `re`, so
    ASCII sentences are lowered and matched case-sensitively when that is provably the same:
    the patterns hold no upper-case or non-ASCII letters outside escapes. Each regex is
    compiled on first use.
    """

    source: str
    lowercase_safe: bool

    @classmethod
    def build(cls, patterns: tuple[str, ...]) -> Prefilter | None:
        """The prefilter, or None when the patterns cannot be combined safely (backreferences,
        inline flags): the exact check then reads every sentence."""
        if not patterns or any(_BACKREFERENCE.search(p) for p in patterns):
            return None
        # One lookbehind for all: only word starts try the alternatives (4x faster than a
        # lookbehind per alternative); backtracking makes it the union of the patterns.
        alternatives = "|".join(f"(?:{p})" for p in patterns)
        built = cls(rf"(?<!\w)(?:{alternatives})(?!\w)", all(map(_lowercase_safe, patterns)))
        if not _BUILT_IN.issuperset(patterns):  # the built-in ones are known to combine
            try:
                _ = built.caseless, built.lowered
            except re.error:
                return None
        return built

    @property
    def caseless(self) -> re.Pattern[str]:
        """The alternation, case-insensitive."""
        return _compile_source(self.source, re.IGNORECASE)

    @property
    def lowered(self) -> re.Pattern[str] | None:
        """The alternation, case-sensitive, for lowered ASCII text; None when not the same."""
        return _compile_source(self.source, 0) if self.lowercase_safe else None

    def hits(self, sentence: str, lowered: str | None) -> bool:
        """Whether any pattern matches; `lowered` is the sentence lowered when it is ASCII."""
        if lowered is not None and self.lowered is not None:
            return self.lowered.search(lowered) is not None
        return self.caseless.search(sentence) is not None


_CHARACTER_ESCAPE = re.compile(
    r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|N\{([^}]*)\}|([0-7]{1,3}))"
)


def _escaped_characters(pattern: str) -> list[str]:
    """The characters that \\x41, \\u20ac, \\N{EURO SIGN} or \\101 escapes stand for."""
    found = []
    for hex2, hex4, hex8, name, octal in _CHARACTER_ESCAPE.findall(pattern):
        if name:
            try:
                found.append(unicodedata.lookup(name))
            except KeyError:
                found.append("A")  # unknown: treat as a letter, i.e. unsafe
        else:
            found.append(chr(int(hex2 or hex4 or hex8, 16) if not octal else int(octal, 8)))
    return found


def _lowercase_safe(pattern: str) -> bool:
    """Whether the pattern matches lowered ASCII text exactly as it matches any case with re.I."""
    escaped = _escaped_characters(pattern)
    letters = [c for c in [*_ESCAPE_OR_GROUP_NAME.sub("", pattern), *escaped] if c.isalpha()]
    return all(c.isascii() and c.islower() for c in letters)


@functools.cache
def _compile_source(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(source, flags)


@functools.cache
def _compile(pattern: str) -> re.Pattern[str]:
    """A pattern as matched: whole words, case-insensitive (ValueError naming a bad one)."""
    if not pattern.strip():
        raise ValueError("classification pattern '' is empty")
    try:
        re.compile(pattern)
        return re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"classification pattern {pattern!r} is not a valid regex: {exc}") from exc


DEFAULT_RULES = ClassifyRules(agreement=DEFAULT_AGREEMENT, update=DEFAULT_UPDATE)

_DECLARED = {
    "agreement": Kind.AGREEMENT,
    "update": Kind.UPDATE,
    "note": Kind.MESSAGE,
    "message": Kind.MESSAGE,
}
_TAG = re.compile(r"\[(agreement|update)\]", re.IGNORECASE)
_REPLY = re.compile(r"^\s*(?:re|aw|sv|vs|antw|r)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_FORWARD = re.compile(r"^\s*(?:fwd?|wg|tr|vb)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_GREETING = re.compile(r"^(?:hi|hello|hey|dear)\b[^,\n]{0,30},\s*", re.IGNORECASE)
_OPENER = re.compile(
    r"^(?:could|can|would|will|should|shall|may|might|what|what's|whats|when|where|who|whom|"
    r"which|why|how|is|isn't|are|aren't|was|were|do|does|did|don't|have|has|had|any)(?!\w)",
    re.IGNORECASE,
)
# Words that, earlier in the same clause, undo a match: negation, condition, pending.
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s[-\u2013\u2014]\s")
_HEDGE = re.compile(
    r"(?<!\w)(?:not|no|never|cannot|if|once|when|until|unless|whether|pending|awaiting|before|"
    r"yet to|to be)(?!\w)|n't(?!\w)",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"(?<!\w)(?:if|once|when|unless|provided|as soon as|subject to|on condition)(?!\w)",
    re.IGNORECASE,
)


CLASSIFY_CHARS = 20_000


def classify(
    *,
    subject: str,
    new_text: str,
    direction: Direction,
    declared: str | None,
    rules: ClassifyRules = DEFAULT_RULES,
) -> tuple[Kind, str]:
    """The kind of an item and the reason: front matter type, then subject tag, then patterns.

    - `declared` (a note's front matter `type`: agreement, update, note) wins outright.
    - A `[update]` or `[agreement]` tag anywhere in the subject wins next, except in a reply
      (`Re:`), whose subject was written by someone else; a forward keeps its tag.
    - Otherwise the patterns read the new text's sentences, plus the subject unless it is a
      reply or forward. Sentences that ask (end with '?' or open with could/can/what/is/do...)
      are skipped, so a plain question is a message. A match is void when its clause negates,
      conditions or defers it ("haven't signed", "if you approve", "to be approved").
    - Agreement patterns are tried before update patterns ("change request accepted, delivered
      with milestone 3" is an agreement). Update patterns count only for outgoing mail and
      notes: a client's "delivered" or "completed" describes their side, so it is a message.
    """
    if declared is not None and declared.strip():
        return _from_declared(declared), "front matter type"
    tag = _TAG.search(subject)
    if tag and not _REPLY.match(subject):
        name = tag.group(1).lower()
        return Kind(name), f"subject tag [{name}]"
    # What an item agrees or reports is said early; a 10 MB body must not cost seconds.
    return _by_patterns(_sentences(subject[:1000], new_text[:CLASSIFY_CHARS]), direction, rules)


def _from_declared(declared: str) -> Kind:
    kind = _DECLARED.get(declared.strip().lower())
    if kind is None:
        known = ", ".join(sorted(_DECLARED))
        raise ValueError(f"front matter type {declared!r} is not one of {known}")
    return kind


def _sentences(subject: str, new_text: str) -> list[str]:
    """The sentences to read: the new text's, plus the subject when the sender wrote it."""
    found = [s.strip() for s in _SENTENCE_END.split(_plain(new_text))]
    if subject.strip() and not _REPLY.match(subject) and not _FORWARD.match(subject):
        found.insert(0, _plain(_TAG.sub("", subject)).strip())
    return [s for s in found if s]


def _plain(text: str) -> str:
    """Typographic apostrophes as ASCII, so "we\u2019re" matches a pattern written "we're"."""
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _is_question(sentence: str) -> bool:
    """A sentence that asks: ends with '?' or opens with a question word or auxiliary verb."""
    body = _GREETING.sub("", sentence).lstrip("\"'([ ")
    return body.endswith("?") or _OPENER.match(body) is not None


def _by_patterns(
    sentences: list[str], direction: Direction, rules: ClassifyRules
) -> tuple[Kind, str]:
    agreement, update = rules.agreement, rules.update
    wanted_a, wanted_u = _candidates(sentences, rules)
    if not wanted_a and not wanted_u:
        return Kind.MESSAGE, "no pattern"
    statements_a = [s for s in wanted_a if not _is_question(s)]
    hit = _first_hit(statements_a, agreement)
    if hit is not None:
        return Kind.AGREEMENT, f"agreement pattern '{hit}'"
    update_hit = _first_hit([s for s in wanted_u if not _is_question(s)], update)
    if update_hit is not None:
        if direction is Direction.IN:
            return Kind.MESSAGE, f"update pattern '{update_hit}' on incoming mail"
        return Kind.UPDATE, f"update pattern '{update_hit}'"
    asked_a = [s for s in wanted_a if _is_question(s)]
    asked_u = [s for s in wanted_u if _is_question(s)]
    if _first_hit(asked_a, agreement) or _first_hit(asked_u, update):
        return Kind.MESSAGE, "plain question"
    return Kind.MESSAGE, "no pattern"


def _candidates(sentences: list[str], rules: ClassifyRules) -> tuple[list[str], list[str]]:
    """The sentences in which an agreement / an update pattern may match (all, unfiltered)."""
    either, agreement, update = rules._prefilters
    if either is None or agreement is None or update is None:
        return sentences, sentences
    wanted_a, wanted_u = [], []
    for sentence in sentences:
        lowered = sentence.lower() if sentence.isascii() else None
        if not either.hits(sentence, lowered):
            continue
        if agreement.hits(sentence, lowered):
            wanted_a.append(sentence)
        if update.hits(sentence, lowered):
            wanted_u.append(sentence)
    return wanted_a, wanted_u


def _first_hit(sentences: list[str], sources: tuple[str, ...]) -> str | None:
    """The source of the first pattern with an unhedged match in any sentence."""
    if not sentences:
        return None
    for source in sources:
        pattern = _compile(source)
        for sentence in sentences:
            if any(not _hedged(sentence, m.start(), m.end()) for m in pattern.finditer(sentence)):
                return source
    return None


def _hedged(sentence: str, start: int, end: int) -> bool:
    """True when the match's clause negates or defers it before, or sets a condition after."""
    before = _CLAUSE_BREAK.split(sentence[:start])[-1]
    after = _CLAUSE_BREAK.split(sentence[end:])[0]
    return _HEDGE.search(before) is not None or _CONDITION.search(after) is not None
