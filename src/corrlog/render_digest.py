"""Digest printers: Markdown for a terminal, self-contained HTML for a browser or mail, JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from typing import Any

from corrlog.digest import (
    CHART_WEEKS,
    ContractDigest,
    Digest,
    FlagLine,
    MilestoneLine,
    Totals,
    Week,
)
from corrlog.model import Record
from corrlog.output import clean

# Blocks every request a page could make (scripts, images from the net, fonts, frames):
# the digest and the timeline are self-contained, so a violation is a bug and shows up
# as a console error in the browser test.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
body{margin:0;background:#f4f5f7;color:#1f2328;font:15px/1.45 -apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
.page{max-width:860px;margin:0 auto;padding:24px 20px;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px;padding-top:12px;border-top:2px solid #e5e7eb}
h3{font-size:14px;margin:14px 0 4px;color:#57606a}
.meta{color:#57606a;margin:0 0 12px}
.client{color:#57606a;font-weight:normal}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #e5e7eb}
th{font-size:13px;color:#57606a;font-weight:600;width:14em}
td.num{text-align:right;white-space:nowrap;width:9em}
td.date,span.date{white-space:nowrap;color:#57606a}
td.date{width:7em}
td.key{white-space:nowrap;width:9em}
.flag{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600;
white-space:nowrap;background:#fff1e5;color:#9a3412;border:1px solid #fdba74}
.flag.urgent{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.none{color:#8c959f}
.chart{margin:6px 0 2px}
.item{margin:14px 0;padding:6px 12px;border-left:4px solid #d0d7de}
.item.agreement{background:#fff8c5;border-left-color:#d4a72c}
.item h3{font-size:15px;color:#1f2328;margin:4px 0}
.item p{margin:2px 0}
.event{margin:10px 0;padding:4px 12px;border-left:4px solid #8250df;color:#1f2328}
pre{white-space:pre-wrap;word-wrap:break-word;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;
margin:6px 0;background:#f6f8fa;padding:6px 8px;border-radius:4px}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
"""
_URGENT = ("milestone-overdue", "awaiting-payment")


def esc(value: object) -> str:
    """Text made safe for HTML content and attribute values (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document: inline CSS, no scripts, no external requests."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body>\n<div class="page">\n{body}\n</div>\n</body>\n</html>\n'
    )


# shared formatting ----------------------------------------------------------------------------


def local(moment: datetime, tz: tzinfo | None) -> datetime:
    """A moment in the digest's time zone."""
    return moment.astimezone(tz)


def day_text(moment: datetime, tz: tzinfo | None) -> str:
    """`2026-11-24`."""
    return local(moment, tz).strftime("%Y-%m-%d")


def time_text(moment: datetime, tz: tzinfo | None) -> str:
    """`2026-11-24 10:00`."""
    return local(moment, tz).strftime("%Y-%m-%d %H:%M")


def money_text(amount: float | None, currency: str | None) -> str:
    """`EUR 1,500.00`, or an empty string without an amount."""
    if amount is None:
        return ""
    return f"{currency or ''} {amount:,.2f}".strip()


def span_text(delta: timedelta) -> str:
    """A duration in days, or hours under a day."""
    if delta >= timedelta(days=1) and delta % timedelta(days=1) == timedelta(0):
        days = delta.days
        return f"{days} day{'s' if days != 1 else ''}"
    hours = round(delta.total_seconds() / 3600, 1)
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def _one_line(text: str) -> str:
    return clean(" ".join(text.split()))


def _tz(digest: Digest) -> tzinfo | None:
    return digest.start.tzinfo


def _period(digest: Digest) -> str:
    tz = _tz(digest)
    last_day = digest.end - timedelta(days=1)
    return f"{day_text(digest.start, tz)} to {day_text(last_day, tz)}"


def _since_text(section: ContractDigest, tz: tzinfo | None) -> str:
    if section.last_update is None:
        return "never"
    days = section.days_since_update
    ago = "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"
    return f"{day_text(section.last_update.date, tz)} ({ago})"


def _milestone_text(line: MilestoneLine, tz: tzinfo | None, *, due: bool) -> str:
    m = line.milestone
    parts = [m.name, money_text(m.amount, m.currency)]
    if due:
        parts.append(f"due {m.due}, escrow {m.escrow.value}")
    else:
        waiting = f" since {day_text(line.waiting_since, tz)}" if line.waiting_since else ""
        parts.append(f"{m.status.value}{waiting}")
    return " - ".join(p for p in parts if p)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _counts(totals: Totals) -> str:
    return (
        f"{_plural(totals.contracts_active, 'active contract')}, "
        f"{_plural(totals.open_flags, 'open flag')}"
    )


