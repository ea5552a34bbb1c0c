"""Text of attachments (PDF, DOCX, plain text, HTML) and tolerant charset decoding."""

import codecs
import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from xml.etree import ElementTree

from corrlog.parse.html import html_to_text

DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_CHARS = 200_000
DEFAULT_MAX_PAGES = 50

# A DOCX's document.xml is rarely above a few MB; refuse zip bombs before inflating.
_MAX_DOCX_XML_BYTES = 50_000_000

_DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})
_TEXT_SUFFIXES = (".txt", ".text", ".md", ".csv", ".tsv", ".log", ".ics", ".vcf")
_HTML_SUFFIXES = (".html", ".htm")

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

# Labels seen in the wild that Python does not know, or knows under a narrower meaning.
# Like browsers (WHATWG), read latin-1 and ascii labels as windows-1252: its extra
# characters (curly quotes, euro sign) are what 8-bit mail in those "charsets" holds.
# None means "no usable declaration": go straight to the fallback chain.
_CHARSET_ALIASES: dict[str, str | None] = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "us-ascii": None,
    "ascii": None,
    "ansi-x3.4-1968": None,
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "gb2312": "gbk",
    "gb-2312-80": "gbk",
    "x-gbk": "gbk",
    "ks-c-5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "tis-620": "cp874",
    # Codecs Python has but that are not charsets: they would interpret the bytes.
    "unicode-escape": None,
    "raw-unicode-escape": None,
    "undefined": None,
    "idna": None,
    "punycode": None,
}

_FALLBACKS = ("utf-8", "cp1252")

_pypdf_lock = threading.Lock()
_pypdf_quiet_depth = 0
_pypdf_saved_level = logging.NOTSET


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """Decode text: declared charset, then utf-8, cp1252, latin-1; return (text, note or None)."""
    label = _normalise_label(charset)
    codec = _CHARSET_ALIASES.get(label, label) if label else None
    unknown = codec is not None and not _is_text_codec(codec)
    if unknown:
        codec = None
    for name in dict.fromkeys((codec, *_FALLBACKS)):
        if name is None:
            continue
        try:
            text = data.decode(name)
        except (LookupError, ValueError):
            continue
        return _clean(text), _charset_note(label, codec, name, unknown=unknown)
    return _clean(data.decode("latin-1")), _charset_note(label, codec, "latin-1", unknown=unknown)


