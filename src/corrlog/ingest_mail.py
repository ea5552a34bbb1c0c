"""From raw message bytes to a Record: parse, link, classify (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from corrlog.analysis import Words, analyse
from corrlog.archive import sha256_hex
from corrlog.errors import RecordError
from corrlog.model import Contract, Direction, Kind, Origin, Record
from corrlog.parse.mail import Address, MailHeaders, ParsedMail, parse_headers, parse_mail
from corrlog.rules.classify import DEFAULT_RULES, ClassifyRules, classify
from corrlog.rules.link import Link, link_mail

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mail_record_id(message_id: str | None, sha256: str) -> str:
    """A message's record id: from its Message-ID (so copies are one record), else its bytes."""
    if message_id:
        return hashlib.sha256(f"msg\0{message_id}".encode()).hexdigest()[:12]
    return sha256[:12]


@dataclass(frozen=True, slots=True)
class MailItem:
    """Message bytes as fetched, with where and when the server says they arrived."""

    raw: bytes
    origin: Origin
    received: datetime | None = None


@dataclass(frozen=True, slots=True)
class MailDoc:
    """A message made ready for state and index."""

    record: Record
    message_id: str | None
    thread_refs: tuple[str, ...]
    attachment_text: str
    fulltext: str
    quarantine: str | None
    words: Words | None = None  # the text fields analysed for the index (`analysis.analyse`)


def _display(address: Address) -> str:
    return f"{address.name} <{address.addr}>" if address.name else address.addr


def _headers_or_empty(raw: bytes) -> MailHeaders:
    try:
        return parse_headers(raw)
    except RecordError:
        return MailHeaders(None, "", (), (), (), (), None, None, ())


def _parse(raw: bytes) -> tuple[MailHeaders, ParsedMail | None, str | None]:
    try:
        parsed = parse_mail(raw)
    except RecordError as exc:
        return _headers_or_empty(raw), None, str(exc)
    return parsed.headers, parsed, None


def thread_refs(headers: MailHeaders) -> tuple[str, ...]:
    """The message ids this message answers, nearest first."""
    refs = list(reversed(headers.references))
    if headers.in_reply_to:
        refs.insert(0, headers.in_reply_to)
    return tuple(dict.fromkeys(refs))


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a message yields without any context but `me` and the rules: parsed and classified.

    This is the CPU-heavy, pure part of ingesting mail; it can run in a worker process
    (see corrlog.prepare) while the main process archives, links and indexes.
    """

    sha256: str
    headers: MailHeaders
    parsed: ParsedMail | None
    problem: str | None
    direction: Direction
    kind: Kind
    words: Words | None  # the text fields analysed for the index, None when unparseable


def prepare_mail(raw: bytes, *, me: frozenset[str], rules: ClassifyRules) -> Prepared:
    """Parse and classify one message; an unparseable one is marked with its problem."""
    headers, parsed, problem = _parse(raw)
    sender = headers.from_[0] if headers.from_ else None
    direction = Direction.OUT if sender and sender.addr in me else Direction.IN
    kind, _reason = (
        classify(
            subject=headers.subject,
            new_text=parsed.new_text,
            direction=direction,
            declared=None,
            rules=rules,
        )
        if parsed
        else (Kind.MESSAGE, "quarantined")
    )
    words = (
        analyse(headers.subject, parsed.new_text, _attachment_text(parsed), parsed.text)
        if parsed
        else None
    )
    return Prepared(sha256_hex(raw), headers, parsed, problem, direction, kind, words)


def _attachment_text(parsed: ParsedMail) -> str:
    return "\n".join(a.text for a in parsed.attachments if a.text)


def mail_record(
    item: MailItem,
    *,
    contracts: Mapping[str, Contract],
    me: frozenset[str],
    thread_links: Mapping[str, Link],
    rules: ClassifyRules = DEFAULT_RULES,
    prepared: Prepared | None = None,
) -> MailDoc:
    """Parse (unless `prepared`), link and classify one message; unparseable ones are quarantined."""
    ready = prepared or prepare_mail(item.raw, me=me, rules=rules)
    headers, parsed = ready.headers, ready.parsed
    when = headers.date or item.received or _EPOCH
    participants = tuple(a.addr for a in headers.participants())
    new_text = parsed.new_text if parsed else ""
    refs = thread_refs(headers)
    link = link_mail(
        subject=headers.subject,
        participants=participants,
        thread_refs=refs,
        when=when.date(),
        contracts=contracts,
        thread_links=thread_links,
        text=new_text,
    )
    sender = headers.from_[0] if headers.from_ else None
    record = Record(
        id=mail_record_id(headers.message_id, ready.sha256),
        source=item.origin.source,
        kind=ready.kind,
        direction=ready.direction,
        date=when,
        subject=headers.subject,
        sha256=ready.sha256,
        origin=item.origin,
        client=link.client,
        contract=link.contract,
        milestone=link.milestone,
        sender=_display(sender) if sender else "",
        recipients=tuple(_display(a) for a in (*headers.to, *headers.cc)),
        participants=participants,
        text=new_text,
        attachments=tuple(a.name for a in parsed.attachments) if parsed else (),
        link_rule=link.rule,
    )
    return MailDoc(
        record=record,
        message_id=headers.message_id,
        thread_refs=refs,
        attachment_text=_attachment_text(parsed) if parsed else "",
        fulltext=parsed.text if parsed else "",
        quarantine=ready.problem,
        words=ready.words,
    )
