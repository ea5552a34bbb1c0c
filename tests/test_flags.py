"""Payment-risk flags evaluated at fixed moments: every rule, both sides of every boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from corrlog.model import (
    Contract,
    ContractStatus,
    Direction,
    Escrow,
    Kind,
    Milestone,
    MilestoneStatus,
    Origin,
    Record,
    SourceKind,
)
from corrlog.rules.flags import (
    Flag,
    FlagName,
    FlagSettings,
    MilestoneEvent,
    find_flags,
)

SETTINGS = FlagSettings()
SECOND = timedelta(seconds=1)
START = date(2026, 11, 1)
START_AT = datetime(2026, 11, 1, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    """A UTC moment in late 2026."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def rec(
    when: datetime,
    kind: Kind = Kind.MESSAGE,
    direction: Direction = Direction.IN,
    *,
    contract: str | None = "c1",
    milestone: str | None = None,
    subject: str = "Hello",
) -> Record:
    """A record with only the fields the flag rules read filled in meaningfully."""
    rid = f"{contract}-{when.isoformat()}-{kind.value}-{direction.value}"
    return Record(
        id=rid,
        source=SourceKind.IMAP,
        kind=kind,
        direction=direction,
        date=when,
        subject=subject,
        sha256="0" * 64,
        origin=Origin(SourceKind.IMAP, "work", folder="INBOX", uidvalidity=1, uid=1),
        contract=contract,
        milestone=milestone,
    )


def update(
    when: datetime,
    subject: str = "Progress",
    *,
    contract: str | None = "c1",
    milestone: str | None = None,
) -> Record:
    """An outgoing progress update on c1 (or the given contract/milestone)."""
    return rec(
        when, Kind.UPDATE, Direction.OUT, contract=contract, milestone=milestone, subject=subject
    )


def contract(
    cid: str = "c1",
    *,
    start: date | None = START,
    interval: timedelta | None = None,
    status: ContractStatus = ContractStatus.ACTIVE,
    milestones: tuple[Milestone, ...] = (),
) -> Contract:
    """An active contract started on 2026-11-01 unless told otherwise."""
    return Contract(
        id=cid, client="acme", start=start, interval=interval, status=status, milestones=milestones
    )


def names(flags: list[Flag], name: FlagName | None = None) -> list[tuple[str, FlagName]]:
    """(contract, flag name) pairs, optionally only one kind."""
    return [(f.contract, f.name) for f in flags if name is None or f.name is name]


def only(flags: list[Flag], name: FlagName) -> Flag:
    """The single flag of one kind."""
    found = [f for f in flags if f.name is name]
    assert 1 == len(found), found
    return found[0]


def chatty(c: Contract, now: datetime) -> list[Record]:
    """Fresh incoming mail and a fresh update, so only the rule under test can fire."""
    return [rec(now, contract=c.id), update(now, contract=c.id)]


# --- stale -----------------------------------------------------------------------------------


def test_stale_exactly_at_interval_is_not_stale() -> None:
    """Exactly the interval after the last update there is no flag."""
    last = at(10, 9)
    c = contract(interval=timedelta(days=5))
    flags = find_flags([c], [update(last), rec(last)], last + timedelta(days=5), SETTINGS)
    assert [] == names(flags, FlagName.STALE)


def test_stale_one_second_after_interval() -> None:
    """One second past the interval the contract is stale, since the moment the interval ran out."""
    last = at(12, 9)
    c = contract(interval=timedelta(days=5))
    now = at(21, 10)
    flags = find_flags([c], [update(last, "Sprint 2 demo"), rec(now)], now, SETTINGS)
    flag = only(flags, FlagName.STALE)
    assert (
        Flag(
            "c1",
            FlagName.STALE,
            last + timedelta(days=5),
            "no progress update for 9 days; last: 'Sprint 2 demo' on 2026-11-12",
        )
        == flag
    )
    assert [] != find_flags([c], [update(last)], last + timedelta(days=5) + SECOND, SETTINGS)