def extract_text(
    data: bytes,
    content_type: str,
    name: str = "",
    *,
    charset: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> tuple[str, tuple[str, ...]]:
    """Return (text, notes) for one attachment; never raises, unknown kinds give no text."""
    kind = _kind(content_type.lower(), name.lower(), data)
    if kind is None:
        return "", ()
    label = repr(name) if name else content_type
    if len(data) > max_bytes:
        return "", (f"attachment {label} not read: {len(data):,} bytes is over {max_bytes:,}",)
    notes: list[str] = []
    try:
        text = _EXTRACTORS[kind](data, charset, max_chars, max_pages, notes)
    except Exception as exc:  # third-party parsers raise anything on broken files
        text = ""
        notes.append(f"no text ({type(exc).__name__}: {exc})"[:300])
    if len(text) > max_chars:
        text = text[:max_chars]
        notes.append(f"text cut at {max_chars:,} characters")
    return text, tuple(f"attachment {label}: {note}" for note in notes)


def _normalise_label(charset: str | None) -> str:
    if not charset:
        return ""
    return charset.strip().strip("\"'").lower().replace("_", "-")


def _is_text_codec(name: str) -> bool:
    try:
        b"a".decode(name, "ignore")  # empty input would skip the codec lookup
    except (LookupError, ValueError):
        return False
    return True


def _clean(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", "") if "\x00" in text else text


def _charset_note(label: str, codec: str | None, used: str, *, unknown: bool) -> str | None:
    if unknown:
        return f"unknown charset {label!r}, decoded as {used}"
    if codec is None or used == codec or _codec_name(used) == _codec_name(label):
        return None
    return f"text declared as {label} is not valid {label}, decoded as {used}"


def _codec_name(label: str) -> str:
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return label


def _kind(content_type: str, name: str, data: bytes) -> str | None:
    if content_type in _PDF_TYPES or name.endswith(".pdf") or data.startswith(b"%PDF-"):
        return "pdf"
    if content_type == _DOCX_TYPE or name.endswith(".docx"):
        return "docx"
    if content_type in ("text/html", "application/xhtml+xml") or name.endswith(_HTML_SUFFIXES):
        return "html"
    if content_type.startswith("text/") or name.endswith(_TEXT_SUFFIXES):
        return "text"
    return None


def _text(data: bytes, charset: str | None, max_chars: int, _pages: int, notes: list[str]) -> str:
    text, note = decode_bytes(data, charset)
    if note:
        notes.append(note)
    return text.replace("\r\n", "\n")


def _html(data: bytes, charset: str | None, max_chars: int, pages: int, notes: list[str]) -> str:
    return html_to_text(_text(data, charset, max_chars, pages, notes))


def _pdf(
    data: bytes, _charset: str | None, max_chars: int, max_pages: int, notes: list[str]
) -> str:
    from pypdf import PdfReader  # imported on first use: pypdf takes a while to import

    with _quiet_pypdf():
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            notes.append("PDF is encrypted")
            return ""
        pages = reader.pages
        chunks: list[str] = []
        total = 0
        for number, page in enumerate(pages):
            if number >= max_pages:
                notes.append(f"only the first {max_pages} of {len(pages)} pages read")
                break
            chunk = page.extract_text() or ""
            chunks.append(chunk)
            total += len(chunk)
            if total > max_chars:
                break
    return _clean("\n\n".join(c.strip() for c in chunks if c.strip()))


def _docx(data: bytes, _charset: str | None, max_chars: int, _pages: int, notes: list[str]) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
        if info.file_size > _MAX_DOCX_XML_BYTES:
            notes.append(f"document.xml is {info.file_size:,} bytes unpacked, not read")
            return ""
        xml = archive.read(info)
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:  # never in Word files; entity bombs are
        notes.append("document.xml declares a DTD, not read")
        return ""
    return _clean("\n".join(_docx_paragraphs(xml, max_chars)))


def _docx_paragraphs(xml: bytes, max_chars: int) -> Iterator[str]:
    """Yield each w:p paragraph's text: w:t runs, w:tab as tab, w:br/w:cr as newline."""
    stack: list[list[str]] = []
    total = 0
    # No defusedxml (no new dependency): the caller refuses DTDs, so no entities to expand.
    events = ElementTree.iterparse(io.BytesIO(xml), events=("start", "end"))  # noqa: S314
    for event, element in events:
        tag = element.tag
        if tag == _W + "p":
            if event == "start":
                stack.append([])
                continue
            line = "".join(stack.pop()) if stack else ""
            element.clear()
            total += len(line) + 1
            yield line
            if total > max_chars:
                return
        elif event == "end" and stack:
            if tag == _W + "t":
                stack[-1].append(element.text or "")
            elif tag == _W + "tab":
                stack[-1].append("\t")
            elif tag in (_W + "br", _W + "cr"):
                stack[-1].append("\n")


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Lower pypdf's logger to ERROR while any thread extracts; restore it after the last."""
    global _pypdf_quiet_depth, _pypdf_saved_level
    logger = logging.getLogger("pypdf")
    with _pypdf_lock:
        if _pypdf_quiet_depth == 0:
            _pypdf_saved_level = logger.level
            logger.setLevel(logging.ERROR)
        _pypdf_quiet_depth += 1
    try:
        yield
    finally:
        with _pypdf_lock:
            _pypdf_quiet_depth -= 1
            if _pypdf_quiet_depth == 0:
                logger.setLevel(_pypdf_saved_level)


_EXTRACTORS = {"pdf": _pdf, "docx": _docx, "html": _html, "text": _text}
