"""Text analysis: the fast word lists equal Whoosh's analysers; snippets mark exactly the matches."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.analysis import StandardAnalyzer, StemmingAnalyzer

from corrlog.analysis import MAX_TOKEN, Highlighter, tokens, words

MARKS = ("[", "]")
STEMMING = StemmingAnalyzer(maxsize=MAX_TOKEN)
NAMES = StandardAnalyzer(stoplist=None, maxsize=MAX_TOKEN)
FIXTURES = Path(__file__).parent / "fixtures"

# letters, digits, punctuation that splits or joins tokens, case pairs and odd Unicode
ALPHABET = st.sampled_from(
    [*"abcdeXYZ019 .,*_-'@\n\t", "İ", "ß", "é", "Ω", "ﬁ", "٣", "\u0301", "K", "Σ"]
)


def whoosh_words(text: str) -> list[str]:
    return [t.text for t in STEMMING(text)]


@settings(max_examples=500, deadline=None)
@given(st.text(ALPHABET, max_size=80))
def test_words_equal_whoosh_stemming_analyzer(text: str) -> None:
    """Any text: the same words, in the same order, as StemmingAnalyzer(maxsize=MAX_TOKEN)."""
    assert whoosh_words(text) == words(text)


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=80))
def test_tokens_equal_whoosh_standard_analyzer(text: str) -> None:
    """The name fields' tokens equal StandardAnalyzer(stoplist=None)."""
    assert [t.text for t in NAMES(text)] == tokens(text)


def test_words_equal_whoosh_on_real_messages() -> None:
    """Labelled client messages and every raw mail fixture (headers, MIME, odd charsets)."""
    labelled = (FIXTURES / "classify" / "labelled.jsonl").read_text().splitlines()
    texts = [" ".join(map(str, json.loads(line).values())) for line in labelled if line]
    texts += [
        path.read_bytes().decode("utf-8", "replace")
        for folder in ("mail", "cpython_email")
        for path in sorted((FIXTURES / folder).rglob("*"))
        if path.is_file()
    ]
    assert len(texts) > 280
    for text in texts:
        assert whoosh_words(text) == words(text)


def test_words_drop_stop_words_short_and_long_tokens() -> None:
    """Stop words, one-letter and over-long tokens are not indexed; the rest is stemmed."""
    text = "The invoices were PAID in full: a " + "x" * (MAX_TOKEN + 1) + " invoicing.pdf"
    assert ["invoic", "were", "paid", "full", "invoicing.pdf"] == words(text)


def test_snippet_marks_every_form_of_a_word_as_written() -> None:
    """Different forms of the searched word are marked as written, other words are not."""
    highlighter = Highlighter(words("invoice"), MARKS)
    snippet = highlighter.snippet("Re: Invoices. We invoiced on Monday; the invoice is due.")
    assert "Re: [Invoices]. We [invoiced] on Monday; the [invoice] is due." == snippet


def test_snippet_ignores_words_that_only_start_like_a_match() -> None:
    """A candidate sharing the prefix but not the stem is not marked."""
    highlighter = Highlighter(words("gas"), MARKS)
    assert "[gas] and gasket" == highlighter.snippet("gas and gasket")
    assert highlighter.snippet("gasket gasoline") is None


def test_snippet_finds_a_word_whose_lower_case_is_longer() -> None:
    """The word is still found and marked though "İ" lower-cases to two characters."""
    highlighter = Highlighter(words("İnvoice"), MARKS)
    assert "the [İnvoice] is due" == highlighter.snippet("the İnvoice is due")
    assert "[İnvoice], [İnvoices]" == highlighter.snippet("İnvoice, İnvoices")


def test_snippet_respects_dotted_tokens() -> None:
    """`enron.com` is one token: searching `com` does not mark its tail."""
    highlighter = Highlighter(words("com"), MARKS)
    assert highlighter.snippet("write to pete@enron.com") is None
    assert "[com] port" == highlighter.snippet("com port")


def test_snippet_is_a_window_around_the_first_match() -> None:
    """Long texts give a window starting a little before the first match."""
    text = "filler " * 200 + "the signed contract arrived " + "more " * 200
    snippet = Highlighter(words("contract"), MARKS).snippet(text)
    assert snippet is not None
    assert "signed [contract] arrived" in snippet
    assert snippet.startswith("filler")
    assert len(snippet) < 260


def test_snippet_stays_short_between_huge_words() -> None:
    """A match between two 5,000-character runs gives a short fragment, not the runs."""
    text = "a" * 5000 + " the contract " + "b" * 5000
    snippet = Highlighter(words("contract"), MARKS).snippet(text)
    assert "the [contract]" == snippet


def test_no_terms_no_snippet() -> None:
    """A highlighter without words finds nothing."""
    assert Highlighter([], MARKS).snippet("anything at all") is None


FORMS = st.sampled_from(
    ["invoice", "Invoices", "invoiced", "gas", "gasket", "GAS", "com", "enron.com", "x.invoice",
     "contract", "contracting", "İnvoice", "ﬁnal", "final", "ß", "1.5", "a", "the"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", ". ", "-", "\n", ".", "_", "*", "'", ", "])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(FORMS, SEPARATORS), max_size=40), st.lists(FORMS, min_size=1, max_size=3))
def test_snippet_marks_exactly_the_tokens_whose_words_are_searched(
    parts: list[tuple[str, str]], query: list[str]
) -> None:
    """Every token of the snippet is marked if and only if it analyses to a searched word
    (the highlighter analyses only the tokens that start like one: it must miss none)."""
    terms = set(words(" ".join(query)))
    snippet = Highlighter(terms, MARKS).snippet("".join(w + s for w, s in parts))
    if snippet is None:
        return
    plain = snippet.replace("[", "").replace("]", "")
    expected, last = [], 0
    for token in re.finditer(r"[\w*]+(?:\.?[\w*]+)*", plain):
        analysed = words(token.group())
        if len(analysed) == 1 and analysed[0] in terms:
            expected += [plain[last : token.start()], "[", token.group(), "]"]
            last = token.end()
    assert "".join([*expected, plain[last:]]) == snippet