def test_stale_uses_default_interval_without_contract_interval() -> None:
    """Without its own interval a contract uses the settings' default (7 days here)."""
    last = at(3)
    c = contract()
    assert [] == names(
        find_flags([c], [update(last)], last + timedelta(days=7), SETTINGS), FlagName.STALE
    )
    later = find_flags([c], [update(last)], last + timedelta(days=7) + SECOND, SETTINGS)
    assert [("c1", FlagName.STALE)] == names(later, FlagName.STALE)


def test_stale_from_contract_start_when_never_updated() -> None:
    """With no update ever, staleness runs from the start date at 00:00 UTC."""
    c = contract()
    deadline = START_AT + timedelta(days=7)
    assert [] == names(find_flags([c], [], deadline, SETTINGS), FlagName.STALE)
    flag = only(find_flags([c], [], deadline + SECOND, SETTINGS), FlagName.STALE)
    assert deadline == flag.since
    assert "no progress update since the contract started on 2026-11-01 (7 days)" == flag.detail


def test_no_flags_before_start() -> None:
    """A contract that has not started yet is neither stale nor silent."""
    c = contract(start=date(2026, 12, 1))
    assert [] == find_flags([c], [], at(30), SETTINGS)


def test_update_before_start_counts_from_start() -> None:
    """An update sent before the start does not make the contract stale early."""
    c = contract()
    early = update(at(28, month=10))
    assert [] == names(
        find_flags([c], [early], START_AT + timedelta(days=7), SETTINGS), FlagName.STALE
    )


@pytest.mark.parametrize(
    "noise",
    [
        rec(at(9), Kind.UPDATE, Direction.IN),
        rec(at(9), Kind.MESSAGE, Direction.OUT),
        rec(at(9), Kind.AGREEMENT, Direction.OUT),
        update(at(9), contract="c2"),
        update(at(9), contract=None),
    ],
    ids=["incoming-update", "outgoing-message", "agreement", "other-contract", "unlinked"],
)
def test_only_own_outgoing_updates_reset_staleness(noise: Record) -> None:
    """Incoming updates, other kinds, other contracts' and unlinked records do not count."""
    c = contract()
    flags = find_flags([c], [noise], at(9), SETTINGS)
    assert (
        "no progress update since the contract started on 2026-11-01 (8 days)"
        == only(flags, FlagName.STALE).detail
    )


def test_update_note_resets_staleness() -> None:
    """An internal update note counts as a progress update."""
    c = contract()
    note = rec(at(5), Kind.UPDATE, Direction.INTERNAL)
    assert [] == names(find_flags([c], [note], at(9), SETTINGS), FlagName.STALE)


def test_records_after_now_are_ignored() -> None:
    """Asking 'as of' a past moment does not see later records."""
    c = contract()
    flags = find_flags([c], [update(at(20))], at(9), SETTINGS)
    assert [("c1", FlagName.STALE)] == names(flags, FlagName.STALE)


def test_without_start_measured_from_first_record() -> None:
    """A contract with no start date is measured from its earliest record; with none, no flag."""
    c = contract(start=None)
    first = rec(at(2, 12), subject="Kickoff")
    flag = only(find_flags([c], [first], at(9, 12) + SECOND, SETTINGS), FlagName.STALE)
    assert at(9, 12) == flag.since
    assert (
        "no progress update since the contract's first record on 2026-11-02 (7 days)" == flag.detail
    )
    assert [] == find_flags([c], [], at(30), SETTINGS)


def test_short_interval_detail_in_hours() -> None:
    """An interval under a day is displayed in hours, not as 0 days."""
    c = contract(interval=timedelta(hours=12))
    flag = only(find_flags([c], [update(at(3)), rec(at(3))], at(3, 13), SETTINGS), FlagName.STALE)
    assert "no progress update for 13 hours; last: 'Progress' on 2026-11-03" == flag.detail


def test_timezones_and_naive_datetimes() -> None:
    """Aware records in other zones compare as instants; naive datetimes are taken as UTC."""
    c = contract(interval=timedelta(days=1))
    plus2 = timezone(timedelta(hours=2))
    last = datetime(2026, 11, 5, 2, 0, tzinfo=plus2)  # 2026-11-05 00:00 UTC
    records = [update(last), rec(last)]
    assert [] == find_flags([c], records, datetime(2026, 11, 6), SETTINGS)
    flag = only(find_flags([c], records, datetime(2026, 11, 6, 0, 0, 1), SETTINGS), FlagName.STALE)
    assert at(6) == flag.since