def _money_total(totals: Mapping[str, float]) -> str:
    return ", ".join(money_text(v, k) for k, v in totals.items()) or "nothing"


def _flag_text(line: FlagLine, tz: tzinfo | None) -> str:
    snoozed = f" (snoozed until {time_text(line.snoozed_until, tz)})" if line.snoozed_until else ""
    return f"{line.flag.detail}{snoozed}"


# JSON -----------------------------------------------------------------------------------------


def digest_json(digest: Digest) -> dict[str, Any]:
    """The stable JSON shape of the digest (documented in the README); keys are only added."""
    tz = _tz(digest)

    def when(moment: datetime | None) -> str | None:
        return local(moment, tz).isoformat() if moment else None

    def item(record: Record) -> dict[str, Any]:
        return {
            "id": record.id,
            "date": when(record.date),
            "subject": record.subject,
            "kind": record.kind.value,
            "direction": record.direction.value,
            "source": record.source.value,
            "client": record.client,
            "contract": record.contract,
            "milestone": record.milestone,
        }

    def milestone(line: MilestoneLine) -> dict[str, Any]:
        m = line.milestone
        return {
            "id": m.id,
            "name": m.name,
            "amount": m.amount,
            "currency": m.currency,
            "due": m.due.isoformat() if m.due else None,
            "escrow": m.escrow.value,
            "status": m.status.value,
            "waiting_since": when(line.waiting_since),
        }

    def flag(line: FlagLine) -> dict[str, Any]:
        f = line.flag
        return {
            "contract": f.contract,
            "client": line.client,
            "flag": f.name.value,
            "milestone": f.milestone,
            "since": when(f.since),
            "detail": f.detail,
            "snoozed_until": when(line.snoozed_until),
        }

    def contract(section: ContractDigest) -> dict[str, Any]:
        c = section.contract
        return {
            "id": c.id,
            "client": c.client,
            "title": c.title,
            "interval_days": round(section.interval.total_seconds() / 86400, 2),
            "last_update": when(section.last_update.date) if section.last_update else None,
            "days_since_update": section.days_since_update,
            "updates_this_week": [item(r) for r in section.updates],
            "agreements_this_week": [item(r) for r in section.agreements],
            "open_flags": [flag(f) for f in section.flags],
            "milestones_due": [milestone(m) for m in section.milestones_due],
            "awaiting_payment": [milestone(m) for m in section.awaiting_payment],
            "activity": [{"week": w.label, "updates": n} for w, n in section.activity],
        }

    totals = digest.totals
    return {
        "week": digest.week.label,
        "period": {
            "start": when(digest.start),
            "end": when(digest.end),
            "as_of": when(digest.as_of),
        },
        "contracts": [contract(s) for s in digest.contracts],
        "flags": [flag(f) for f in digest.flags],
        "unlinked": [item(r) for r in digest.unlinked],
        "totals": {
            "archived_this_week": {k.value: v for k, v in totals.archived.items()},
            "contracts_active": totals.contracts_active,
            "open_flags": totals.open_flags,
            "unlinked": totals.unlinked,
            "awaiting_payment": dict(totals.awaiting_payment),
        },
    }


def render_json(digest: Digest) -> str:
    """The digest as one JSON object."""
    return json.dumps(digest_json(digest), ensure_ascii=False, indent=2)


# Markdown -------------------------------------------------------------------------------------


def render_markdown(digest: Digest) -> str:
    """The digest as Markdown, readable as plain text (also the text part of the email)."""
    tz = _tz(digest)
    totals = digest.totals
    lines = [
        f"# corrlog weekly digest {digest.week.label}",
        "",
        f"Week {_period(digest)}, as of {time_text(digest.as_of, tz)}: "
        f"{_counts(totals)}, "
        f"awaiting payment: {_money_total(totals.awaiting_payment)}.",
    ]
    for section in digest.contracts:
        lines += ["", *_md_contract(section, tz)]
    lines += ["", "## Open flags, most urgent first", ""]
    lines += [
        f"{n}. {line.flag.contract} - {line.flag.name.value}: {_one_line(_flag_text(line, tz))}"
        for n, line in enumerate(digest.flags, 1)
    ] or ["No open flags."]
    lines += ["", "## Unlinked correspondence from known clients", ""]
    lines += [
        f"- {day_text(r.date, tz)} {_one_line(r.client or '')}: {_one_line(r.subject)} "
        f"(id {r.id}; file it with `corrlog link {r.id} CONTRACT`)"
        for r in digest.unlinked
    ] or ["None this week."]
    archived = ", ".join(f"{k.value} {v}" for k, v in totals.archived.items())
    lines += [
        "",
        "## Totals",
        "",
        f"- Items archived this week: {sum(totals.archived.values())} ({archived})",
        f"- Active contracts: {totals.contracts_active}",
        f"- Open flags: {totals.open_flags}",
        f"- Unlinked items from known clients (all weeks): {totals.unlinked}",
        f"- Awaiting payment: {_money_total(totals.awaiting_payment)}",
    ]
    return "\n".join(lines) + "\n"


