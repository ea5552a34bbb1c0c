"""Report commands: the weekly digest (`corrlog digest`) and the evidence pack (`corrlog export`)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click

from corrlog.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from corrlog.cli import App
    from corrlog.datadir import Session
    from corrlog.digest import Archived, Digest, Week
    from corrlog.model import Record

# corrlog.cli imports this module at its end to register the commands, so names from it are
# imported inside the functions; the App arrives through click's context object.


@click.command()
@click.option("--week", metavar="YYYY-Www", help="ISO week (default: the last complete week).")
@click.option("--now", metavar="ISO", help="Build the digest as of this time (default: now).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
)
@click.option("--out", metavar="FILE", help="Write to FILE instead of standard output.")
@click.option(
    "--send",
    is_flag=True,
    help="Mail it (HTML with a plain-text part) through the [notify.email] SMTP settings.",
)
@click.pass_obj
def digest_command(
    app: App, week: str | None, now: str | None, fmt: str, out: str | None, send: bool
) -> None:
    """Weekly digest: where every active contract stands, open flags, unlinked mail, totals.

    Per contract: last progress update, agreements and updates of the week,
    open flags, milestones due in the next 14 days, milestones awaiting
    payment and updates per week over the last 8 weeks. Weeks run Monday to
    Sunday in your time zone; the digest shows the state at the end of the week.

    \b
    Examples:
      corrlog digest
      corrlog digest --week 2026-W48 --format html --out digest.html
      corrlog digest --format json | jq '.flags'
      corrlog digest --send
    """
    from corrlog.cli import _parse_now, flag_settings, local_tz, make_pipeline
    from corrlog.digest import build_digest
    from corrlog.flagstate import milestone_events, snoozes
    from corrlog.render_digest import render_html, render_json, render_markdown

    tz = local_tz()
    moment = _parse_now(now)
    chosen = _week(week, moment, tz)
    settings = app.settings
    if send and settings.notify.email is None:
        raise ConfigError(
            "--send needs a [notify.email] table in the config (host, from, to); "
            "see config/corrlog.example.toml"
        )
    with app.datadir.open() as session:
        pipeline = make_pipeline(settings, session)
        start = chosen.start(tz)
        digest = build_digest(
            pipeline.contracts.values(),
            _client_records(session),
            _archived(session, start, chosen.end(tz)),
            chosen,
            moment,
            tz=tz,
            settings=flag_settings(settings),
            milestone_events=milestone_events(session),
            snoozed={c: until for c, (until, _why) in snoozes(session, start).items()},
        )
    renderers = {"md": render_markdown, "html": render_html, "json": render_json}
    if send:
        _send(app, digest)
    if out is not None:
        try:
            Path(out).expanduser().write_text(renderers[fmt](digest), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the digest to {out}: {exc.strerror}") from None
        click.echo(f"digest {chosen.label} written to {out}", err=True)
    elif not send:
        click.echo(renderers[fmt](digest), nl=False)


def _week(value: str | None, now: datetime, tz: tzinfo) -> Week:
    from corrlog.digest import Week

    if value is None:
        return Week.last_complete(now, tz)
    try:
        return Week.parse(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _client_records(session: Session) -> list[Record]:
    """Every live record that involves a known client (linked to a contract or not)."""
    from corrlog.state import row_record

    rows = session.conn.execute(
        "SELECT * FROM records WHERE indexed != -1 AND (contract IS NOT NULL OR client IS NOT NULL)"
        " ORDER BY date, id"
    )
    return [row_record(row) for row in rows]


def _archived(session: Session, start: datetime, end: datetime) -> list[Archived]:
    """Items archived for the first time between start and end (ledger `ingest` events)."""
    from corrlog.digest import Archived, source_of

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")

    rows = session.conn.execute(
        "SELECT time, origin FROM ledger WHERE event = 'ingest' AND time >= ? AND time < ?",
        (stamp(start), stamp(end)),
    )
    found = []
    for row in rows:
        source = source_of(row["origin"])
        if source is not None:
            found.append(Archived(datetime.fromisoformat(row["time"]), source))
    return found


def _send(app: App, digest: Digest) -> None:
    from corrlog.notify import EmailSender
    from corrlog.render_digest import digest_message

    email = app.settings.notify.email
    assert email is not None
    EmailSender(email).send_message(digest_message(digest))
    click.echo(f"digest {digest.week.label} sent to {', '.join(email.to)}", err=True)


@click.command()
@click.argument("contract")
@click.option("--out", metavar="DIR", required=True, help="A new or empty folder for the pack.")
@click.option("--since", metavar="DATE", help="Only items on or after this date.")
@click.option("--until", metavar="DATE", help="Only items on or before this date (inclusive).")
@click.pass_obj
def export_command(app: App, contract: str, out: str, since: str | None, until: str | None) -> None:
    """Export an evidence pack for CONTRACT: timeline, original items, ledger, manifest.

    The pack is checkable without corrlog: `sha256sum -c manifest.sha256` in
    the folder verifies every file; README.txt explains the rest in plain
    words. `corrlog verify --pack DIR` checks files and ledger excerpt.

    \b
    Examples:
      corrlog export acme-site --out ~/evidence/acme-site
      corrlog export acme-site --out ./pack --since 2026-09-01 --until 2026-11-30
    """
    from corrlog.cli import _parse_when, local_tz, make_pipeline
    from corrlog.evidence import collect_pack, write_pack

    first = _parse_when(since, end=False)
    last = _parse_when(until, end=True)
    if first and last and first > last:
        raise UsageError(f"--since {since} is after --until {until}")
    target = Path(out).expanduser()
    settings = app.settings
    with app.datadir.open() as session:
        pipeline = make_pipeline(settings, session)
        known = pipeline.contracts.get(contract)
        if known is None:
            raise UsageError(f"no contract {contract!r}; see 'corrlog contracts'")
        pack = collect_pack(pipeline, known, now=datetime.now(UTC), since=first, until=last)
        names = write_pack(pack, session.archive, target, local_tz())
    click.echo(
        f"evidence pack for {contract} written to {target}: {len(pack.items)} items, "
        f"{len(pack.entries)} ledger entries, {len(names)} files in manifest.sha256"
    )
    click.echo(f"check it with: cd {target} && sha256sum -c manifest.sha256")
