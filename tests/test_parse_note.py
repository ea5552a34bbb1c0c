"""Parsing one note revision: front matter, body, title, date and agreement fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from corrlog.errors import RecordError
from corrlog.model import ContractStatus, Escrow, Milestone, MilestoneStatus
from corrlog.parse.note import Note, parse_note

TZ = timezone(timedelta(hours=1))


def parse(raw: bytes, name: str = "file-stem") -> Note:
    """parse_note with a fixed name and time zone."""
    return parse_note(raw, name=name, tz=TZ)


def reason(raw: bytes) -> str:
    """The RecordError message raised for `raw`."""
    with pytest.raises(RecordError) as caught:
        parse(raw)
    return str(caught.value)


# front matter and body


def test_plain_note_without_front_matter() -> None:
    """Without front matter the whole text is the body and no metadata is set."""
    note = parse(b"Call with Bob.\n\nAgreed on the design.\n")
    assert not note.has_front_matter
    assert "Call with Bob.\n\nAgreed on the design." == note.body
    assert None is note.meta.type
    assert None is note.date


def test_front_matter_split_from_body() -> None:
    """Front matter is read into meta and removed from the body."""
    note = parse(b"---\ntype: update\ncontract: acme-site\n---\n\nDelivered the mockups.\n")
    assert note.has_front_matter
    assert ("update", "acme-site") == (note.meta.type, note.meta.contract)
    assert "Delivered the mockups." == note.body


def test_crlf_line_endings() -> None:
    """Front matter fenced with CRLF lines is recognised."""
    note = parse(b"---\r\ntype: update\r\nclient: Acme\r\n---\r\nBody line\r\n")
    assert note.has_front_matter
    assert ("update", "Acme") == (note.meta.type, note.meta.client)
    assert "Body line" == note.body


def test_bom_is_dropped() -> None:
    """A UTF-8 byte-order mark before the fence does not hide the front matter."""
    note = parse(b"\xef\xbb\xbf---\ntype: note\n---\nbody")
    assert note.has_front_matter
    assert "note" == note.meta.type
    assert "body" == note.body


def test_dots_close_front_matter() -> None:
    """`...` closes front matter like `---` does."""
    note = parse(b"---\ntype: update\n...\nbody")
    assert "update" == note.meta.type
    assert "body" == note.body


def test_fence_with_trailing_spaces() -> None:
    """Fences followed by spaces still count."""
    note = parse(b"---  \ntype: note\n--- \nbody")
    assert ("note", "body") == (note.meta.type, note.body)


def test_empty_front_matter() -> None:
    """An empty front matter block counts as front matter with defaults."""
    note = parse(b"---\n---\nbody")
    assert note.has_front_matter
    assert None is note.meta.type
    assert "body" == note.body


def test_unclosed_fence_is_body() -> None:
    """An opening fence without a closing one is ordinary text."""
    note = parse(b"---\ntitle: x\nbody")
    assert not note.has_front_matter
    assert "---\ntitle: x\nbody" == note.body


def test_fence_must_be_at_start() -> None:
    """A fenced block after other text is not front matter."""
    note = parse(b"intro\n---\ntype: update\n---\n")
    assert not note.has_front_matter
    assert None is note.meta.type


def test_unknown_keys_ignored() -> None:
    """Keys corrlog does not know are accepted and ignored."""
    note = parse(b"---\ntags: [a, b]\ntype: note\n---\n")
    assert "note" == note.meta.type


def test_numbers_coerced_to_strings() -> None:
    """A numeric contract id or client is read as a string."""
    note = parse(b"---\ncontract: 123\nclient: 42\n---\n")
    assert ("123", "42") == (note.meta.contract, note.meta.client)


# title


def test_title_from_front_matter() -> None:
    """A front matter title wins over a heading, stripped of spaces."""
    assert "Kick-off" == parse(b"---\ntitle: '  Kick-off '\n---\n# Heading\n").title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Some text\n\n# First heading\n\n## Second\n", "First heading"),
        (b"## Sprint 1 demo ##\nbody", "Sprint 1 demo"),
        (b"# Hello\r\nbody\r\n", "Hello"),
        (b"---\ntype: update\n---\n### Weekly update\n", "Weekly update"),
    ],
)
def test_title_from_first_heading(raw: bytes, expected: str) -> None:
    """Without a front matter title, the first Markdown heading is the title."""
    assert expected == parse(raw).title


@pytest.mark.parametrize("raw", [b"No heading here\n", b"#hashtag is not a heading\n", b""])
def test_title_falls_back_to_name(raw: bytes) -> None:
    """Without a title or heading, the file name is the title."""
    assert "file-stem" == parse(raw, name="file-stem").title


# dates


def test_date_only_gets_given_tz() -> None:
    """A bare date is midnight in the given time zone."""
    note = parse(b"---\ndate: 2026-01-15\n---\n")
    assert datetime(2026, 1, 15, 0, 0, tzinfo=TZ) == note.date


def test_naive_datetime_gets_given_tz() -> None:
    """A date-time without an offset is read in the given time zone."""
    note = parse(b"---\ndate: 2026-01-15T10:00:00\n---\n")
    assert datetime(2026, 1, 15, 10, 0, tzinfo=TZ) == note.date


def test_aware_datetime_kept() -> None:
    """A date-time with an offset keeps it."""
    note = parse(b"---\ndate: 2026-01-15T10:00:00Z\n---\n")
    assert datetime(2026, 1, 15, 10, 0, tzinfo=UTC) == note.date
    assert timedelta(0) == note.date.utcoffset()


# agreement fields


AGREEMENT = b"""---
type: agreement
contract: acme-site
client: Acme Corp
emails: [Bob@Acme.Example, "@ACME.example", "  "]
interval: 1w3d
start: 2026-11-01
status: paused
milestones:
  - {id: m1}
  - {id: m2, name: Build, amount: 3000, currency: EUR, due: 2026-12-01, escrow: funded, status: submitted}
