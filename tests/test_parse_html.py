"""HTML to text: blocks, lists, tables, links, entities, quotes and hostile markup."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corrlog.parse.html import MAX_PARSED_CHARS, html_to_text


def test_script_style_and_head_are_dropped() -> None:
    """Nothing from <script>, <style> or <head> (title included) reaches the text."""
    markup = (
        "<html><head><title>Invoice</title><style>p {color: red}</style></head>"
        "<body><p>Paid.</p><script>var secret = 1;</script></body></html>"
    )
    assert "Paid." == html_to_text(markup)


def test_unclosed_head_ends_at_first_body_element() -> None:
    """A <head> that is never closed does not swallow the body."""
    assert "Hello" == html_to_text("<html><head><title>T</title><p>Hello")


def test_blocks_become_lines_and_paragraphs() -> None:
    """<div> starts a line, <p> a paragraph, <br> breaks a line; empty divs add nothing."""
    markup = "<p>One</p><p>Two</p><div>Three</div><div></div><div>Four<br>Five</div>"
    assert "One\n\nTwo\n\nThree\nFour\nFive" == html_to_text(markup)


def test_gmail_blank_line_div() -> None:
    """Gmail's <div><br></div> is one blank line."""
    markup = "<div>Hi Ann,</div><div><br></div><div>Thanks.</div>"
    assert "Hi Ann,\n\nThanks." == html_to_text(markup)


def test_list_items_get_dashes_and_nested_lists_indent() -> None:
    """List items start with "- ", nested lists are indented by two spaces."""
    markup = "<ul><li>first</li><li>second<ul><li>inner</li></ul></li></ul><p>after</p>"
    assert "- first\n- second\n  - inner\n\nafter" == html_to_text(markup)


def test_table_rows_are_lines_with_cells_separated() -> None:
    """Each row is a line, cells joined by " | ", empty cells skipped."""
    markup = (
        "<table><tr><th>Item</th><th>Price</th></tr>"
        "<tr><td>Logo</td><td></td><td>$500</td></tr></table>"
    )
    assert "Item | Price\nLogo | $500" == html_to_text(markup)


def test_link_shows_url_when_text_differs() -> None:
    """A link renders as "text (url)"."""
    markup = '<p>See <a href="https://example.com/spec">the spec</a>.</p>'
    assert "See the spec (https://example.com/spec)." == html_to_text(markup)


@pytest.mark.parametrize(
    "markup",
    [
        '<a href="https://example.com/">example.com</a>',
        '<a href="https://example.com">https://example.com</a>',
        '<a href="mailto:ann@example.com">ann@example.com</a>',
    ],
)
def test_link_whose_text_is_its_url_shows_it_once(markup: str) -> None:
    """No "(url)" when the text already is the URL or the address."""
    assert markup.split(">")[1].split("<")[0] == html_to_text(markup)


def test_anchor_and_script_links_show_no_url() -> None:
    """Fragment and javascript: links keep their text only; image-only links vanish."""
    markup = (
        '<a href="#top">Top</a> <a href="javascript:x()">Run</a> '
        '<a href="https://x.example"><img src="a.png"></a>'
    )
    assert "Top Run" == html_to_text(markup)


def test_entities_are_decoded() -> None:
    """Named and numeric character references are decoded; &nbsp; is a space."""
    assert "Tom & Jerry — 5 € <ok>" == html_to_text(
        "Tom&nbsp;&amp; Jerry &mdash; 5 &#8364; &lt;ok&gt;"
    )


def test_whitespace_is_collapsed() -> None:
    """Runs of white space in text are one space; no spaces at line ends."""
    markup = "<p>  lots \n\n of\t\tspace   </p>\n\n\n<p>next   </p>"
    assert "lots of space\n\nnext" == html_to_text(markup)


def test_inline_elements_do_not_add_space() -> None:
    """Adjacent inline elements join like a browser shows them."""
    assert "Milestone 2 approved" == html_to_text("<b>Mile</b><i>stone</i> 2 <span>approved</span>")


def test_pre_keeps_its_layout() -> None:
    """Text in <pre> keeps indentation and line breaks."""
    assert "a\n  b\n    c" == html_to_text("<pre>a\n  b\n    c</pre>")


def test_blockquote_lines_get_quote_prefix() -> None:
    """Lines inside <blockquote> start with "> ", so quote stripping works on HTML mail."""
    markup = "<div>New text</div><blockquote><div>old one</div><div>old two</div></blockquote>"
    assert "New text\n\n> old one\n> old two" == html_to_text(markup)


def test_comments_and_outlook_conditionals_are_skipped() -> None:
    """Comments (Outlook's <!--[if mso]> blocks too) and <![if ...]> markers leave no text."""
    markup = (
        "<!--[if gte mso 9]><xml><o:shapedefaults/></xml><![endif]-->"
        "<p><![if !supportLists]>1.<![endif]> Item</p><!-- note -->"
    )
    assert "1. Item" == html_to_text(markup)


@pytest.mark.parametrize(
    "markup",
    ["<![bogus[ x ]]>text", "<!DOCTYPE", "<a href='x", "</", "<", "&#", "<p", "<!--"],
)
def test_malformed_markup_never_raises(markup: str) -> None:
    """Broken declarations and unclosed constructs give some text, never an exception."""
    assert str is type(html_to_text(markup))


def test_unclosed_tags_are_linear() -> None:
    """Thousands of unclosed tags (quadratic in html.parser) convert in well under a second."""
    start = time.perf_counter()
    text = html_to_text("<a href='x " * 30_000)
    assert time.perf_counter() - start < 2.0
    assert text.startswith("<a href='x")


def test_huge_html_keeps_every_word() -> None:
    """Over MAX_PARSED_CHARS the markup is stripped of tags instead, no word lost."""
    markup = "<style>p {}</style>" + "<p>word</p>" * (MAX_PARSED_CHARS // 10) + "<p>lastword</p>"
    text = html_to_text(markup)
    assert text.endswith("lastword")
    assert "p {}" not in text


def test_invisible_preheader_characters_are_removed() -> None:
    """Zero-width padding that newsletters put in their preview text is dropped."""
    assert "Sale" == html_to_text("<div>Sale\u200c\u200b\u034f</div>")


def _finishes(markup: str) -> str:
    """html_to_text in a thread, failing (not hanging) when it runs past 60 s."""
    import threading

    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(html_to_text(markup)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "html_to_text did not finish in 60 s"
    return out[0]


@pytest.mark.parametrize("blank", [" ", "\t"])
def test_preformatted_run_of_blanks_is_linear(blank: str) -> None:
    """A <pre> of 400,000 blanks (56 s for 200,000 before) converts, the word after it kept."""
    text = _finishes("<pre>" + blank * 400_000 + "lastword\n</pre>")
    assert "lastword" == text.strip()


def test_crude_stripping_of_a_run_of_open_brackets_is_linear() -> None:
    """Past MAX_PARSED_CHARS, a run of '<' without '>' is stripped in linear time."""
    text = _finishes("<p>firstword</p>" + "<" * (MAX_PARSED_CHARS + 200_000) + " lastword")
    assert "firstword" in text
    assert "lastword" in text


@given(st.text(st.sampled_from([" ", "\t", "\n", "a", "b", "\r"]), max_size=60))
def test_line_ends_are_stripped_as_the_regex_did(text: str) -> None:
    """Blanks before each line break go, the last line's trailing blanks stay."""
    import re

    from corrlog.parse.html import _strip_line_ends

    assert re.sub(r"[ \t]+\n", "\n", text) == _strip_line_ends(text)
