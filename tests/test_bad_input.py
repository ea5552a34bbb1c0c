"""Bad input: generated malformed MIME, hostile content, hostile queries and broken configs.

The property tests call the parser directly (fast); a sample of the same generated messages
then goes end to end through a Maildir and `corrlog sync`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import quopri
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from corrlog.errors import RecordError
from corrlog.index_tantivy import to_document as tantivy_document
from corrlog.index_whoosh import to_document
from corrlog.ingest_mail import MailItem, mail_record
from corrlog.model import Origin, SourceKind
from corrlog.parse.mail import MailHeaders, ParsedMail, parse_headers, parse_mail
from support.cli import CorrlogHome
from support.dovecot import DovecotServer
from support.faults import capture_all, run_cli, scalar
from support.mail import (
    AGREEMENT_NOTE,
    CLIENT,
    ME,
    add_imap_account,
    message,
    set_me,
    write_maildir,
)

ROOT = Path(__file__).resolve().parent
SEEDS = sorted((ROOT / "fixtures" / "mail").glob("*.eml")) + sorted(
    (ROOT / "fixtures" / "cpython_email").glob("msg_*.txt")
)
ORIGIN = Origin(SourceKind.MAILDIR, "fuzz", path="cur/1", folder="")
PROPERTY_EXAMPLES = 5000
END_TO_END_EXAMPLES = 300

# Generated MIME ------------------------------------------------------------------------------

CHARSETS = (
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "gb2312",
    "big5", "utf-16", "utf-16-le", "utf-32", "utf-7", "hz", "iso-2022-jp", "x-unknown",
    "unknown-8bit", "bogus-charset", "", "utf8mb4", "unicode-escape", "idna", "rot13",
    "base64", "zlib", "cp65001", "'utf-8'", '"latin1"', "utf-8\x00", "x" * 200,
)  # fmt: skip
HEADER_NAMES = (
    "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
    "References", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    "MIME-Version", "Received", "X-Junk",
)  # fmt: skip
CONTENT_TYPES = (
    "text/plain", "text/html", "multipart/mixed", "multipart/alternative", "multipart/related",
    "multipart/report", "message/rfc822", "message/global", "message/delivery-status",
    "application/pdf", "application/octet-stream", "image/png", "text/calendar",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "", "garbage", "multipart/", "/", "text/", "TEXT/PLAIN", "multipart/mixed/extra",
)  # fmt: skip
ENCODINGS = (
    None, "base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "bogus",
    "BASE64 ", "quoted-printable; x=1",
)  # fmt: skip
DATES = (
    "Mon, 2 Mar 2026 10:00:00 +0000", "Fri, 31 Dec 9999 23:59:59 -1200",
    "Mon, 1 Jan 0001 00:00:00 +1400", "Thu, 1 Jan 1970 00:00:00 +0000", "32 Foo 20000 99:99:99",
    "Mon, 2 Mar 2026 10:00:00 +9999", "Mon, 2 Mar 2026 10:00:00 -9999", "yesterday", "", "0",
    "Mon, 2 Mar 26 10:00 EST", "2026-03-02T10:00:00Z", "Tue, 29 Feb 2026 25:61:61 +0000",
    "Sat, 1 Jan 100000 00:00:00 +0000", "\x00\x00", "Mon,, 2 Mar 2026 10:00:00 GMT+1",
)  # fmt: skip
ADDRESSES = (
    "bob@acme.example", "Bob <bob@acme.example>", '"Bob, Jr." <bob@acme.example>',
    "<<<@>>>", "a@b, <c@d", "undisclosed-recipients:;", "group: a@b, c@d;", "(comment (nested",
    '"unterminated <x@y>', "@@@@", "<>", "=?utf-8?B?Qm9i?= <bob@acme.example>", "a@b" * 50,
    "x@[127.0.0.1]", "\\\\\\", "a\x00b@c.d", "Bob <bob@acme.example", ",,,,,,",
)  # fmt: skip
HOSTILE_TEXT = (
    "<script>alert(1)</script>", "\x1b[2J\x1b]0;pwned\x07", "\u202egnp.exe", "&#x3C;&lt;",
    "]]><!--", "\r\n.\r\n", "%s%n%x", "${jndi:ldap://x}", "$(touch /tmp/x)",
)  # fmt: skip
_SIZES = (0, 1, 7, 76, 998, 1000, 5_000, 20_000)  # 10 MB cases: EXTREMES below


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


raw_text = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=60).map(_b),
    st.sampled_from(HOSTILE_TEXT).map(_b),
)


@st.composite
def encoded_word(draw: st.DrawFn) -> bytes:
    """An RFC 2047 word with a random charset, encoding and (often broken) payload."""
    charset = draw(st.sampled_from(CHARSETS))
    kind = draw(st.sampled_from(["B", "Q", "b", "q", "X", ""]))
    data = draw(st.binary(max_size=40))
    payload = {
        "B": base64.b64encode(data),
        "Q": quopri.encodestring(data, header=True),
    }.get(kind.upper(), data)
    if draw(st.booleans()):
        payload = payload[: draw(st.integers(0, len(payload)))] + draw(st.binary(max_size=3))
    return b"=?" + _b(charset) + b"?" + _b(kind) + b"?" + payload + b"?="


@st.composite
def huge(draw: st.DrawFn) -> bytes:
    """A long run of one character (up to 150 KB) built from a small draw."""
    unit = draw(st.sampled_from([b"a", b" ", b"<", b"=?", b"\x00", b",", b"(", b"\xff", b"@"]))
    return unit * draw(st.sampled_from(_SIZES))


header_value = st.one_of(
    raw_text,
    encoded_word(),
    st.lists(encoded_word(), max_size=5).map(b" ".join),
    st.sampled_from(ADDRESSES).map(_b),
    st.lists(st.sampled_from(ADDRESSES), max_size=8).map(lambda a: _b(", ".join(a))),
    st.sampled_from(DATES).map(_b),
    huge(),
)


@st.composite
def header_line(draw: st.DrawFn) -> bytes:
    """`Name: value`, with odd names, separators and folding."""
    name = draw(st.one_of(st.sampled_from(HEADER_NAMES).map(_b), st.binary(max_size=12)))
    sep = draw(st.sampled_from([b": ", b":", b" : ", b":\t", b"", b":\r\n "]))
    value = draw(header_value)
    if draw(st.integers(0, 4)) == 0:
        value = value.replace(b" ", b"\r\n ", draw(st.integers(1, 5)))
    return name + sep + value


@st.composite
def content_type(draw: st.DrawFn, boundary: bytes | None = None) -> bytes:
    """A Content-Type line with random, often broken, parameters."""
    value = _b(draw(st.sampled_from(CONTENT_TYPES)))
    params = []
    if draw(st.booleans()):
        params.append(b"charset=" + _b(draw(st.sampled_from(CHARSETS))))
    if boundary is not None:
        quoted = draw(st.sampled_from([b"%s", b'"%s"', b'"%s', b"%s; boundary=other"]))
        params.append(b"boundary=" + quoted % boundary)
    if draw(st.integers(0, 5)) == 0:
        params.append(draw(st.sampled_from([
            b"name*=utf-8''%ff%fe%00", b"name*0*=x; name*2=y", b'name="a\\"b', b"name=",
            b"name=" + b"n" * 5000, b"=;=;;;", b"boundary=", b'name="../../etc/passwd"',
        ])))  # fmt: skip
    return b"Content-Type: " + b"; ".join([value, *params])


def _encode(data: bytes, encoding: str | None, broken: bool) -> bytes:
    if encoding == "base64":
        out = base64.encodebytes(data)
        return out.replace(b"=", b"!") + b"====" if broken else out
    if encoding == "quoted-printable":
        out = quopri.encodestring(data)
        return out + b"=Z=\r\n=" if broken else out
    return data


leaf_payload = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(_b),
    st.sampled_from(HOSTILE_TEXT).map(_b),
    st.just(b"<html><body><p>Hi<script>alert(1)</script><table><tr><td>x"),
    st.binary(max_size=200).map(lambda b: b"%PDF-1.4\n1 0 obj << /Length 99999 >>\nstream\n" + b),
    st.binary(max_size=200).map(lambda b: b"PK\x03\x04\x14\x00\x00\x00" + b),
    huge(),
)


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A MIME entity: a leaf, a multipart with (mis)matched boundaries, or a message/rfc822."""
    kinds = ["leaf", "leaf", "multipart", "rfc822"] if depth < 4 else ["leaf"]
    kind = draw(st.sampled_from(kinds))
    headers = draw(st.lists(header_line(), max_size=3))
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding is not None:
        headers.append(b"Content-Transfer-Encoding: " + _b(encoding))
    if draw(st.integers(0, 3)) == 0:
        disposition = draw(st.sampled_from([b"attachment", b"inline", b"attachment; filename="]))
        headers.append(b"Content-Disposition: " + disposition + _b(draw(st.text(max_size=20))))
    if kind == "leaf":
        headers.append(draw(content_type()))
        body = _encode(draw(leaf_payload), encoding, draw(st.booleans()))
    elif kind == "rfc822":
        headers.append(b"Content-Type: message/rfc822")
        body = draw(mime_message(depth + 1))
    else:
        boundary = draw(st.one_of(st.binary(min_size=0, max_size=20), st.just(b"b" * 300)))
        headers.append(draw(content_type(boundary)))
        used = draw(st.sampled_from([boundary, boundary, b"other", boundary[:-1], b""]))
        children = draw(st.lists(mime_part(depth + 1), max_size=4))
        parts = [draw(st.binary(max_size=30))]  # preamble
        parts += [b"--" + used + b"\r\n" + child for child in children]
        if draw(st.booleans()):
            parts.append(b"--" + used + b"--")
        body = b"\r\n".join(parts) + draw(st.binary(max_size=20))  # epilogue
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