# --- client-silent --------------------------------------------------------------------------


def test_client_silent_boundary() -> None:
    """Silent exactly client_silence after the last incoming mail: no flag; one second more: flag."""
    c = contract(interval=timedelta(days=60))
    last = rec(at(3, 8), subject="Re: invoice")
    limit = at(17, 8)
    assert [] == find_flags([c], [last], limit, SETTINGS)
    flag = only(find_flags([c], [last], limit + SECOND, SETTINGS), FlagName.CLIENT_SILENT)
    assert (
        Flag(
            "c1",
            FlagName.CLIENT_SILENT,
            limit,
            "no message from the client for 14 days; last: 'Re: invoice' on 2026-11-03",
        )
        == flag
    )


def test_client_silent_from_start_and_outgoing_does_not_count() -> None:
    """Without incoming mail silence runs from the start; our own mail does not break it."""
    c = contract(interval=timedelta(days=60))
    ours = rec(at(10), Kind.MESSAGE, Direction.OUT)
    limit = START_AT + timedelta(days=14)
    assert [] == find_flags([c], [ours], limit, SETTINGS)
    flag = only(find_flags([c], [ours], limit + SECOND, SETTINGS), FlagName.CLIENT_SILENT)
    assert (
        "no message from the client since the contract started on 2026-11-01 (14 days)"
        == flag.detail
    )


def test_client_silence_setting() -> None:
    """client_silence comes from the settings."""
    c = contract(interval=timedelta(days=60))
    settings = FlagSettings(client_silence=timedelta(days=2))
    flags = find_flags([c], [rec(at(5))], at(7) + SECOND, settings)
    assert [("c1", FlagName.CLIENT_SILENT)] == names(flags)


# --- milestone-due / milestone-overdue ------------------------------------------------------


def due_contract(status: MilestoneStatus = MilestoneStatus.OPEN) -> Contract:
    """A contract with milestone m1 'Design' due 2026-11-10."""
    m1 = Milestone("m1", "Design", due=date(2026, 11, 10), status=status, escrow=Escrow.FUNDED)
    return contract(milestones=(m1,))


@pytest.mark.parametrize(
    ("now", "expected", "detail"),
    [
        (at(7), None, None),
        (
            at(7) + SECOND,
            FlagName.MILESTONE_DUE,
            "milestone 'Design' is due on 2026-11-10 (in 3 days)",
        ),
        (at(9, 12), FlagName.MILESTONE_DUE, "milestone 'Design' is due on 2026-11-10 (tomorrow)"),
        (
            at(10, 23, 59, 59),
            FlagName.MILESTONE_DUE,
            "milestone 'Design' is due on 2026-11-10 (today)",
        ),
        (at(11), FlagName.MILESTONE_DUE, "milestone 'Design' is due on 2026-11-10 (today)"),
        (
            at(11) + SECOND,
            FlagName.MILESTONE_OVERDUE,
            "milestone 'Design' was due on 2026-11-10 and is not submitted (1 day late)",
        ),
        (
            at(14, 9),
            FlagName.MILESTONE_OVERDUE,
            "milestone 'Design' was due on 2026-11-10 and is not submitted (4 days late)",
        ),
    ],
)
def test_milestone_due_and_overdue_boundaries(
    now: datetime, expected: FlagName | None, detail: str | None
) -> None:
    """Due from due_soon before the due date's 00:00 UTC; overdue once the whole due day has passed."""
    c = due_contract()
    flags = [
        f
        for f in find_flags([c], chatty(c, now), now, SETTINGS)
        if f.name in (FlagName.MILESTONE_DUE, FlagName.MILESTONE_OVERDUE)
    ]
    if expected is None:
        assert [] == flags
        return
    assert [(expected, "m1", detail)] == [(f.name, f.milestone, f.detail) for f in flags]
    assert {FlagName.MILESTONE_DUE: at(7), FlagName.MILESTONE_OVERDUE: at(11)}[expected] == flags[
        0
    ].since


