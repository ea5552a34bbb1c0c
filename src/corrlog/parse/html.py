"""HTML to readable plain text with a small stdlib html.parser subclass (no dependency)."""

import re
from html import unescape
from html.parser import HTMLParser

# Content that is never text. <head> also holds <title>, which mail clients do not show.
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
# What may stand in <head>; any other element closes an unclosed <head>, as in browsers.
_HEAD_CONTENT = frozenset({"title", "meta", "link", "style", "script", "base", "noscript"})
# Blocks that stand apart by a blank line, and blocks that only start a new line.
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
    | {"hr", "address", "figure", "fieldset", "form"}
)
_LINE = frozenset(
    {"div", "li", "tr", "dt", "dd", "section", "article", "header", "footer", "nav", "aside"}
    | {"main", "center", "caption", "figcaption", "details", "summary", "legend", "body", "html"}
)
_CELLS = frozenset({"td", "th"})
_LINK_SCHEMES = ("http:", "https:", "mailto:", "ftp:", "tel:")

# Zero-width and soft-hyphen characters: newsletters pad their preview text with them.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff"))
# A '<' with another '<' (or the end) before any '>': an unclosed tag. html.parser
# rescans the rest of the document for each of these, quadratic (30 KB of "<a " took 10 s).
_UNCLOSED_TAG = re.compile(r"<(?=[^<>]*(?:<|\Z))")
_BLANK_LINES = re.compile(r"\n{3,}")
# A tag for crude stripping: no '<' inside, so a run of '<' without '>' costs linear time
# (`<[^>]*>` rescanned the rest of the text from every '<': 80,000 of them took 4 s).
_TAG = re.compile(r"<[^<>]*>")
_CRUDE_SKIP = re.compile(r"<(script|style|head)\b", re.IGNORECASE)
_CRUDE_CLOSE = {
    tag: re.compile(rf"</{tag}[^>]*>", re.IGNORECASE) for tag in ("script", "style", "head")
}

# Beyond this size the parser (about 25 ms per 100 KB, more for dense tags) gives way to
# tag stripping: every word is kept, only the layout is lost.
MAX_PARSED_CHARS = 2_000_000


def html_to_text(markup: str) -> str:
    """Render HTML as text: blocks as lines, "- " list items, "a | b" rows, "text (url)" links."""
    prepared = _UNCLOSED_TAG.sub("&lt;", _strip_comments(markup))
    if len(prepared) > MAX_PARSED_CHARS:
        return _tidy(_crude_text(prepared))
    renderer = _Renderer()
    try:
        renderer.feed(prepared)
        renderer.close()
        text = renderer.text()
    except Exception:  # html.parser asserts on some malformed declarations; degrade, never fail
        text = _crude_text(prepared)
    return _tidy(text)


def _strip_comments(markup: str) -> str:
    """Remove <!-- ... --> in one linear pass; an unclosed comment runs to the end, as in HTML5."""
    if "<!--" not in markup:
        return markup
    parts: list[str] = []
    position = 0
    while (start := markup.find("<!--", position)) >= 0:
        parts.append(markup[position:start])
        end = markup.find("-->", start + 4)
        if end < 0:
            return "".join(parts)
        position = end + 3
    parts.append(markup[position:])
    return "".join(parts)


def _crude_text(markup: str) -> str:
    """Strip tags, and script/style/head with their content, in linear time."""
    parts: list[str] = []
    position = 0
    while opening := _CRUDE_SKIP.search(markup, position):
        parts.append(markup[position : opening.start()])
        closing = _CRUDE_CLOSE[opening[1].lower()].search(markup, opening.end())
        if closing is None:  # unclosed: it runs to the end, as in browsers
            position = len(markup)
            break
        position = closing.end()
    parts.append(markup[position:])
    text = unescape(_TAG.sub(" ", " ".join(parts)))
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _strip_line_ends(text: str) -> str:
    """Spaces and tabs before each line break removed.

    Line by line, not with `[ \t]+\n`: that regex retries from every blank of a long run
    with no line break after it (a `<pre>` of 200,000 blanks took 56 s).
    """
    lines = text.split("\n")
    return "\n".join([line.rstrip(" \t") for line in lines[:-1]] + lines[-1:])


def _tidy(text: str) -> str:
    text = _strip_line_ends(text.translate(_INVISIBLE))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _same_target(text: str, href: str) -> bool:
    """Tell whether a link's text already shows its URL (scheme and trailing slash aside)."""

    def bare(value: str) -> str:
        value = value.strip().lower().rstrip("/")
        for prefix in ("mailto:", "https://", "http://", "www."):
            value = value.removeprefix(prefix)
        return value

    return bare(text) == bare(href)