@st.composite
def mime_message(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A whole message: random headers around a MIME entity."""
    top = draw(st.lists(header_line(), max_size=8))
    return b"\r\n".join(top) + (b"\r\n" if top else b"") + draw(mime_part(depth))


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    """message/rfc822 and multipart wrappers nested up to 60 deep."""
    raw = b"Subject: innermost\r\n\r\nhello from the bottom\r\n"
    for level in range(draw(st.integers(1, 60))):
        if draw(st.booleans()):
            raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
        else:
            marker = b"b%d" % level
            raw = (
                b"Content-Type: multipart/mixed; boundary=" + marker + b"\r\n\r\n--" + marker
                + b"\r\n" + raw + b"\r\n--" + marker + b"--\r\n"
            )  # fmt: skip
    return b"From: a@b.example\r\nSubject: deep\r\n" + raw


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """A real message from tests/fixtures with bytes inserted, deleted, repeated or flipped."""
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "repeat", "flip", "cut", "eol"]))
        if action == "insert":
            data[at:at] = draw(st.one_of(st.binary(min_size=1, max_size=20), huge()))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        elif action == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 100))] * draw(st.integers(2, 50))
        elif action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[:] = bytes(data).replace(b"\n", draw(st.sampled_from([b"\r", b"\r\r\n", b"\n\n"])))
    return bytes(data)


@st.composite
def line_endings(draw: st.DrawFn, raw: bytes) -> bytes:
    """The same bytes with CRLF, LF or bare CR line ends, sometimes cut short."""
    ending = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    raw = raw.replace(b"\r\n", ending)
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


malformed_messages = st.one_of(
    mime_message(), mime_message(), deep_nesting(), mutated_seed(), st.binary(max_size=500)
).flatmap(line_endings)


# What must hold for every message -------------------------------------------------------------


@dataclass
class Tally:
    """What the generated messages did to the parser."""

    messages: int = 0
    quarantined: int = 0
    with_defects: int = 0
    largest: int = 0
    problems: list[str] = field(default_factory=list)


def _stored_strings(headers: MailHeaders, parsed: ParsedMail | None) -> Iterator[str]:
    """The parser's output that is stored (SQLite, stored index fields) and printed back."""
    yield from (headers.message_id or "", headers.subject, headers.in_reply_to or "")
    yield from headers.references
    for address in headers.participants():
        yield from address
    if parsed is not None:
        yield parsed.new_text
        for attachment in parsed.attachments:
            yield from (attachment.name, attachment.text)


def check_message(raw: bytes, tally: Tally) -> None:
    """Parse headers, parse the message, build and index its record: only RecordError may escape."""
    tally.messages += 1
    tally.largest = max(tally.largest, len(raw))
    try:
        headers: MailHeaders | None = parse_headers(raw)
    except RecordError:
        headers = None
    try:
        parsed: ParsedMail | None = parse_mail(raw)
    except RecordError as exc:
        assert str(exc), "a RecordError must say why"
        parsed = None
        tally.quarantined += 1
    if parsed is not None:
        tally.with_defects += bool(parsed.defects)
        for text in _stored_strings(parsed.headers, parsed):
            text.encode("utf-8")  # SQLite, Whoosh and JSON need valid text: no lone surrogates
    if headers is not None:
        for text in _stored_strings(headers, None):
            text.encode("utf-8")
    doc = mail_record(MailItem(raw, ORIGIN), contracts={}, me=frozenset(), thread_links={})
    assert (doc.quarantine is None) == (parsed is not None)
    document = to_document(doc.record, doc.attachment_text, doc.fulltext)
    json.dumps(document, default=str).encode("utf-8")
    tantivy_document(doc.record, doc.attachment_text, doc.fulltext)


@pytest.mark.slow
def test_generated_malformed_mime_never_escapes_the_parser() -> None:
    """5,000 generated broken messages: the parser raises nothing but RecordError and every record can be indexed."""
    tally = Tally()

    @settings(
        max_examples=PROPERTY_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw=malformed_messages)
    def property_holds(raw: bytes) -> None:
        check_message(raw, tally)

    property_holds()
    print(
        f"\nfigures: generated={tally.messages}, quarantined={tally.quarantined}, "
        f"with_defects={tally.with_defects}, largest={tally.largest:,} bytes"
    )
    assert tally.messages >= PROPERTY_EXAMPLES


@pytest.mark.parametrize(
    "raw",
    [
        b" : \x80\r\nContent-Type: text/plain\r\n\r\n",
        b"From: a@b.example\r\nContent-Type: t\xc3\xf4/x\xff\r\n\r\nbody",
        b"Content-Type: message/rfc822\r\n\r\nDate: \x80\r\nContent-Type: text/plain\r\n\r\n",
    ],
    ids=["8-bit continuation line", "8-bit content type", "8-bit date of an attached message"],
)
def test_all_parser_text_is_valid_unicode(raw: bytes) -> None:
    """Defect notes, content types and the full text hold no lone surrogates (cases found by the property test)."""
    parsed = parse_mail(raw)
    found = (parsed.text, *parsed.defects, *(a.content_type for a in parsed.attachments))
    for text in found:
        text.encode("utf-8")


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Fail with a clear message when the block runs longer than `seconds` (SIGALRM)."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise AssertionError(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


HEAD = (
    b"From: Bob <bob@acme.example>\r\nTo: me@freelancer.example\r\nSubject: extreme\r\n"
    b"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <extreme@acme.example>\r\n"
)


def _nested(depth: int, kind: str) -> bytes:
    raw = HEAD + b"\r\nthe innermost text\r\n"
    for level in range(depth):
        if kind == "rfc822":
            raw = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + raw
        else:
            marker = b"n%d" % level
            raw = (
                HEAD + b"Content-Type: multipart/mixed; boundary=" + marker + b"\r\n\r\n--"
                + marker + b"\r\n" + raw + b"\r\n--" + marker + b"--\r\n"
            )  # fmt: skip
    return raw


EXTREMES = {
    "10 MB body line": lambda: HEAD + b"\r\n" + b"x" * 10_000_000 + b"\r\n",
    "10 MB header line": lambda: HEAD + b"X-Long: " + b"y" * 10_000_000 + b"\r\n\r\nbody\r\n",
    "10 MB subject": lambda: b"Subject: " + b"z " * 5_000_000 + b"\r\n" + HEAD + b"\r\nbody",
    "10 MB address list": lambda: b"To: " + b"a@b.example, " * 800_000 + b"\r\n" + HEAD + b"\r\n",
    "10 MB broken base64": lambda: (
        HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n" + b"!@#$" * 2_500_000
    ),
    "10 MB of HTML tags": lambda: HEAD + b"Content-Type: text/html\r\n\r\n" + b"<b>" * 3_400_000,
    "1 MB of NUL bytes": lambda: HEAD + b"\r\n" + b"\x00" * 1_000_000,
    "message/rfc822 50 deep": lambda: _nested(50, "rfc822"),
    "multipart 50 deep": lambda: _nested(50, "multipart"),
    "message/rfc822 1000 deep": lambda: _nested(1000, "rfc822"),
    "multipart 1000 deep": lambda: _nested(1000, "multipart"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXTREMES))
def test_extreme_messages_are_parsed_and_recorded_within_10_seconds(name: str) -> None:
    """10 MB lines and headers, 1,000-deep nesting, NUL floods: parsed, recorded and indexable in bounded time."""
    raw = EXTREMES[name]()
    tally = Tally()
    start = time.monotonic()
    with time_limit(10, name):
        check_message(raw, tally)
    print(f"\n{name}: {len(raw):,} bytes in {time.monotonic() - start:.2f} s")


def test_repeated_hedged_phrases_cannot_stall_classification() -> None:
    """A 1 MB body of negated agreement phrases (an attacker's mail) is classified in under 5 s."""
    body = b"we have not signed the contract " * 32_000
    raw = HEAD + b"\r\n" + body
    with time_limit(5, "classifying 1 MB of hedged phrases"):
        doc = mail_record(MailItem(raw, ORIGIN), contracts={}, me=frozenset(), thread_links={})
    assert doc.record.kind.value == "message"


# End to end ----------------------------------------------------------------------------------


def _collect(count: int) -> list[bytes]:
    """`count` generated malformed messages (the generation phase only, no shrinking)."""
    found: list[bytes] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=malformed_messages)
    def gather(raw: bytes) -> None:
        found.append(raw)

    gather()
    return found