@pytest.mark.parametrize(
    "status", [MilestoneStatus.SUBMITTED, MilestoneStatus.APPROVED, MilestoneStatus.PAID]
)
def test_submitted_milestone_is_never_due_or_overdue(status: MilestoneStatus) -> None:
    """Only open milestones are due or overdue."""
    c = due_contract(status)
    now = at(20)
    assert [] == find_flags([c], chatty(c, now), now, SETTINGS)


def test_milestone_without_due_date_is_never_due() -> None:
    """A milestone with no due date raises no due flags."""
    c = contract(milestones=(Milestone("m1", "Design", escrow=Escrow.FUNDED),))
    assert [] == find_flags([c], chatty(c, at(30)), at(30), SETTINGS)


# --- unfunded-work --------------------------------------------------------------------------


def funding_contract(escrow: Escrow, status: MilestoneStatus = MilestoneStatus.OPEN) -> Contract:
    """A contract whose milestone m2 'MVP' has the given escrow and status."""
    return contract(milestones=(Milestone("m2", "MVP", escrow=escrow, status=status),))


def test_unfunded_work_since_first_update() -> None:
    """Updates on an unfunded milestone flag it, since the first such update."""
    c = funding_contract(Escrow.UNFUNDED)
    work = [
        update(at(4), "MVP: login done", milestone="m2"),
        update(at(6), "MVP: search done", milestone="m2"),
        rec(at(6)),
    ]
    flag = only(find_flags([c], work, at(6, 1), SETTINGS), FlagName.UNFUNDED_WORK)
    assert (
        Flag(
            "c1",
            FlagName.UNFUNDED_WORK,
            at(4),
            "2 updates on milestone 'MVP' while its escrow is unfunded; first: 'MVP: login done' on 2026-11-04",
            "m2",
        )
        == flag
    )


@pytest.mark.parametrize(
    ("escrow", "status", "record"),
    [
        (Escrow.FUNDED, MilestoneStatus.OPEN, update(at(4), milestone="m2")),
        (Escrow.RELEASED, MilestoneStatus.OPEN, update(at(4), milestone="m2")),
        (Escrow.UNFUNDED, MilestoneStatus.PAID, update(at(4), milestone="m2")),
        (Escrow.UNFUNDED, MilestoneStatus.OPEN, update(at(4))),
        (Escrow.UNFUNDED, MilestoneStatus.OPEN, rec(at(4), Kind.UPDATE, milestone="m2")),
        (
            Escrow.UNFUNDED,
            MilestoneStatus.OPEN,
            rec(at(4), Kind.MESSAGE, Direction.OUT, milestone="m2"),
        ),
        (Escrow.UNFUNDED, MilestoneStatus.OPEN, update(at(4), milestone="m2", contract="c2")),
    ],
    ids=["funded", "released", "paid", "no-milestone", "incoming", "message", "other-contract"],
)
def test_no_unfunded_work(escrow: Escrow, status: MilestoneStatus, record: Record) -> None:
    """Funded escrow, paid milestones, and records not our updates on this milestone raise nothing."""
    c = funding_contract(escrow, status)
    flags = find_flags([c], [record, rec(at(6))], at(6, 1), SETTINGS)
    assert [] == names(flags, FlagName.UNFUNDED_WORK)


# --- awaiting-payment -----------------------------------------------------------------------


def waiting_contract(status: MilestoneStatus = MilestoneStatus.SUBMITTED) -> Contract:
    """A contract whose funded milestone m1 'Design' has the given status."""
    return contract(milestones=(Milestone("m1", "Design", escrow=Escrow.FUNDED, status=status),))


def event(status: MilestoneStatus, when: datetime) -> MilestoneEvent:
    """A status change of c1/m1."""
    return MilestoneEvent("c1", "m1", status, when)