class _Renderer(HTMLParser):
    """Collect text with pending line breaks, so empty elements leave no blank lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skip: list[str] = []  # open elements whose content is dropped
        self._newlines = 0  # line breaks owed before the next text (at most 2)
        self._space = False  # a space is owed before the next text on this line
        self._line_empty = True
        self._quote = 0  # <blockquote> depth: lines get "> " prefixes
        self._lists = 0
        self._bullet = False  # a "- " is owed at the start of the next line
        self._pre = 0
        self._rows: list[int] = []  # cells seen in each open table row
        self._cell_sep = False  # a " | " is owed before the next text in this row
        self._links: list[tuple[str, int]] = []  # (href, index into _out where its text starts)

    def text(self) -> str:
        """Return the text rendered so far."""
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element: note what it owes the layout."""
        if tag == "body" or (self._skip == ["head"] and tag not in _HEAD_CONTENT):
            self._skip.clear()
        if tag in _SKIP:
            self._skip.append(tag)
        if self._skip:
            return
        if tag == "br":
            self._newlines = min(self._newlines + 1, 2)
            self._space = False
        elif tag in _CELLS:
            self._start_cell()
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self._out)))
        else:
            self._start_block(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close an element: settle its link, row, quote or list."""
        if tag in _SKIP and tag in self._skip:
            while self._skip.pop() != tag:
                pass
            return
        if self._skip:
            return
        if tag == "a" and self._links:
            self._end_link(*self._links.pop())
        elif tag in _CELLS:
            self._space = True
        else:
            self._end_block(tag)

    def handle_data(self, data: str) -> None:
        """Write text: whitespace collapsed outside <pre>, kept inside."""
        if self._skip or not data:
            return
        if self._pre:
            self._write_pre(data)
            return
        if data[0].isspace():
            self._space = True
        words = data.split()
        if words:
            self._write(" ".join(words))
            self._space = data[-1].isspace()

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        """Skip "<![if ...]>"-style markers; the stdlib asserts on unknown keywords."""
        end = self.rawdata.find(">", i + 3)
        return -1 if end < 0 else end + 1

    def _start_block(self, tag: str) -> None:
        if tag in ("ul", "ol") and self._lists:  # a nested list continues its item's lines
            self._break(1)
        elif tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        if tag == "blockquote":
            self._quote += 1
        elif tag in ("ul", "ol"):
            self._lists += 1
        elif tag == "li":
            self._bullet = True
        elif tag == "pre":
            self._pre += 1
        elif tag == "tr":
            self._rows.append(0)

    def _end_block(self, tag: str) -> None:
        if tag == "blockquote":
            self._quote = max(self._quote - 1, 0)
        elif tag in ("ul", "ol"):
            self._lists = max(self._lists - 1, 0)
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
        elif tag == "tr" and self._rows:
            self._rows.pop()
        if tag in ("ul", "ol") and self._lists:
            self._break(1)
        elif tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def _start_cell(self) -> None:
        if not self._rows:
            self._space = True
            return
        if self._rows[-1]:
            self._cell_sep = True
        self._rows[-1] += 1

    def _end_link(self, href: str, start: int) -> None:
        href = href.strip()
        if not href.lower().startswith(_LINK_SCHEMES):
            return
        shown = " ".join("".join(self._out[start:]).split())
        if shown and not _same_target(shown, href):
            self._space = True
            self._write(f"({href})")

    def _break(self, count: int) -> None:
        self._newlines = max(self._newlines, count)
        self._space = False

    def _write(self, text: str) -> None:
        out = self._out
        if self._newlines and out:
            out.append("\n" * self._newlines)
            self._line_empty = True
        self._newlines = 0
        if self._line_empty:
            out.append(self._line_prefix())
            self._line_empty = False
        elif self._cell_sep:
            out.append(" | ")
        elif self._space:
            out.append(" ")
        self._cell_sep = self._space = False
        out.append(text)

    def _line_prefix(self) -> str:
        prefix = "> " * self._quote
        if self._bullet:
            prefix += "  " * max(self._lists - 1, 0) + "- "
            self._bullet = False
        return prefix

    def _write_pre(self, data: str) -> None:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for number, line in enumerate(lines):
            if number:
                self._newlines = min(self._newlines + 1, 2)
            if line:
                self._write(line)