@pytest.mark.slow
def test_generated_messages_in_a_maildir_are_each_archived_or_reported(home: CorrlogHome) -> None:
    """300 generated broken messages through a Maildir and `corrlog sync`: each is archived (quarantined with a reason when unparseable) or reported."""
    capture_all(home)
    raws = _collect(END_TO_END_EXAMPLES)
    write_maildir(home.data / "maildir", raws)
    files = sum(1 for p in (home.data / "maildir").rglob("*") if p.parent.name in ("new", "cur"))
    result = home.run("sync")
    assert result.code == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = next(line for line in result.out.splitlines() if line.startswith("maildir local:"))
    unreadable = (
        int(summary.split(" unreadable")[0].rsplit(" ", 1)[1]) if "unreadable" in summary else 0
    )
    entries = scalar(home, "SELECT COUNT(*) FROM ledger WHERE origin LIKE 'maildir:local:%'")
    quarantined = scalar(home, "SELECT COUNT(*) FROM records WHERE quarantine IS NOT NULL")
    reasons = scalar(home, "SELECT COUNT(*) FROM records WHERE quarantine != ''")
    print(
        f"\nfigures: files={files}, ledger_entries={entries}, unreadable={unreadable}, "
        f"records={scalar(home, 'SELECT COUNT(*) FROM records')}, quarantined={quarantined}"
    )
    assert files == len(raws)
    assert entries + unreadable == files
    assert quarantined == reasons
    assert home.run("verify").out.startswith("ok:")
    index = [line for line in home.run("doctor", "--offline").out.splitlines() if "index:" in line]
    assert index and index[0].startswith("ok"), index


