"""Contracts and flags as rows for people and scripts (pure: data in, dicts out)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from corrlog.model import Contract, Direction, Kind, Record
from corrlog.rules.flags import Flag

_WORK = (Direction.OUT, Direction.INTERNAL)


def last_update(contract: Contract, records: Iterable[Record], now: datetime) -> Record | None:
    """The contract's latest progress update at or before `now`."""
    updates = [
        r
        for r in records
        if r.contract == contract.id
        and r.kind is Kind.UPDATE
        and r.direction in _WORK
        and r.date <= now
    ]
    return max(updates, key=lambda r: r.date, default=None)


def contract_rows(
    contracts: Iterable[Contract],
    records: list[Record],
    flags: list[Flag],
    now: datetime,
    default_interval: timedelta,
) -> list[dict[str, Any]]:
    """One row per contract: the stable JSON shape of `corrlog contracts`."""
    rows = []
    for contract in sorted(contracts, key=lambda c: c.id):
        last = last_update(contract, records, now)
        interval = contract.interval or default_interval
        rows.append(
            {
                "id": contract.id,
                "client": contract.client,
                "title": contract.title,
                "status": contract.status.value,
                "interval_days": round(interval.total_seconds() / 86400, 2),
                "last_update": last.date.isoformat() if last else None,
                "days_since_update": (now - last.date).days if last else None,
                "open_flags": sorted({f.name.value for f in flags if f.contract == contract.id}),
            }
        )
    return rows


def flag_rows(flags: list[Flag], snoozed: dict[str, tuple[datetime, str]]) -> list[dict[str, Any]]:
    """One row per flag: the stable JSON shape of `corrlog flags`."""
    return [
        {
            "contract": f.contract,
            "flag": f.name.value,
            "milestone": f.milestone,
            "since": f.since.isoformat(),
            "detail": f.detail,
            "snoozed_until": snoozed[f.contract][0].isoformat() if f.contract in snoozed else None,
        }
        for f in flags
    ]
