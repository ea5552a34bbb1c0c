"""MIME parsing: headers, body text, quotes, attachments, charsets and hostile messages."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from corrlog.errors import RecordError
from corrlog.parse.mail import (
    MAX_DEPTH,
    Address,
    Attachment,
    MailHeaders,
    ParsedMail,
    parse_headers,
    parse_mail,
)

FIXTURES = Path(__file__).parent / "fixtures"
CPYTHON_MESSAGES = sorted((FIXTURES / "cpython_email").glob("msg_*.txt"))
HEAD = (
    b"From: Ann <ann@freelance.example>\r\nTo: bob@client.example\r\nSubject: t\r\n"
    b"Date: Mon, 03 Jun 2024 10:00:00 +0000\r\n"
)


def fixture(name: str) -> ParsedMail:
    """Parse one .eml file from tests/fixtures/mail."""
    return parse_mail((FIXTURES / "mail" / name).read_bytes())


def message(headers: bytes, body: bytes) -> ParsedMail:
    """Parse HEAD plus extra headers and a body."""
    return parse_mail(HEAD + headers + b"\r\n" + body)


# fixtures


def test_html_only_mail_is_converted() -> None:
    """An HTML-only message becomes readable text with list, table and link."""
    expected = (
        "Hello Ann,\n\nInvoice 2024-017 was approved & scheduled for payment.\n\n"
        "- Design phase\n- Build phase\n\nItem | Amount\nMilestone 2 | €1,500\n\n"
        "Details are in the client portal (https://portal.northwind-studio.example/inv/2024-017)."
    )
    assert expected == fixture("html_only.eml").text


def test_alternative_prefers_plain_text() -> None:
    """multipart/alternative: the text/plain part is the body, the HTML one is not added."""
    mail = fixture("alternative.eml")
    assert ("plaintextonlyword" in mail.text, "htmlonlyword" in mail.text) == (True, False)
    assert () == mail.attachments


def test_alternative_with_empty_plain_uses_html() -> None:
    """An empty text/plain alternative gives way to the HTML one."""
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>from html</p>\r\n--b--\r\n"
    )
    assert "from html" == message(b"Content-Type: multipart/alternative; boundary=b\r\n", body).text


def test_latin1_body_and_headers() -> None:
    """An iso-8859-1 quoted-printable body and its encoded headers are decoded."""
    mail = fixture("latin1.eml")
    expected = "Voici le devis révisé pour la première étape : 1\xa0200 €."
    assert expected == mail.text.splitlines()[2]
    headers = mail.headers
    assert ("Devis révisé", "François Dupré") == (headers.subject, headers.from_[0].name)


def test_wrong_charset_declaration_keeps_the_text() -> None:
    """utf-8 declared over cp1252 bytes: the text is intact and the problem noted."""
    mail = fixture("wrong_charset.eml")
    assert "The café menu page is “done” – please review by Monday." == mail.text
    assert ("text declared as utf-8 is not valid utf-8, decoded as cp1252",) == mail.defects


def test_pdf_attachment_text() -> None:
    """A PDF attachment's text is extracted and listed with its name, type and size."""
    mail = fixture("pdf_attachment.eml")
    assert [("SOW-signed.pdf", "application/pdf")] == [
        (a.name, a.content_type) for a in mail.attachments
    ]
    assert "Statement of work zanzibarquill milestone" == mail.attachments[0].text
    assert 616 == mail.attachments[0].size
    assert "zanzibarquill" not in mail.text


def test_docx_attachment_text() -> None:
    """A DOCX attachment's paragraphs are extracted as lines."""
    attachment = fixture("docx_attachment.eml").attachments[0]
    assert (
        "CR-3.docx",
        "Change request\nAdd a marmalutefig page to the site.\nPrice: 400 EUR",
    ) == (
        attachment.name,
        attachment.text,
    )


def test_word_only_in_quote_is_not_new_text() -> None:
    """A word that only appears in the quoted reply is in text but not in new_text."""
    mail = fixture("reply_quoted.eml")
    assert ("xylocarpish" in mail.text, "xylocarpish" in mail.new_text) == (True, False)
    assert "Thanks Ann, approved. Payment goes out Friday.\n\nBrian" == mail.new_text