def _md_contract(section: ContractDigest, tz: tzinfo | None) -> list[str]:
    c = section.contract
    lines = [f"## {c.id} - {_one_line(c.client)}"]
    if c.title:
        lines += ["", _one_line(c.title)]
    lines += [
        "",
        f"- Update interval: {span_text(section.interval)}; last progress update: "
        f"{_since_text(section, tz)}",
    ]
    groups: list[tuple[str, list[str]]] = [
        (
            "Open flags",
            [f"{f.flag.name.value}: {_one_line(_flag_text(f, tz))}" for f in section.flags],
        ),
        ("Agreements this week", [_md_item(r, tz) for r in section.agreements]),
        ("Updates this week", [_md_item(r, tz) for r in section.updates]),
        (
            "Milestones due in the next 14 days",
            [_one_line(_milestone_text(m, tz, due=True)) for m in section.milestones_due],
        ),
        (
            "Awaiting payment",
            [_one_line(_milestone_text(m, tz, due=False)) for m in section.awaiting_payment],
        ),
    ]
    for title, entries in groups:
        lines.append(f"- {title}:" if entries else f"- {title}: none")
        lines += [f"  - {entry}" for entry in entries]
    first, last = section.activity[0][0], section.activity[-1][0]
    counts = " ".join(str(n) for _w, n in section.activity)
    lines.append(f"- Progress updates per week, {first.label} to {last.label}: {counts}")
    return lines


def _md_item(record: Record, tz: tzinfo | None) -> str:
    return f"{day_text(record.date, tz)} {_one_line(record.subject)}"


# HTML -----------------------------------------------------------------------------------------


def render_html(digest: Digest) -> str:
    """The digest as one self-contained HTML page (inline CSS and SVG, everything escaped)."""
    tz = _tz(digest)
    totals = digest.totals
    parts = [
        f"<h1>corrlog weekly digest {esc(digest.week.label)}</h1>",
        f'<p class="meta">Week {esc(_period(digest))}, as of {esc(time_text(digest.as_of, tz))}. '
        f"{esc(_counts(totals))}, "
        f"awaiting payment: {esc(_money_total(totals.awaiting_payment))}.</p>",
    ]
    parts += [_html_contract(section, tz) for section in digest.contracts]
    parts.append("<h2>Open flags, most urgent first</h2>")
    parts.append(_html_flags(digest.flags, tz, with_contract=True))
    parts.append("<h2>Unlinked correspondence from known clients</h2>")
    parts.append(_html_unlinked(digest.unlinked, tz))
    parts.append("<h2>Totals</h2>")
    parts.append(_html_totals(digest))
    return page(f"corrlog digest {digest.week.label}", "\n".join(parts))


def _html_contract(section: ContractDigest, tz: tzinfo | None) -> str:
    c = section.contract
    title = f"<p>{esc(c.title)}</p>" if c.title else ""
    return "\n".join(
        [
            "<section>",
            f'<h2>{esc(c.id)} <span class="client">{esc(c.client)}</span></h2>',
            title,
            "<table><tbody>",
            f"<tr><th>Update interval</th><td>{esc(span_text(section.interval))}</td></tr>",
            f"<tr><th>Last progress update</th><td>{esc(_since_text(section, tz))}</td></tr>",
            "</tbody></table>",
            _activity_chart(section.activity),
            "<h3>Open flags</h3>",
            _html_flags(section.flags, tz, with_contract=False),
            "<h3>Agreements this week</h3>",
            _html_items(section.agreements, tz),
            "<h3>Updates this week</h3>",
            _html_items(section.updates, tz),
            "<h3>Milestones due in the next 14 days</h3>",
            _html_milestones(section.milestones_due, tz, due=True),
            "<h3>Awaiting payment</h3>",
            _html_milestones(section.awaiting_payment, tz, due=False),
            "</section>",
        ]
    )


def _none(text: str = "none") -> str:
    return f'<p class="none">{esc(text)}</p>'


def _html_items(records: Iterable[Record], tz: tzinfo | None) -> str:
    rows = [
        f'<tr><td class="date">{esc(day_text(r.date, tz))}</td><td>{esc(r.subject)}</td></tr>'
        for r in records
    ]
    return f"<table><tbody>{''.join(rows)}</tbody></table>" if rows else _none()


