"""Parse one note revision: optional YAML front matter, then Markdown or plain text."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from corrlog.durations import parse_duration
from corrlog.errors import RecordError
from corrlog.model import ContractStatus, Escrow, Milestone, MilestoneStatus

if TYPE_CHECKING:
    import yaml

_FENCE = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_MAX_FRONT_MATTER = 65536
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _interval(value: object) -> object:
    if value is None or isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


def _lower_list(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [str(v).strip().lower() for v in value if str(v).strip()]
    return value


class MilestoneModel(BaseModel):
    """A milestone as written in front matter."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    name: str = ""
    amount: float | None = None
    currency: str | None = None
    due: dt.date | None = None
    escrow: Escrow = Escrow.UNFUNDED
    status: MilestoneStatus = MilestoneStatus.OPEN
    since: dt.date | None = None

    def to_milestone(self) -> Milestone:
        """The model as the typed Milestone."""
        return Milestone(
            id=str(self.id),
            name=self.name or str(self.id),
            amount=self.amount,
            currency=self.currency,
            due=self.due,
            escrow=self.escrow,
            status=self.status,
            status_since=self.since,
        )


class FrontMatter(BaseModel):
    """The keys corrlog reads from a note's front matter; other keys are kept but ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: Literal["agreement", "update", "note"] | None = None
    contract: str | None = None
    client: str | None = None
    date: datetime | dt.date | None = None
    title: str | None = None
    emails: Annotated[list[str], BeforeValidator(_lower_list)] = Field(default_factory=list)
    interval: Annotated[timedelta | None, BeforeValidator(_interval)] = None
    start: dt.date | None = None
    status: ContractStatus = ContractStatus.ACTIVE
    milestones: list[MilestoneModel] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note revision."""

    meta: FrontMatter
    has_front_matter: bool
    title: str
    body: str
    date: datetime | None


def decode_text(raw: bytes) -> str:
    """UTF-8 text (a BOM is dropped); RecordError for binary or non-UTF-8 bytes."""
    if b"\x00" in raw[:8192]:
        raise RecordError("not a text file (it contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """Return (front matter mapping or None, body); RecordError for invalid YAML."""
    match = _FENCE.match(text)
    if not match:
        return None, text
    if len(match.group(1)) > _MAX_FRONT_MATTER:
        raise RecordError(f"front matter longer than {_MAX_FRONT_MATTER} characters")
    import yaml  # only notes with front matter need it: a mail-only sync never loads it

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise RecordError(f"invalid YAML front matter: {_yaml_reason(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RecordError(f"invalid value in front matter: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecordError("front matter must be a mapping of keys to values")
    return data, text[match.end() :]


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 2}, column {mark.column + 1}"
    return str(problem)


def _validate(data: dict[str, Any]) -> FrontMatter:
    try:
        return FrontMatter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise RecordError(f"front matter key {key!r}: {message}") from None


def _as_datetime(value: datetime | dt.date | None, tz: tzinfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
    else:
        moment = datetime.combine(value, time(0, 0), tzinfo=tz)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise RecordError(f"front matter date {value} is out of range") from None
    return moment


def _title(meta: FrontMatter, body: str, fallback: str) -> str:
    if meta.title:
        return meta.title.strip()
    heading = _HEADING.search(body)
    return heading.group(1).strip() if heading else fallback


def parse_note(raw: bytes, *, name: str, tz: tzinfo) -> Note:
    """Parse a note revision; `name` (the file stem) is the fallback title, `tz` dates bare days."""
    text = decode_text(raw)
    data, body = split_front_matter(text)
    meta = _validate(data) if data is not None else FrontMatter()
    return Note(
        meta=meta,
        has_front_matter=data is not None,
        title=_title(meta, body, name),
        body=body.strip(),
        date=_as_datetime(meta.date, tz),
    )