def test_reply_threading_headers() -> None:
    """Message-ID, In-Reply-To and folded References lose their angle brackets."""
    headers = fixture("reply_quoted.eml").headers
    expected = ("CAB-reply-2@mail.acme-widgets.example", "milestone2@freelance.example")
    assert expected == (headers.message_id, headers.in_reply_to)
    assert ("scope-1@freelance.example", "milestone2@freelance.example") == headers.references


def test_participants_are_deduplicated_by_address() -> None:
    """participants() lists From, To, Cc, Reply-To once per address, in that order."""
    expected = (
        Address("Brian Client", "brian@acme-widgets.example"),
        Address("Ann Freelance", "ann@freelance.example"),
        Address("Widgets, Accounts", "accounts@acme-widgets.example"),
    )
    assert expected == fixture("reply_quoted.eml").headers.participants()


def test_participants_prefer_a_named_entry() -> None:
    """A later entry with a display name replaces a bare address."""
    headers = parse_headers(b"From: ann@x.example\r\nCc: Ann X <ANN@x.example>\r\n\r\n")
    assert (Address("Ann X", "ann@x.example"),) == headers.participants()


def test_outlook_reply_new_text() -> None:
    """An Outlook HTML reply: the From/Sent/To block and the old message are not new text."""
    mail = fixture("outlook_reply.eml")
    assert "Hi Ann,\n\nWe will cover the hosting costs from July.\n\nFrank" == mail.new_text
    assert "outlookpelican" in mail.text


def test_rfc2047_subject_names_and_rfc2231_filename() -> None:
    """Encoded-words in Subject and From (folded, B and Q) and an RFC 2231 filename decode."""
    mail = fixture("rfc2047_subject.eml")
    assert "Angebot für die Webseite – Phase 2 ✅" == mail.headers.subject
    assert (Address("Jörg Müller", "joerg@mueller-bau.example"),) == mail.headers.from_
    expected = Attachment("Angebot für Phase 2.txt", "text/plain", 18, "Angebot: 2.000 EUR")
    assert (expected,) == mail.attachments


def test_nested_message_text_is_included() -> None:
    """An attached message/rfc822 adds its headers and text; its attachments are listed."""
    mail = fixture("nested_rfc822.eml")
    assert "The budget of 6,000 USD is approved; quintessaurus is the project code." in mail.text
    assert "From: Gina Finance <gina@hooli.example>" in mail.text
    assert "FYI, budget confirmed below." == mail.new_text
    assert [("budget.csv", "item,amount\nwebsite,6000")] == [
        (a.name, a.text) for a in mail.attachments
    ]


def test_inline_image_is_listed_by_name_only() -> None:
    """An inline image is an attachment with its name and size and no text."""
    mail = fixture("inline_image.eml")
    assert (Attachment("logo.png", "image/png", 66, ""),) == mail.attachments
    assert "Here is the logo draft:" == mail.text


def test_fixture_dates_are_timezone_aware() -> None:
    """Dates keep their UTC offset."""
    expected = datetime(2024, 6, 13, 16, 20, tzinfo=timezone(timedelta(hours=-4)))
    assert expected == fixture("reply_quoted.eml").headers.date


# headers


def test_parse_headers_agrees_with_parse_mail() -> None:
    """The cheap header pass gives the same MailHeaders as the full parse."""
    for path in sorted((FIXTURES / "mail").glob("*.eml")):
        raw = path.read_bytes()
        assert parse_mail(raw).headers == parse_headers(raw), path.name


def test_headers_of_a_bare_message() -> None:
    """Missing headers are None or empty, and a missing Date is noted."""
    mail = parse_mail(b"\r\nbody only")
    assert MailHeaders(None, "", (), (), (), (), None, None, ()) == mail.headers
    assert ("no Date header",) == mail.defects


def test_naive_date_gets_utc() -> None:
    """A date with "-0000" (no known zone) is taken as UTC."""
    headers = parse_headers(b"Date: Mon, 03 Jun 2024 10:00:00 -0000\r\n\r\n")
    assert datetime(2024, 6, 3, 10, 0, tzinfo=UTC) == headers.date