def test_out_of_range_dates_do_not_poison_the_index(home: CorrlogHome) -> None:
    """Date headers of year 9999 at -12:00 and year 1 at +01:00 are archived and searchable; a note dated 0001 at +14:00 is skipped with its reason; later mail is still indexed."""
    capture_all(home)
    write_maildir(
        home.data / "maildir",
        [
            message(1, body="before the poison"),
            HEAD.replace(b"Mon, 2 Mar 2026 10:00:00 +0000", b"Fri, 31 Dec 9999 23:00:00 -1200")
            + b"\r\nfar future kraken\r\n",
            HEAD.replace(
                b"Mon, 2 Mar 2026 10:00:00 +0000", b"Mon, 1 Jan 0001 00:30:00 +0100"
            ).replace(b"<extreme@", b"<ancient@")
            + b"\r\nancient griffin\r\n",
        ],
    )
    note = home.note("odd.md", "---\ndate: 0001-01-01T00:00:00+14:00\n---\n# Odd\nA basilisk.\n")
    first = home.run("--log-format", "json", "sync")
    write_maildir(home.data / "maildir", [message(2, body="after the poison, a marmot")])
    second = home.run("sync")
    assert "Traceback" not in first.stderr + second.stderr, (first.stderr + second.stderr)[-3000:]
    assert (first.code, second.code) == (0, 0)
    for word in ("kraken", "griffin", "marmot"):
        assert len(home.ok("search", word, "--format", "ids").out.split()) == 1, word
    skipped = [
        json.loads(line)
        for line in first.stderr.splitlines()
        if line.startswith("{") and str(note) in line
    ]
    assert [s["level"] for s in skipped] == ["warning"]
    assert "out of range" in skipped[0]["reason"]