---
# Acme website agreement
"""


def test_agreement_fields() -> None:
    """Agreement fields: lower-cased emails (blanks dropped), interval, start, status."""
    meta = parse(AGREEMENT).meta
    assert "agreement" == meta.type
    assert ["bob@acme.example", "@acme.example"] == meta.emails
    assert timedelta(days=10) == meta.interval
    assert date(2026, 11, 1) == meta.start
    assert ContractStatus.PAUSED == meta.status


def test_milestones_with_defaults() -> None:
    """A milestone needs only an id; its name defaults to the id, escrow unfunded, status open."""
    milestones = [m.to_milestone() for m in parse(AGREEMENT).meta.milestones]
    assert [
        Milestone(id="m1", name="m1"),
        Milestone(
            id="m2",
            name="Build",
            amount=3000.0,
            currency="EUR",
            due=date(2026, 12, 1),
            escrow=Escrow.FUNDED,
            status=MilestoneStatus.SUBMITTED,
        ),
    ] == milestones


def test_single_email_string_becomes_list() -> None:
    """A single email written as a string is a one-item list, lower-cased."""
    assert ["bob@acme.example"] == parse(b"---\nemails: Bob@Acme.Example\n---\n").meta.emails


def test_defaults_without_agreement_fields() -> None:
    """Without agreement fields: no emails, no interval, active, no milestones."""
    meta = parse(b"---\ntype: note\n---\n").meta
    assert ([], None, ContractStatus.ACTIVE, []) == (
        meta.emails,
        meta.interval,
        meta.status,
        meta.milestones,
    )


def test_numeric_milestone_id() -> None:
    """A milestone id written as a number (`id: 1`) is read as the string "1"."""
    meta = parse(b"---\nmilestones:\n  - {id: 1, name: Design}\n---\n").meta
    assert ["1"] == [m.to_milestone().id for m in meta.milestones]


# errors


def test_invalid_yaml_names_line() -> None:
    """Invalid YAML is a RecordError with the problem and its line in the file."""
    message = reason(b"---\nfoo: [unclosed\nbar: 1\n---\nbody")
    assert message.startswith("invalid YAML front matter: ")
    assert "at line 3, column 4" in message


def test_invalid_yaml_line_with_crlf_and_bom() -> None:
    """The line number counts file lines with CRLF endings and a BOM too."""
    message = reason(b"\xef\xbb\xbf---\r\ntype: note\r\nfoo: bar: baz\r\n---\r\n")
    assert "at line 3," in message


@pytest.mark.parametrize("front", [b"- a\n- b\n", b"just a string\n", b"42\n"])
def test_front_matter_must_be_mapping(front: bytes) -> None:
    """A list or scalar as front matter is a RecordError saying it must be a mapping."""
    assert "front matter must be a mapping of keys to values" == reason(
        b"---\n" + front + b"---\nbody"
    )


def test_bad_type_value() -> None:
    """An unknown `type` names the key and the allowed values."""
    message = reason(b"---\ntype: contract\n---\n")
    assert message.startswith("front matter key 'type': ")
    assert "'agreement', 'update' or 'note'" in message


def test_impossible_date() -> None:
    """A date like 2026-02-30 is a RecordError saying the day is out of range."""
    message = reason(b"---\ndate: 2026-02-30\n---\n")
    assert "day is out of range for month" in message


def test_unreadable_date() -> None:
    """A date that is not a date names the `date` key."""
    assert reason(b"---\ndate: next tuesday\n---\n").startswith("front matter key 'date")


def test_bad_interval() -> None:
    """A bad interval names the key and shows how to write a duration."""
    message = reason(b"---\ninterval: soon\n---\n")
    assert message.startswith("front matter key 'interval': ")
    assert "like 7d, 12h or 2w" in message


def test_milestone_without_id() -> None:
    """A milestone without an id names the milestone and the missing field."""
    assert "front matter key 'milestones.0.id': Field required" == reason(
        b"---\nmilestones:\n  - name: Design\n---\n"
    )


def test_bad_escrow_value() -> None:
    """An unknown escrow state names the milestone's key."""
    assert reason(b"---\nmilestones:\n  - {id: m1, escrow: maybe}\n---\n").startswith(
        "front matter key 'milestones.0.escrow': "
    )


def test_python_tags_refused() -> None:
    """YAML tags that would build Python objects are refused (safe loading)."""
    assert reason(b"---\n!!python/object/apply:os.system [echo hi]\n---\n").startswith(
        "invalid YAML front matter: "
    )


def test_nul_bytes() -> None:
    """A file with NUL bytes is not a text note."""
    assert "not a text file (it contains NUL bytes)" == reason(b"# Title\x00\x01binary")


def test_non_utf8() -> None:
    """Non-UTF-8 bytes are a RecordError naming the byte and its offset."""
    assert "not valid UTF-8 (byte 0xe9 at offset 3); save it as UTF-8" == reason(b"caf\xe9")


def test_front_matter_size_limit() -> None:
    """Front matter of 64 KiB is read; one character more is rejected."""
    line = b"x: " + b"a" * (65536 - 4) + b"\n"
    assert 65536 == len(line)
    assert parse(b"---\n" + line + b"---\nbody").has_front_matter
    longer = b"x: " + b"a" * (65536 - 3) + b"\n"
    assert "front matter longer than 65536 characters" == reason(b"---\n" + longer + b"---\n")