@pytest.mark.parametrize("status", [MilestoneStatus.SUBMITTED, MilestoneStatus.APPROVED])
def test_awaiting_payment_boundary(status: MilestoneStatus) -> None:
    """Exactly payment_wait after submission: no flag; one second more: flagged since then."""
    c = waiting_contract(status)
    events = [event(MilestoneStatus.SUBMITTED, at(2, 10))]
    if status is MilestoneStatus.APPROVED:
        events.append(event(MilestoneStatus.APPROVED, at(5)))
    limit = at(16, 10)
    assert [] == find_flags([c], chatty(c, limit), limit, SETTINGS, events)
    now = limit + SECOND
    flag = only(find_flags([c], chatty(c, now), now, SETTINGS, events), FlagName.AWAITING_PAYMENT)
    assert (
        Flag(
            "c1",
            FlagName.AWAITING_PAYMENT,
            limit,
            f"milestone 'Design' is {status.value} but not paid after 14 days (waiting since 2026-11-02)",
            "m1",
        )
        == flag
    )


def test_no_awaiting_payment_without_a_known_submission() -> None:
    """A submitted milestone with no submission event is not flagged (no start time to measure)."""
    c = waiting_contract()
    assert [] == find_flags([c], chatty(c, at(30)), at(30), SETTINGS)


@pytest.mark.parametrize("status", [MilestoneStatus.OPEN, MilestoneStatus.PAID])
def test_no_awaiting_payment_unless_submitted_or_approved(status: MilestoneStatus) -> None:
    """Open and paid milestones never await payment, whatever the events say."""
    c = waiting_contract(status)
    events = [event(MilestoneStatus.SUBMITTED, at(2))]
    assert [] == names(find_flags([c], [], at(30), SETTINGS, events), FlagName.AWAITING_PAYMENT)


def test_resubmission_restarts_the_wait() -> None:
    """Submitted, reopened, submitted again: the wait runs from the second submission."""
    c = waiting_contract()
    events = [
        event(MilestoneStatus.SUBMITTED, at(1)),
        event(MilestoneStatus.OPEN, at(3)),
        event(MilestoneStatus.SUBMITTED, at(5)),
    ]
    assert [] == find_flags([c], chatty(c, at(19)), at(19), SETTINGS, events)
    flags = find_flags([c], chatty(c, at(19, 0, 0, 1)), at(19, 0, 0, 1), SETTINGS, events)
    assert at(19) == only(flags, FlagName.AWAITING_PAYMENT).since


def test_events_after_now_and_of_other_milestones_are_ignored() -> None:
    """Only this milestone's events up to `now` count."""
    c = waiting_contract()
    events = [
        MilestoneEvent("c1", "other", MilestoneStatus.SUBMITTED, at(1)),
        MilestoneEvent("c2", "m1", MilestoneStatus.SUBMITTED, at(1)),
        event(MilestoneStatus.SUBMITTED, at(25)),
    ]
    assert [] == find_flags([c], chatty(c, at(20)), at(20), SETTINGS, events)


def test_paid_event_stops_the_wait() -> None:
    """A paid event (before a stale contract status) ends the wait as of that moment."""
    c = waiting_contract()
    events = [event(MilestoneStatus.SUBMITTED, at(1)), event(MilestoneStatus.PAID, at(10))]
    assert [] == find_flags([c], chatty(c, at(25)), at(25), SETTINGS, events)


# --- contract status, order, keys, settings -------------------------------------------------


@pytest.mark.parametrize(
    "status", [ContractStatus.PAUSED, ContractStatus.COMPLETED, ContractStatus.CANCELLED]
)
def test_inactive_contracts_never_flag(status: ContractStatus) -> None:
    """Paused, completed and cancelled contracts raise nothing, however risky they look."""
    milestones = (
        Milestone("m1", "Design", due=date(2026, 11, 5), escrow=Escrow.UNFUNDED),
        Milestone("m2", "MVP", escrow=Escrow.FUNDED, status=MilestoneStatus.SUBMITTED),
    )
    c = contract(status=status, milestones=milestones)
    records = [update(at(2), milestone="m1")]
    events = [MilestoneEvent("c1", "m2", MilestoneStatus.SUBMITTED, at(2))]
    assert [] == find_flags([c], records, at(30, month=12), SETTINGS, events)