@pytest.mark.parametrize(
    "value", [b"yesterday", b"Mon, 03 Jun 2024 10:00:00 +9999", b"Mon, 3 Foo 0"]
)
def test_invalid_date_is_none_with_defect(value: bytes) -> None:
    """An unparseable Date gives None and a defect note."""
    mail = parse_mail(b"Date: " + value + b"\r\n\r\nbody")
    assert (None, (f"unreadable Date header {value.decode()!r}",)) == (
        mail.headers.date,
        mail.defects,
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (b"=?utf-8?B?w6k=?==?utf-8?B?w6k?=", "éé"),  # no space between words
        (b"=?utf-8?B?w6k?=", "é"),  # missing padding
        (b"=?utf-8?B?w6k=?= =?utf-8?Q?_x?=", "é x"),
        (b"=?utf-8?B?4oI=?= =?utf-8?B?rA==?=", "€"),  # a character split across two words
        (b"=?x-bogus?Q?caf=C3=A9?=", "café"),
        (b"=?utf-8?Q?broken =?", "=?utf-8?Q?broken =?"),
        (b"Re: caf\xc3\xa9", "Re: café"),  # raw 8-bit UTF-8
        (b"Re: caf\xe9", "Re: café"),  # raw 8-bit cp1252
        (b"a\r\n  folded\r\n\tsubject", "a folded subject"),
    ],
)
def test_subject_decoding(subject: bytes, expected: str) -> None:
    """Encoded-words, malformed ones included, and raw 8-bit subjects decode without raising."""
    assert expected == parse_headers(b"Subject: " + subject + b"\r\n\r\n").subject


def test_addresses_are_lowercased_and_odd_lists_survive() -> None:
    """Addresses are lowercased; groups, comments and empty entries do not lose addresses."""
    raw = (
        b"To: Team: A <A@X.example>, b@x.example;, (comment) c@x.example,, \r\n"
        b"Cc: undisclosed-recipients:;\r\n\r\n"
    )
    headers = parse_headers(raw)
    assert ("a@x.example", "b@x.example", "c@x.example") == tuple(a.addr for a in headers.to)
    assert () == headers.cc