# Hostile content ------------------------------------------------------------------------------

HOSTILE_SUBJECTS = (
    "<script>alert('subject')</script>",
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table></body></html><h1>forged</h1>",
    "<!-- unclosed comment",
    "<svg onload=alert(2)><style>*{display:none}</style>",
    "javascript:alert(3) &amp; &lt;b&gt;",
)
HOSTILE_BODY = (
    "We agree to the revised price. <script>document.location='https://evil.example'</script>"
    '<iframe src=https://evil.example></iframe><a href="javascript:alert(4)">pay here</a>'
)


class _Tags(HTMLParser):
    """The sequence of tags, and anything that could run script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.active: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("script", "iframe", "object", "embed", "img", "base"):
            self.active.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.active.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)


def _tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _report_home(root: Path, subjects: tuple[str, ...], body: str) -> CorrlogHome:
    home = CorrlogHome.create(root)
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE.replace("# Acme website", "# Acme <b>site</b>"))
    mails = [
        message(n, sender=CLIENT, subject=f"[acme-site] {subject}", body=body)
        for n, subject in enumerate(subjects)
    ]
    mails.append(message(99, sender=ME, to=CLIENT, subject=subjects[0], body=body))
    write_maildir(home.data / "maildir", mails)
    home.ok("sync")
    return home


def _pages(home: CorrlogHome, out: Path) -> dict[str, str]:
    digest = home.ok("digest", "--format", "html", "--week", "2026-W09", "--now", "2026-03-02")
    home.ok("export", "acme-site", "--out", str(out))
    return {"digest": digest.out, "timeline": (out / "timeline.html").read_text()}


@pytest.mark.slow
def test_html_in_subjects_and_bodies_is_inert_in_the_digest_and_timeline(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Script, event handlers and closing tags in subjects and bodies come out escaped: no active element, the same tag structure as harmless text."""
    hostile = _report_home(tmp_path_factory.mktemp("hostile"), HOSTILE_SUBJECTS, HOSTILE_BODY)
    benign_subjects = tuple(f"Subject number {n}" for n in range(len(HOSTILE_SUBJECTS)))
    benign = _report_home(tmp_path_factory.mktemp("benign"), benign_subjects, "We agree to it.")
    hostile_pages = _pages(hostile, tmp_path_factory.mktemp("out") / "pack")
    benign_pages = _pages(benign, tmp_path_factory.mktemp("out") / "pack")
    for name, page in hostile_pages.items():
        parsed = _tags(page)
        assert parsed.active == [], (name, parsed.active)
        assert parsed.tags == _tags(benign_pages[name]).tags, name
        assert "<script" not in page.lower(), name
    assert "&lt;script&gt;" in hostile_pages["digest"] + hostile_pages["timeline"]