def _flag_badge(name: str) -> str:
    urgent = " urgent" if name in _URGENT else ""
    return f'<span class="flag{urgent}">{esc(name)}</span>'


def _html_flags(lines: Iterable[FlagLine], tz: tzinfo | None, *, with_contract: bool) -> str:
    rows = []
    for line in lines:
        who = f'<td class="key">{esc(line.flag.contract)}</td>' if with_contract else ""
        rows.append(
            f'<tr>{who}<td class="key">{_flag_badge(line.flag.name.value)}</td>'
            f"<td>{esc(_flag_text(line, tz))}</td></tr>"
        )
    if not rows:
        return _none("no open flags")
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def _html_milestones(lines: Iterable[MilestoneLine], tz: tzinfo | None, *, due: bool) -> str:
    rows = []
    for line in lines:
        m = line.milestone
        if due:
            tail = f"due {m.due}, escrow {m.escrow.value}"
        else:
            since = f" since {day_text(line.waiting_since, tz)}" if line.waiting_since else ""
            tail = f"{m.status.value}{since}"
        rows.append(
            f'<tr><td>{esc(m.name)}</td><td class="num">{esc(money_text(m.amount, m.currency))}'
            f"</td><td>{esc(tail)}</td></tr>"
        )
    return f"<table><tbody>{''.join(rows)}</tbody></table>" if rows else _none()


def _html_unlinked(records: Iterable[Record], tz: tzinfo | None) -> str:
    rows = [
        f'<tr><td class="date">{esc(day_text(r.date, tz))}</td><td>{esc(r.client or "")}</td>'
        f"<td>{esc(r.subject)}</td><td><code>{esc(r.id)}</code></td></tr>"
        for r in records
    ]
    if not rows:
        return _none("none this week")
    head = "<tr><th>Date</th><th>Client</th><th>Subject</th><th>Id</th></tr>"
    note = '<p class="meta">File an item with <code>corrlog link ID CONTRACT</code>.</p>'
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _html_totals(digest: Digest) -> str:
    totals = digest.totals
    archived = ", ".join(f"{k.value} {v}" for k, v in totals.archived.items())
    rows = [
        ("Items archived this week", f"{sum(totals.archived.values())} ({archived})"),
        ("Active contracts", str(totals.contracts_active)),
        ("Open flags", str(totals.open_flags)),
        ("Unlinked items from known clients (all weeks)", str(totals.unlinked)),
        ("Awaiting payment", _money_total(totals.awaiting_payment)),
    ]
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="totals"><tbody>{body}</tbody></table>'


def _activity_chart(activity: tuple[tuple[Week, int], ...]) -> str:
    """Progress updates per week as a small inline SVG bar chart (with a text equivalent)."""
    bar, gap, top, plot = 22, 8, 14, 44
    width = len(activity) * (bar + gap) + gap
    height = top + plot + 16
    peak = max((n for _w, n in activity), default=0) or 1
    summary = "Progress updates per week: " + ", ".join(f"{w.label} {n}" for w, n in activity)
    shapes = []
    for index, (week, count) in enumerate(activity):
        x = gap + index * (bar + gap)
        h = max(round(plot * count / peak), 2 if count else 1)
        y = top + plot - h
        colour = "#2563eb" if count else "#d0d7de"
        shapes.append(f'<rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="{colour}"/>')
        middle = x + bar // 2
        shapes.append(
            f'<text x="{middle}" y="{y - 3}" font-size="10" text-anchor="middle" '
            f'fill="#1f2328">{count}</text>'
        )
        shapes.append(
            f'<text x="{middle}" y="{height - 3}" font-size="10" text-anchor="middle" '
            f'fill="#57606a">W{week.number:02d}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(summary)}"><title>{esc(summary)}</title>{"".join(shapes)}</svg>'
    )
    caption = f"Progress updates per week, last {CHART_WEEKS} weeks"
    return f'<h3>{esc(caption)}</h3>\n<div class="chart">{svg}</div>'


# email ----------------------------------------------------------------------------------------


def digest_message(digest: Digest) -> EmailMessage:
    """The digest as a mail: the HTML page with the Markdown as its plain-text alternative."""
    flags = digest.totals.open_flags
    message = EmailMessage()
    message["Subject"] = (
        f"[corrlog] weekly digest {digest.week.label}: {flags} open flag{'s' if flags != 1 else ''}"
    )
    message.set_content(render_markdown(digest))
    message.add_alternative(render_html(digest), subtype="html")
    return message