@pytest.mark.parametrize("blank", [b" ", b"\t", b" \t"])
def test_address_headers_of_blanks_parse_in_linear_time(blank: bytes) -> None:
    """Address headers full of blanks (100,000 characters) parse: no runaway regex.

    The plain-list pattern once took cubic time here (5 s for 2,400 blanks, days for a
    header cut at 100,000); the parse runs in a thread so a regression fails, not hangs.
    """
    raw = (
        b"From: " + blank * (100_000 // len(blank)) + b"x\r\n"
        b"To: Bob Smith" + blank * 40_000 + b"<bob@x.example>\r\n"
        b"Cc: " + blank * 50_000 + b"\r\n\r\nbody"
    )
    parsed: list[ParsedMail] = []
    worker = threading.Thread(target=lambda: parsed.append(parse_mail(raw)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "parsing blank address headers did not finish in 60 s"
    assert ("bob@x.example",) == tuple(a.addr for a in parsed[0].headers.to)


def test_message_id_without_brackets() -> None:
    """A Message-ID without angle brackets is still read."""
    assert "abc@x.example" == parse_headers(b"Message-ID:  abc@x.example \r\n\r\n").message_id


# bodies and robustness


def test_missing_boundary_keeps_the_text() -> None:
    """A multipart without its boundary parameter is read as plain text, with a defect."""
    mail = message(b"Content-Type: multipart/mixed\r\n", b"hello body")
    assert "hello body" == mail.text
    assert "MIME: no boundary in multipart" in mail.defects


@pytest.mark.parametrize(
    "charset", [b"x-unknown", b"utf8mb4", b"unicode-1-1-utf-7", b"base64", b'"a\x00b"']
)
def test_odd_charsets_never_raise(charset: bytes) -> None:
    """Unknown or strange charset names decode the body anyway."""
    mail = message(b"Content-Type: text/plain; charset=" + charset + b"\r\n", "café".encode())
    assert "café" == mail.text


def test_nul_bytes() -> None:
    """NUL bytes in headers and body are dropped, not fatal."""
    mail = message(b"X-Note: a\x00b\r\n", b"hel\x00lo")
    assert "hello" == mail.text


def test_ten_megabyte_line() -> None:
    """A 10 MB body line parses."""
    assert 10_000_000 == len(message(b"", b"x" * 10_000_000).text)


def test_ten_megabyte_header_is_cut() -> None:
    """A 10 MB header is cut and noted, not fed whole to the address parser."""
    mail = parse_mail(b"To: " + b"a@b.example, " * 800_000 + b"\r\n\r\nbody")
    assert "to header of 10,400,000 characters cut to 100,000" in mail.defects


def nested_multipart(depth: int) -> bytes:
    """A message whose text sits inside `depth` nested multipart/mixed parts."""
    part = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        boundary = b"b%d" % level
        part = b"Content-Type: multipart/mixed; boundary=%s\r\n\r\n--%s\r\n%s\r\n--%s--\r\n" % (
            boundary,
            boundary,
            part,
            boundary,
        )
    return HEAD + part


def nested_messages(depth: int) -> bytes:
    """A message holding `depth` levels of attached message/rfc822."""
    part = b"Subject: inner\r\n\r\ninnermost\r\n"
    for _ in range(depth):
        part = b"Content-Type: message/rfc822\r\n\r\n" + part
    return HEAD + part


def test_nesting_within_limit_is_read() -> None:
    """Text nested a few levels deep is found."""
    assert "innermost" == parse_mail(nested_multipart(5)).text


@pytest.mark.parametrize("build", [nested_multipart, nested_messages])
def test_nesting_beyond_limit_is_skipped(build: object) -> None:
    """Parts deeper than MAX_DEPTH are skipped with a note."""
    assert callable(build)
    mail = parse_mail(build(MAX_DEPTH + 5))
    assert "innermost" not in mail.text
    assert f"MIME parts nested deeper than {MAX_DEPTH} levels not read" in mail.defects


@pytest.mark.parametrize("build", [nested_multipart, nested_messages])
def test_absurd_nesting_raises_no_recursion_error(build: object) -> None:
    """Nesting that exhausts the email package's recursion gives a ParsedMail with a defect."""
    assert callable(build)
    mail = parse_mail(build(3000))
    assert mail.defects[0].startswith("MIME structure not readable (RecursionError)")
    assert "innermost" in mail.text
    assert "t" == mail.headers.subject


def test_attachment_caps_are_passed_on() -> None:
    """attachment_max_bytes reaches the extractor: an oversized attachment has no text."""
    raw = (FIXTURES / "mail" / "pdf_attachment.eml").read_bytes()
    mail = parse_mail(raw, attachment_max_bytes=100)
    assert ("", 616) == (mail.attachments[0].text, mail.attachments[0].size)
    assert "attachment 'SOW-signed.pdf' not read: 616 bytes is over 100" in mail.defects


def test_attached_text_without_name_is_an_attachment() -> None:
    """A part with Content-Disposition: attachment and no filename is an attachment named ''."""
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
        b"notes\r\n--b--\r\n"
    )
    mail = message(b"Content-Type: multipart/mixed; boundary=b\r\n", body)
    assert ("body", (Attachment("", "text/plain", 5, "notes"),)) == (mail.text, mail.attachments)


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n "])
def test_empty_input_raises_record_error(raw: bytes) -> None:
    """Empty input is the one case that raises, and it raises RecordError."""
    with pytest.raises(RecordError):
        parse_mail(raw)
    with pytest.raises(RecordError):
        parse_headers(raw)


def test_garbage_bytes_parse() -> None:
    """Bytes that are no mail at all still give a ParsedMail."""
    assert ParsedMail is type(parse_mail(b"\x00\x01\xff\xfe garbage"))


@pytest.mark.parametrize("path", CPYTHON_MESSAGES, ids=lambda path: path.name)
def test_cpython_corpus_parses(path: Path) -> None:
    """Every message of CPython's email test corpus parses (defects allowed)."""
    raw = path.read_bytes()
    assert (ParsedMail, MailHeaders) == (type(parse_mail(raw)), type(parse_headers(raw)))


def test_cpython_corpus_is_present() -> None:
    """The copied corpus holds CPython's 48 test messages."""
    assert 48 == len(CPYTHON_MESSAGES)