def test_terminal_escapes_in_a_subject_are_neutralised_in_tables(home: CorrlogHome) -> None:
    """ESC, BEL, CSI and OSC sequences in a subject, sender and body never reach the terminal from search or show."""
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x9b31m\x08"
    raw = (
        f"From: \x1b[5mBob\x1b[0m <bob@acme.example>\r\nTo: {ME}\r\n"
        f"Subject: Invoice {evil} okapi\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
        f"Message-ID: <esc@acme.example>\r\n\r\nThe okapi body {evil} end.\r\n"
    ).encode()
    capture_all(home)
    write_maildir(home.data / "maildir", [raw])
    home.ok("sync")
    table = home.ok("search", "okapi")
    (record_id,) = home.ok("search", "okapi", "--format", "ids").out.split()
    shown = home.ok("show", record_id)
    for output in (table.stdout, shown.stdout):
        text = output.decode("utf-8")
        assert not any(c in text for c in "\x1b\x07\x08\x9b"), repr(text)
        assert "okapi" in text


# Hostile queries ------------------------------------------------------------------------------

HOSTILE_QUERIES = {
    "unbalanced open": "(invoice",
    "unbalanced close": "invoice)",
    "1,000 closing parentheses": "invoice" + ")" * 1000,
    "5,000 nested parentheses": "(" * 5000 + "invoice" + ")" * 5000,
    "100 KB of words": "invoice " * 12_500,
    "100 KB single word": "x" * 100_000,
    "100 KB unbalanced": "(" + "invoice " * 12_500,
    "unknown field": "nosuchfield:invoice",
    "unknown field, capitalised": "Foo:bar From:bob",
    "wildcard only": "*",
    "question mark only": "?",
    "double wildcard": "**",
    "wildcards around nothing": "*?*",
    "field wildcard": "subject:*",
    "address wildcard": "from:*@*",
    "huge boost": "invoice^999999999999",
    "huge slop": '"a b c"~9999999',
    "dangling operator": "invoice OR",
    "operator only": "NOT",
    "unterminated phrase": '"unterminated',
    "impossible date": "date:[2026-13-45 to x]",
    "empty range": "date:[to]",
    "regex-looking": "body:/.*(a+)+$/",
    "right-to-left override": "\u202einvoice",
}