def test_flags_sorted_by_urgency_then_contract() -> None:
    """Overdue, awaiting-payment, stale, client-silent, unfunded-work, due; then by contract id."""
    m_over = Milestone("late", "Late", due=date(2026, 11, 20), escrow=Escrow.FUNDED)
    m_due = Milestone("soon", "Soon", due=date(2026, 12, 1), escrow=Escrow.FUNDED)
    m_unpaid = Milestone("sub", "Sub", escrow=Escrow.FUNDED, status=MilestoneStatus.SUBMITTED)
    m_unfunded = Milestone("uf", "Unfunded")
    b = contract("b", milestones=(m_due, m_unfunded, m_over, m_unpaid))
    a = contract("a", milestones=(m_over,))
    now = at(29)
    records = [update(at(3), contract="b", milestone="uf")]
    events = [MilestoneEvent("b", "sub", MilestoneStatus.SUBMITTED, at(2))]
    flags = find_flags([b, a], records, now, SETTINGS, events)
    assert [
        ("a", FlagName.MILESTONE_OVERDUE),
        ("b", FlagName.MILESTONE_OVERDUE),
        ("b", FlagName.AWAITING_PAYMENT),
        ("a", FlagName.STALE),
        ("b", FlagName.STALE),
        ("a", FlagName.CLIENT_SILENT),
        ("b", FlagName.CLIENT_SILENT),
        ("b", FlagName.UNFUNDED_WORK),
        ("b", FlagName.MILESTONE_DUE),
    ] == names(flags)


def test_flag_key() -> None:
    """A flag's key is (contract, name, milestone), independent of since and detail."""
    one = Flag("c1", FlagName.MILESTONE_DUE, at(1), "x", "m1")
    two = Flag("c1", FlagName.MILESTONE_DUE, at(2), "y", "m1")
    assert ("c1", FlagName.MILESTONE_DUE, "m1") == one.key == two.key


@pytest.mark.parametrize(
    "setting", ["default_interval", "client_silence", "payment_wait", "due_soon"]
)
def test_settings_reject_non_positive_durations(setting: str) -> None:
    """A zero duration in the settings is a ValueError naming the setting."""
    with pytest.raises(ValueError, match=setting):
        FlagSettings(**{setting: timedelta(0)})


def test_flag_names_are_the_documented_strings() -> None:
    """Flag names render as the strings the CLI and JSON use."""
    assert [
        "stale",
        "client-silent",
        "milestone-due",
        "milestone-overdue",
        "unfunded-work",
        "awaiting-payment",
    ] == [n.value for n in FlagName]


# --- a scenario over several moments --------------------------------------------------------


def test_scenario_over_several_weeks() -> None:
    """Two contracts over six weeks: stale, cleared by an update, silent, due, overdue, paused."""
    design = Milestone("m1", "Design", due=date(2026, 11, 20), escrow=Escrow.FUNDED)
    web = contract("web", interval=timedelta(days=7), milestones=(design,))
    paused = contract("old", status=ContractStatus.PAUSED)
    records = [
        rec(at(2, 9), contract="web", subject="Kickoff"),
        update(at(6, 17), "Week 1 progress", contract="web"),
        update(at(6, 17), contract="old"),
        rec(at(12, 9), contract="web", subject="Re: Week 1 progress"),
        update(at(19, 10), "Design round 1", contract="web"),
        rec(at(27, 9), contract="web", subject="Re: Design round 1"),
        update(at(4, 11, month=12), "Design final", contract="web"),
    ]

    def flags_at(now: datetime) -> list[tuple[str, FlagName]]:
        return names(find_flags([web, paused], records, now, SETTINGS))

    assert [] == flags_at(at(10))
    assert [("web", FlagName.STALE)] == flags_at(at(14))
    assert [("web", FlagName.MILESTONE_DUE)] == flags_at(at(19, 12))
    assert [
        ("web", FlagName.MILESTONE_OVERDUE),
        ("web", FlagName.STALE),
    ] == flags_at(at(27, 12))
    assert [
        ("web", FlagName.MILESTONE_OVERDUE),
        ("web", FlagName.CLIENT_SILENT),
    ] == flags_at(at(11, 10, month=12))
    stale = only(find_flags([web, paused], records, at(14), SETTINGS), FlagName.STALE)
    assert at(13, 17) == stale.since
    assert "no progress update for 7 days; last: 'Week 1 progress' on 2026-11-06" == stale.detail
