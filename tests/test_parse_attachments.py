"""Attachment text: PDF, DOCX, plain text and HTML, with caps, and tolerant charset decoding."""

from __future__ import annotations

import io
import logging
import zipfile

import pytest

from corrlog.parse.attachments import decode_bytes, extract_text

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def make_pdf(*pages: str) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page (xref offsets computed)."""
    count = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    ]
    font = 3 + 2 * count
    for index, text in enumerate(pages):
        stream = f"BT /F1 18 Tf 72 700 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * index} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def make_docx(*paragraphs: str, document: str | None = None) -> bytes:
    """A minimal DOCX zip whose word/document.xml holds one w:p per paragraph."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    xml = (
        document
        or f'<?xml version="1.0"?><w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", xml)
    return buffer.getvalue()


# charset decoding


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("café".encode(), "utf-8", ("café", None)),
        ("café".encode("latin-1"), "iso-8859-1", ("café", None)),
        (b"\x93quoted\x94", "iso-8859-1", ("\u201cquoted\u201d", None)),  # read as windows-1252
        ("café".encode(), None, ("café", None)),
        ("café".encode(), "us-ascii", ("café", None)),
        (b"caf\xe9", None, ("café", None)),
        ("café".encode(), "utf8mb4", ("café", None)),
        (b"Hi +AKM-1", "unicode-1-1-utf-7", ("Hi £1", None)),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: tuple[str, str | None]) -> None:
    """Declared charset first, aliases for common mislabels, no note when it worked."""
    assert expected == decode_bytes(data, charset)


def test_wrong_declaration_falls_back_with_note() -> None:
    """utf-8 declared but cp1252 bytes: the text survives and the mismatch is noted."""
    expected = ("café “done”", "text declared as utf-8 is not valid utf-8, decoded as cp1252")
    assert expected == decode_bytes(b"caf\xe9 \x93done\x94", "utf-8")


@pytest.mark.parametrize("charset", ["x-bogus", "base64", "rot13", "a\x00b", "=?", ""])
def test_unknown_charset_never_raises(charset: str) -> None:
    """Unknown or non-text codec names fall back to utf-8."""
    assert "café" == decode_bytes("café".encode(), charset)[0]


def test_undecodable_bytes_end_as_latin1() -> None:
    """Bytes no charset in the chain accepts still decode (latin-1 takes every byte)."""
    assert "\x81\x8d" == decode_bytes(b"\x81\x8d", "utf-8")[0]


def test_nul_and_bom_are_removed() -> None:
    """A UTF-8 BOM and NUL characters do not reach the text."""
    assert ("ab", None) == decode_bytes(b"\xef\xbb\xbfa\x00b", "utf-8")


# extraction


def test_pdf_text() -> None:
    """The text of a PDF's pages is extracted."""
    assert ("Statement zanzibarquill", ()) == extract_text(
        make_pdf("Statement zanzibarquill"), "application/pdf", "sow.pdf"
    )


def test_pdf_detected_by_name_or_magic() -> None:
    """A PDF sent as octet-stream is found by its name or its %PDF- header."""
    pdf = make_pdf("hello")
    assert "hello" == extract_text(pdf, "application/octet-stream", "a.PDF")[0]
    assert "hello" == extract_text(pdf, "application/octet-stream", "")[0]


def test_pdf_pages_are_capped() -> None:
    """Only the first max_pages pages are read, and that is noted."""
    text, notes = extract_text(
        make_pdf("one", "two", "three"), "application/pdf", "a.pdf", max_pages=2
    )
    assert ("one\n\ntwo", ("attachment 'a.pdf': only the first 2 of 3 pages read",)) == (
        text,
        notes,
    )


def test_broken_pdf_gives_no_text_and_a_note() -> None:
    """A corrupt PDF yields empty text and one note, not an exception."""
    text, notes = extract_text(b"%PDF-1.4 not really", "application/pdf", "bad.pdf")
    assert ("", 1) == (text, len(notes))
    assert notes[0].startswith("attachment 'bad.pdf': no text (")


def test_pypdf_warnings_are_silenced_and_level_restored(caplog: pytest.LogCaptureFixture) -> None:
    """pypdf's warnings about a damaged file are not logged; its logger level comes back."""
    pdf = make_pdf("hello").replace(b"startxref\n", b"startxref\n9")
    logging.getLogger("pypdf").setLevel(logging.INFO)
    with caplog.at_level(logging.DEBUG):
        assert "hello" == extract_text(pdf, "application/pdf", "a.pdf")[0]
    assert [] == [
        r for r in caplog.records if r.name.startswith("pypdf") and r.levelno < logging.ERROR
    ]
    assert logging.INFO == logging.getLogger("pypdf").level
    logging.getLogger("pypdf").setLevel(logging.NOTSET)


def test_docx_paragraphs_become_lines() -> None:
    """Each DOCX paragraph is one line."""
    data = make_docx("Change request", "Add a marmalutefig page.")
    assert ("Change request\nAdd a marmalutefig page.", ()) == extract_text(data, DOCX, "cr.docx")


def test_docx_tabs_and_breaks() -> None:
    """w:tab is a tab and w:br a line break inside a paragraph."""
    document = (
        f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t>'
        "<w:br/><w:t>c</w:t></w:r></w:p></w:body></w:document>"
    )
    assert "a\tb\nc" == extract_text(make_docx(document=document), DOCX, "x.docx")[0]


def test_docx_with_dtd_is_refused() -> None:
    """A document.xml declaring entities (an entity bomb) is not parsed."""
    document = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    expected = ("", ("attachment 'x.docx': document.xml declares a DTD, not read",))
    assert expected == extract_text(make_docx(document=document), DOCX, "x.docx")


def test_broken_docx_gives_no_text_and_a_note() -> None:
    """A DOCX that is not a zip yields empty text and a note."""
    text, notes = extract_text(b"PK\x03\x04 junk", DOCX, "x.docx")
    assert ("", 1) == (text, len(notes))


def test_text_attachment_is_decoded() -> None:
    """text/* attachments are decoded with their charset, CRLF made LF."""
    assert ("Preis: 5 €\nok", ()) == extract_text(
        "Preis: 5 €\r\nok".encode("cp1252"), "text/plain", "p.txt", charset="windows-1252"
    )


def test_html_attachment_is_converted() -> None:
    """An HTML attachment is converted to text."""
    assert ("Hello world", ()) == extract_text(
        b"<p>Hello <b>world</b></p>", "text/html", "page.html"
    )


def test_images_have_no_text() -> None:
    """Images and unknown binary types are listed by name only: no text, no note."""
    assert ("", ()) == extract_text(b"\x89PNG\r\n\x1a\n", "image/png", "logo.png")


def test_oversized_attachment_is_skipped() -> None:
    """An attachment over max_bytes is not read, and that is noted."""
    expected = ("", ("attachment 'big.txt' not read: 11 bytes is over 10",))
    assert expected == extract_text(b"hello world", "text/plain", "big.txt", max_bytes=10)


def test_text_is_cut_at_max_chars() -> None:
    """Extracted text stops at max_chars, with a note."""
    expected = ("hello", ("attachment 'a.txt': text cut at 5 characters",))
    assert expected == extract_text(b"hello world", "text/plain", "a.txt", max_chars=5)