@pytest.fixture(scope="module")
def searchable_home(tmp_path_factory: pytest.TempPathFactory) -> CorrlogHome:
    """A home with 200 messages and a contract, synced once."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("queries"))
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    write_maildir(home.data / "maildir", [message(n, subject=f"Invoice {n}") for n in range(200)])
    home.ok("sync")
    return home


@pytest.mark.parametrize("name", list(HOSTILE_QUERIES))
def test_hostile_queries_get_a_clear_answer_in_bounded_time(
    searchable_home: CorrlogHome, name: str
) -> None:
    """Each hostile query returns results or one short error line (exit 2) within 10 s, never a traceback."""
    start = time.monotonic()
    try:
        result = run_cli(searchable_home, "search", HOSTILE_QUERIES[name], timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"query {name!r} still running after 10 s")
    took = time.monotonic() - start
    print(f"\n{name}: exit {result.code} in {took:.2f} s")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.code in (0, 2), result.stderr[-2000:]
    if result.code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("corrlog: error:"), lines[-3:]
        assert len(lines[0]) < 600, f"error line of {len(lines[0]):,} characters"


# Config --------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "unknown key": ("colour = 'blue'\n", "colour"),
    "unknown nested key": ("[daemon]\npoll_every = '1m'\n", "daemon.poll_every"),
    "wrong type": ("default_interval = 7\n", "default_interval"),
    "bad duration": ("default_interval = 'soon'\n", "default_interval"),
    "wrong type in a list": ("me = 'x'\n[notes]\npaths = [1]\n", "notes.paths"),
    "relative path": ("data_dir = 'relative/dir'\n", "data_dir"),
    "batch size not a number": (
        "[[imap]]\nname='a'\nhost='127.0.0.1'\nusername='u'\npassword='p'\nbatch_size='many'\n",
        "imap.0.batch_size",
    ),
    "two passwords": (
        "[[imap]]\nname='a'\nhost='127.0.0.1'\nusername='u'\npassword='p'\npassword_file='/x'\n",
        "password_file",
    ),
    "tls none to a remote IMAP host": (
        "[[imap]]\nname='a'\nhost='imap.example.com'\ntls='none'\nusername='u'\npassword='p'\n",
        "loopback",
    ),
    "tls none to a remote SMTP host": (
        "[notify.email]\nhost='smtp.example.com'\ntls='none'\nfrom='a@b.c'\nto=['d@e.f']\n",
        "loopback",
    ),
    "not TOML": ("data_dir = [unclosed\n", "not valid TOML"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_is_one_line_naming_the_key_exit_2(home: CorrlogHome, name: str) -> None:
    """Unknown keys, wrong types, relative paths and clear-text TLS to a remote host: one line naming the problem, exit 2."""
    text, expected = BAD_CONFIGS[name]
    home.config.write_text(text)
    result = home.run("sync")
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("corrlog: error:"), lines
    assert expected in lines[0]


def test_missing_notes_folder_is_warned_about_and_named_by_doctor(home: CorrlogHome) -> None:
    """A notes path that does not exist: sync warns and goes on; doctor fails naming it with a remedy."""
    missing = home.root / "no-such-notes"
    text = re.sub(r"^paths = .*$", f'paths = ["{missing}"]', home.config.read_text(), flags=re.M)
    home.config.write_text(text)
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(w.get("path") == str(missing) and w["level"] == "warning" for w in warnings)
    doctor = home.run("doctor", "--offline")
    assert doctor.code == 1
    assert any(
        line.startswith(f"FAIL  notes folder: {missing} is missing") and "mkdir" in line
        for line in doctor.out.splitlines()
    )


@pytest.mark.imap
def test_password_file_readable_by_others_is_warned_about_once(
    home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A 0644 password file still works but the sync warns once, naming chmod 600."""
    secret = home.root / "imap-password"
    secret.write_text(clean_mailboxes.password("bob"))
    secret.chmod(0o644)
    add_imap_account(home, clean_mailboxes, user="bob")
    home.config.write_text(
        home.config.read_text().replace(
            f'password = "{clean_mailboxes.password("bob")}"', f'password_file = "{secret}"'
        )
    )
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "chmod 600" in line]
    assert len(warned) == 1, warned
