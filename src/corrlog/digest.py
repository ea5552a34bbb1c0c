"""The weekly digest as data: where every active contract stands, built by a pure function."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from corrlog.model import (
    Contract,
    ContractStatus,
    Direction,
    Kind,
    Milestone,
    MilestoneStatus,
    Record,
    SourceKind,
)
from corrlog.overview import last_update
from corrlog.rules.flags import Flag, FlagSettings, MilestoneEvent, find_flags

# Decisions where the issue is silent:
# - A week runs from Monday 00:00 to the next Monday 00:00 in the user's time zone.
# - The digest describes the state at the end of the week, or at `now` when the week is not
#   over yet ("as of"): flags, last update and due milestones are evaluated then, and nothing
#   dated after it counts. A digest of an old week therefore shows that week, not today.
# - "Progress updates" are records of kind update written by the freelancer (mail out or a
#   note), the same rule the stale flag and `corrlog contracts` use.
# - Unlinked correspondence is what arrived from a known client during the week but could not
#   be filed under one contract; the totals count every such item, of any week.
# - Milestones awaiting payment are those submitted or approved; amounts without a currency
#   are summed under "unspecified".

DUE_HORIZON = timedelta(days=14)
CHART_WEEKS = 8
NO_CURRENCY = "unspecified"
_WORK = (Direction.OUT, Direction.INTERNAL)
_WAITING = (MilestoneStatus.SUBMITTED, MilestoneStatus.APPROVED)
_WEEK = re.compile(r"(\d{4})-W(\d{1,2})", re.IGNORECASE)


@dataclass(frozen=True, slots=True, order=True)
class Week:
    """An ISO week: Monday to Sunday, numbered as in `2026-W48`."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """Read `2026-W48`; ValueError saying how to write it."""
        match = _WEEK.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"cannot read week {text!r}; write it like 2026-W48")
        year, number = int(match[1]), int(match[2])
        last = date(year, 12, 28).isocalendar().week
        if not 1 <= number <= last:
            raise ValueError(f"{text!r} is not a week: {year} has weeks 1 to {last}")
        return cls(year, number)

    @classmethod
    def of(cls, day: date) -> Week:
        """The ISO week a day falls in."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_complete(cls, now: datetime, tz: tzinfo) -> Week:
        """The last ISO week that ended before `now`, in time zone `tz`."""
        return cls.of(now.astimezone(tz).date()).shift(-1)

    @property
    def label(self) -> str:
        """The week as written on the command line: `2026-W48`."""
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        """The first day of the week."""
        return date.fromisocalendar(self.year, self.number, 1)

    def shift(self, weeks: int) -> Week:
        """The week `weeks` later (earlier when negative)."""
        return Week.of(self.monday + timedelta(weeks=weeks))

    def start(self, tz: tzinfo) -> datetime:
        """Monday 00:00 in `tz`."""
        return datetime.combine(self.monday, time(0), tzinfo=tz)

    def end(self, tz: tzinfo) -> datetime:
        """The next Monday 00:00 in `tz` (exclusive)."""
        return datetime.combine(self.monday + timedelta(days=7), time(0), tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Archived:
    """One item archived for the first time: when, and from which kind of source."""

    at: datetime
    source: SourceKind


@dataclass(frozen=True, slots=True)
class FlagLine:
    """An open flag with the client it concerns and, when snoozed, until when."""

    flag: Flag
    client: str
    snoozed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class MilestoneLine:
    """A milestone as the digest shows it; `waiting_since` only for those awaiting payment."""

    milestone: Milestone
    waiting_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContractDigest:
    """One active contract's week."""

    contract: Contract
    interval: timedelta
    last_update: Record | None
    days_since_update: int | None
    updates: tuple[Record, ...]
    agreements: tuple[Record, ...]
    flags: tuple[FlagLine, ...]
    milestones_due: tuple[MilestoneLine, ...]
    awaiting_payment: tuple[MilestoneLine, ...]
    activity: tuple[tuple[Week, int], ...]


@dataclass(frozen=True, slots=True)
class Totals:
    """The week in numbers."""

    archived: Mapping[SourceKind, int]
    contracts_active: int
    open_flags: int
    unlinked: int
    awaiting_payment: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a rendered digest shows, in display order."""

    week: Week
    start: datetime
    end: datetime
    as_of: datetime
    contracts: tuple[ContractDigest, ...]
    flags: tuple[FlagLine, ...]
    unlinked: tuple[Record, ...]
    totals: Totals


def source_of(origin: str | None) -> SourceKind | None:
    """The kind of source a ledger origin key names (`notes:…`, `imap:…`, `maildir:…`)."""
    prefix = (origin or "").split(":", 1)[0]
    try:
        return SourceKind(prefix)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Window:
    """The week being reported on and the moment it is seen from."""

    week: Week
    start: datetime
    as_of: datetime
    tz: tzinfo


def build_digest(
    contracts: Iterable[Contract],
    records: Sequence[Record],
    archived: Iterable[Archived],
    week: Week,
    now: datetime,
    *,
    tz: tzinfo,
    settings: FlagSettings,
    milestone_events: Sequence[MilestoneEvent] = (),
    snoozed: Mapping[str, datetime] | None = None,
) -> Digest:
    """The digest of `week` as of min(end of week, now); `records` are linked and unlinked ones."""
    start, end = week.start(tz), week.end(tz)
    window = _Window(week, start, min(_aware(now), end), tz)
    known = [r for r in records if _aware(r.date) <= window.as_of]
    active = sorted((c for c in contracts if c.status is ContractStatus.ACTIVE), key=lambda c: c.id)
    clients = {c.id: c.client for c in active}
    still_snoozed = {
        c: until for c, until in (snoozed or {}).items() if _aware(until) > window.as_of
    }
    flags = tuple(
        FlagLine(f, clients.get(f.contract, ""), still_snoozed.get(f.contract))
        for f in find_flags(active, known, window.as_of, settings, milestone_events)
    )
    sections = tuple(
        _contract_digest(
            c,
            [r for r in known if r.contract == c.id],
            [f for f in flags if f.flag.contract == c.id],
            [e for e in milestone_events if e.contract == c.id],
            window,
            c.interval or settings.default_interval,
        )
        for c in active
    )
    unlinked_all = [r for r in known if r.client and not r.contract]
    unlinked = tuple(sorted((r for r in unlinked_all if start <= _aware(r.date)), key=_by_date))
    totals = Totals(
        archived=_archived_counts(archived, start, end),
        contracts_active=len(active),
        open_flags=len(flags),
        unlinked=len(unlinked_all),
        awaiting_payment=_money(m.milestone for s in sections for m in s.awaiting_payment),
    )
    return Digest(week, start, end, window.as_of, sections, flags, unlinked, totals)


def _contract_digest(
    contract: Contract,
    records: list[Record],
    flags: list[FlagLine],
    events: list[MilestoneEvent],
    window: _Window,
    interval: timedelta,
) -> ContractDigest:
    mine = sorted(records, key=_by_date)
    this_week = [r for r in mine if window.start <= _aware(r.date)]
    last = last_update(contract, mine, window.as_of)
    today = window.as_of.astimezone(window.tz).date()
    return ContractDigest(
        contract=contract,
        interval=interval,
        last_update=last,
        days_since_update=(window.as_of - _aware(last.date)).days if last else None,
        updates=tuple(r for r in this_week if _is_update(r)),
        agreements=tuple(r for r in this_week if r.kind is Kind.AGREEMENT),
        flags=tuple(flags),
        milestones_due=tuple(
            MilestoneLine(m)
            for m in sorted(contract.milestones, key=lambda m: (m.due or date.max, m.id))
            if m.status is MilestoneStatus.OPEN
            and m.due is not None
            and today <= m.due <= today + DUE_HORIZON
        ),
        awaiting_payment=tuple(
            MilestoneLine(m, _waiting_since(m, events, window.as_of))
            for m in contract.milestones
            if m.status in _WAITING
        ),
        activity=_activity([r for r in mine if _is_update(r)], window.week, window.tz),
    )


def _is_update(record: Record) -> bool:
    return record.kind is Kind.UPDATE and record.direction in _WORK


def _activity(updates: list[Record], week: Week, tz: tzinfo) -> tuple[tuple[Week, int], ...]:
    """Progress updates per week over the `CHART_WEEKS` weeks ending with `week`."""
    weeks = [week.shift(offset) for offset in range(1 - CHART_WEEKS, 1)]
    counts = Counter(Week.of(_aware(r.date).astimezone(tz).date()) for r in updates)
    return tuple((w, counts[w]) for w in weeks)


def _waiting_since(
    milestone: Milestone, events: list[MilestoneEvent], as_of: datetime
) -> datetime | None:
    """When the milestone last left `open` for submitted/approved (events), else its status date."""
    since: datetime | None = None
    history = sorted(
        (e for e in events if e.milestone == milestone.id and _aware(e.at) <= as_of),
        key=lambda e: _aware(e.at),
    )
    for event in history:
        since = (since or _aware(event.at)) if event.status in _WAITING else None
    if since is None and milestone.status_since is not None:
        return datetime.combine(milestone.status_since, time(0), tzinfo=UTC)
    return since


def _archived_counts(
    archived: Iterable[Archived], start: datetime, end: datetime
) -> dict[SourceKind, int]:
    counts = dict.fromkeys(SourceKind, 0)
    for item in archived:
        if start <= _aware(item.at) < end:
            counts[item.source] += 1
    return counts


def _money(milestones: Iterable[Milestone]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for milestone in milestones:
        if milestone.amount is not None:
            currency = milestone.currency or NO_CURRENCY
            totals[currency] = round(totals.get(currency, 0.0) + milestone.amount, 2)
    return dict(sorted(totals.items()))


def _by_date(record: Record) -> tuple[datetime, str]:
    return (_aware(record.date), record.id)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
