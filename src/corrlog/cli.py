"""The `corrlog` command: thin wrappers that load config, call the library and print results."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from corrlog import __version__
from corrlog import logging as corrlog_logging
from corrlog.config import Settings, default_data_dir, load_settings, resolve_config_path
from corrlog.datadir import DataDir, Session
from corrlog.errors import (
    ConfigError,
    CorrlogError,
    SourceError,
    UsageError,
    describe,
    error_line,
)
from corrlog.index import Index, SearchRequest, SearchResult, search
from corrlog.ledger import check_before_append
from corrlog.output import clean, render_ids, render_json, render_table
from corrlog.searchd import Caller, Reply, error

if TYPE_CHECKING:
    from corrlog.pipeline import Pipeline
    from corrlog.rules.flags import FlagSettings


@dataclass
class App:
    """What every command needs: where the config is, loaded on first use."""

    config_path: Path
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The validated settings (ConfigError on a missing or bad config)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def datadir(self) -> DataDir:
        """The data directory named by the settings."""
        return DataDir(self.settings.data_dir, self.settings.index.engine)


def local_tz() -> tzinfo:
    """The machine's local time zone (read only here, at the edge)."""
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def make_pipeline(settings: Settings, session: Session) -> Pipeline:
    """The record-building context for this config: contracts, my addresses, rules."""
    from corrlog.pipeline import Pipeline
    from corrlog.rules.classify import ClassifyRules

    try:
        rules = ClassifyRules.from_config(settings.classify.agreement, settings.classify.update)
    except ValueError as exc:
        raise ConfigError(f"invalid config [classify]: {exc}") from None
    return Pipeline.load(
        session,
        settings.contracts,
        settings.my_addresses,
        local_tz(),
        capture_all=settings.capture == "all",
        rules=rules,
    )


def flag_settings(settings: Settings) -> FlagSettings:
    """The flag thresholds from the config."""
    from corrlog.rules.flags import FlagSettings

    return FlagSettings(
        default_interval=settings.default_interval,
        client_silence=settings.flags.client_silence,
        payment_wait=settings.flags.payment_wait,
        due_soon=settings.flags.due_soon,
    )


def finish_pass(settings: Settings, pipeline: Pipeline, now: datetime) -> None:
    """After ingesting: manual links, contract change events, flag lifecycle and notifications."""
    from corrlog.flagstate import check_flags, record_contract_changes
    from corrlog.links import apply_manual_links
    from corrlog.notify import notifiers

    session = pipeline.session
    if apply_manual_links(session, pipeline.contracts):
        pipeline.flush({})
    record_contract_changes(session, pipeline.contracts)
    check_flags(
        session,
        pipeline.contracts.values(),
        now,
        flag_settings(settings),
        settings.flags.renotify,
        notifiers(settings.notify),
    )


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing otherwise (the daemon logs instead)."""
    if not sys.stderr.isatty() or length == 0:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    metavar="PATH",
    help="Config file (default: $CORRLOG_CONFIG, else ~/.config/corrlog/corrlog.toml).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    show_default=True,
    help="Log lines on stderr: readable, or JSON lines (auto: JSON when not a terminal).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log.")
@click.version_option(__version__, prog_name="corrlog")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_format: str, verbose: int, quiet: bool) -> None:
    """Keep a tamper-evident, searchable record of client correspondence.

    \b
    Start with:
      corrlog init        write a config and create the data folders
      corrlog sync        archive and index notes (and mail, once configured)
      corrlog search 'contract:acme-site kind:agreement'
    """
    os.umask(0o077)
    level = "warning" if quiet else ("debug" if verbose > 1 else "info")
    corrlog_logging.configure(log_format, level)  # type: ignore[arg-type]
    ctx.obj = App(config_path=resolve_config_path(config, os.environ))


TEMPLATE_DATA_DIR = "~/.local/share/corrlog"  # as the config template writes it


def _template() -> str:
    return resources.files("corrlog").joinpath("templates/corrlog.toml").read_text("utf-8")


@cli.command()
@click.option(
    "--data-dir",
    metavar="DIR",
    help="Where to keep the data (default $XDG_DATA_HOME/corrlog, else ~/.local/share/corrlog).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_app
def init(app: App, data_dir: str | None, force: bool) -> None:
    """Write a commented config file and create the data folders (0700).

    An existing config is left unchanged (say --force to replace it); the
    folders it names are created either way.

    \b
    Example:
      corrlog init --data-dir ~/corrlog-data
    """
    path = app.config_path
    if path.exists() and not force:
        click.echo(f"config already exists at {path}; left unchanged")
    else:
        text = _template()
        root = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
        if root.is_absolute() and root != Path(TEMPLATE_DATA_DIR).expanduser():
            text = text.replace(TEMPLATE_DATA_DIR, str(root))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        click.echo(f"wrote config {path}")
    settings = app.settings
    DataDir(settings.data_dir).ensure()
    for notes in settings.notes_paths:
        notes.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.maildir is None:
        for sub in ("cur", "new", "tmp"):
            (settings.maildir_sources[0].path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    click.echo(
        f"data folder {settings.data_dir} ready; notes in {', '.join(map(str, settings.notes_paths))}"
    )


@cli.command()
@click.option(
    "--source", "only", metavar="NAME", help="Only this source: notes, or a maildir/imap name."
)
@pass_app
def sync(app: App, only: str | None) -> None:
    """Archive and index everything new from all configured sources, then exit.

    Notes first (they declare contracts), then Maildir folders, then IMAP
    accounts. An account that fails (wrong password, unreachable) is reported
    in one line and the others are still synced; the exit code is then 3.

    While the daemon (corrlog run) is running, its writer does the sync and
    this command prints what it would have printed.

    \b
    Examples:
      corrlog sync
      corrlog sync --source work
    """
    from corrlog.mailsync import sync_imap, sync_maildir
    from corrlog.sync import relink_threads, sync_notes

    settings = app.settings
    settings.check_source(only)
    failed = 0
    datadir = app.datadir
    with datadir.write_lock(), datadir.open(create=True) as session:
        check_before_append(session.ledger, datetime.now(UTC))
        session.archive.clean_tmp()
        pipeline = make_pipeline(settings, session)
        pipeline.flush({})  # records left pending by an earlier failed commit
        if only in (None, "notes"):
            click.echo(sync_notes(pipeline, settings.notes_paths).summary())
        for source in settings.maildir_sources:
            if only in (None, source.name):
                click.echo(sync_maildir(pipeline, source).summary())
        for account in settings.imap:
            if only not in (None, account.name):
                continue
            try:
                click.echo(sync_imap(pipeline, account).summary())
            except SourceError as exc:
                failed += 1
                click.echo(error_line(str(exc)), err=True)
        relink_threads(pipeline)
        finish_pass(settings, pipeline, datetime.now(UTC))
    if failed:
        sys.exit(SourceError.exit_code)


def _parse_when(value: str | None, *, end: bool, tz: tzinfo | None = None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"cannot read date {value!r}; write it like 2026-11-30 or 2026-11-30T14:00"
        ) from None
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), time.max if end else time.min)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz or local_tz())


@cli.command(name="search")
@click.argument("query", nargs=-1)
@click.option("--contract", metavar="ID", help="Only this contract.")
@click.option("--client", metavar="NAME", help="Only this client.")
@click.option(
    "--kind", type=click.Choice(["agreement", "update", "message"]), help="Only this kind."
)
@click.option("--since", metavar="DATE", help="On or after this date (YYYY-MM-DD or ISO time).")
@click.option("--until", metavar="DATE", help="On or before this date (inclusive).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True
)
@click.option(
    "--unlinked", is_flag=True, help="Only items from known clients not linked to a contract."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ids"]),
    default="table",
    show_default=True,
)
@pass_app
def search_command(app: App, /, **options: Any) -> None:
    """Full-text search; QUERY uses Whoosh syntax with mail fields.

    Fields: from: to: subject: contract: client: kind: date: attachment:
    milestone: source: direction: id:. Words are ANDed; OR, NOT, "phrases",
    wild* and date ranges work. Dates in queries are UTC.

    While the daemon (corrlog run) is running it answers searches over its
    socket: the same output, much sooner. Otherwise this process searches.

    \b
    Examples:
      corrlog search invoice
      corrlog search 'from:acme.example subject:"milestone 2"'
      corrlog search 'kind:agreement date:[2026-01-01 to 2026-02-01]' --sort date
      corrlog search --contract acme-site --format json
    """
    caller = this_terminal()
    request = search_request(options, caller.tz)
    with app.datadir.open() as session:
        result = search(session.index, request)
    click.echo(render_search(result, options["fmt"], caller), nl=False)


def this_terminal() -> Caller:
    """This process's output: colour on a terminal unless NO_COLOR, width, local UTC offset."""
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    offset = local_tz().utcoffset(None)
    assert offset is not None
    width = shutil.get_terminal_size((100, 20)).columns
    return Caller(color, width, int(offset.total_seconds()))


def search_request(options: dict[str, Any], tz: tzinfo) -> SearchRequest:
    """The library request for the search command's parsed options."""
    return SearchRequest(
        text=" ".join(options["query"]),
        contract=options["contract"],
        client=options["client"],
        kind=options["kind"],
        since=_parse_when(options["since"], end=False, tz=tz),
        until=_parse_when(options["until"], end=True, tz=tz),
        limit=options["limit"],
        sort=options["sort"],
        unlinked=options["unlinked"],
    )


def render_search(result: SearchResult, fmt: str, caller: Caller) -> str:
    """Everything `corrlog search` prints on stdout for a result."""
    if fmt == "json":
        return render_json(result.hits) + "\n"
    if fmt == "ids":
        return render_ids(result.hits) + "\n" if result.hits else ""
    return render_table(result.hits, result.total, caller.color, caller.width) + "\n"


def answer_search(idx: Index, argv: list[str], caller: Caller) -> Reply:
    """The daemon's answer to `corrlog search ARGV`: parsed by this very command, same output."""
    if {"-h", "--help"}.intersection(argv):
        return Reply(fallback=True)  # help is printed by click itself: let the client do it
    try:
        with click.Context(cli, info_name="corrlog", **cli.context_settings) as parent:
            ctx = search_command.make_context("search", list(argv), parent=parent)
            request = search_request(ctx.params, caller.tz)
            result = search(idx, request)
            return Reply(stdout=render_search(result, ctx.params["fmt"], caller))
    except CorrlogError as exc:
        return error(*describe(exc))
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        return Reply(stderr=shown.getvalue(), exit=exc.exit_code)


@cli.command()
@click.argument("record_id", metavar="ID")
@click.option("--raw", is_flag=True, help="Print the original bytes exactly as archived.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_app
def show(app: App, record_id: str, raw: bool, fmt: str) -> None:
    """Show one record, or with --raw its original bytes.

    ID is the id that search prints (a unique prefix of 6 or more characters works).

    \b
    Examples:
      corrlog show 3f2a9c1b7d4e
      corrlog show 3f2a9c1b7d4e --raw > original.eml
    """
    from corrlog.state import row_origin

    with app.datadir.open() as session:
        row = session.state.record_row(record_id)
        if row is None:
            raise UsageError(f"no record with id {record_id!r}; find ids with 'corrlog search'")
        if raw:
            data = session.archive.get(row["sha256"])
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        doc = session.index.stored(row["id"]) or {}
        origins = session.state.origins(row["id"])
    origin = row_origin(row)
    info: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "source": row["source"],
        "origin": origin.to_json(),
        "origins": [o.to_json() for o in origins] or [origin.to_json()],
        "quarantine": row["quarantine"],
        "direction": row["direction"],
        "client": row["client"],
        "contract": row["contract"],
        "milestone": row["milestone"],
        "link_rule": row["link_rule"],
        "date": row["date"],
        "subject": row["subject"],
        "from": doc.get("sender") or None,
        "to": doc.get("recipients") or [],
        "attachments": (doc.get("attachment") or "").split() if doc.get("attachment") else [],
        "sha256": row["sha256"],
        "text": doc.get("body", ""),
    }
    if fmt == "json":
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for key in (
        "id",
        "kind",
        "date",
        "subject",
        "source",
        "direction",
        "client",
        "contract",
        "milestone",
        "from",
        "sha256",
    ):
        if info[key]:
            click.echo(f"{key + ':':<11}{clean(str(info[key]))}")
    click.echo(f"{'origin:':<11}{clean(json.dumps(info['origin']))}")
    click.echo("")
    click.echo(_printable(info["text"]))


def _printable(text: str) -> str:
    return "\n".join(clean(line) for line in text.splitlines())


@cli.command()
@pass_app
def reindex(app: App) -> None:
    """Rebuild the search index and the state database from the archive.

    Safe at any time: the archive and the ledger are the source of truth.

    \b
    Example:
      corrlog reindex
    """
    from corrlog.rebuild import rebuild

    settings = app.settings
    datadir = app.datadir
    with datadir.write_lock(), datadir.open() as session:
        pipeline = make_pipeline(settings, session)
        total = session.state.count_records() or session.ledger.count()
        with progress_bar(total, "reindexing") as bar:
            report = rebuild(pipeline, bar)
    click.echo(
        f"reindexed {report.records} records and {report.contracts} contracts "
        f"from {report.entries} ledger entries"
        + (f"; {report.unreadable} archived items could not be read" if report.unreadable else "")
    )


@cli.command(name="verify")
@click.option(
    "--pack", metavar="DIR", help="Check an exported evidence pack instead of the archive."
)
@pass_app
def verify_command(app: App, pack: str | None) -> None:
    """Check the ledger's hash chain and re-hash every archived object.

    Exits 0 with a one-line summary, or 1 naming every broken entry or object.
    With --pack, checks an evidence pack: every file against its manifest and
    the ledger excerpt's hashes (no config needed).

    \b
    Examples:
      corrlog verify
      corrlog verify --pack ~/evidence/acme-site
    """
    from corrlog.verify import verify

    if pack is not None:
        from corrlog.evidence import verify_pack

        pack_report = verify_pack(Path(pack).expanduser())
        for problem in pack_report.problems:
            click.echo(problem)
        click.echo(pack_report.summary())
        if not pack_report.ok:
            sys.exit(1)
        return
    with app.datadir.open() as session, progress_bar(session.ledger.count(), "verifying") as bar:
        report = verify(session.ledger, session.archive, bar)
    for problem in report.problems:
        click.echo(problem)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    parsed = _parse_when(value, end=False)
    assert parsed is not None
    return parsed


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


@cli.command()
@click.option("--now", metavar="ISO", help="Evaluate as of this time (default: now).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_app
def contracts(app: App, now: str | None, fmt: str) -> None:
    """Contracts with their last progress update, interval and open flags.

    \b
    Examples:
      corrlog contracts
      corrlog contracts --now 2026-12-01 --format json
    """
    from corrlog.flagstate import evaluate, flag_records
    from corrlog.overview import contract_rows

    moment = _parse_now(now)
    settings = app.settings
    with app.datadir.open() as session:
        pipeline = make_pipeline(settings, session)
        records = flag_records(session)
        flags = evaluate(session, pipeline.contracts.values(), moment, flag_settings(settings))
        rows = contract_rows(
            pipeline.contracts.values(), records, flags, moment, settings.default_interval
        )
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no contracts; declare one in an agreement note or a [[contracts]] table")
        return
    table = [["CONTRACT", "CLIENT", "STATUS", "INTERVAL", "LAST UPDATE", "FLAGS"]]
    for row in rows:
        since = (
            f"{row['last_update'][:10]} ({row['days_since_update']}d)"
            if row["last_update"]
            else "never"
        )
        table.append(
            [
                row["id"],
                clean(row["client"]),
                row["status"],
                f"{row['interval_days']:g}d",
                since,
                ", ".join(row["open_flags"]) or "-",
            ]
        )
    click.echo(_table(table))


@cli.command()
@click.option("--now", metavar="ISO", help="Evaluate as of this time (default: now).")
@click.option("--all", "show_all", is_flag=True, help="Include flags of snoozed contracts.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_app
def flags(app: App, now: str | None, show_all: bool, fmt: str) -> None:
    """Open payment-risk flags, most urgent first.

    Flags: stale, client-silent, milestone-due, milestone-overdue,
    unfunded-work, awaiting-payment. Snoozed contracts are hidden unless --all.

    \b
    Examples:
      corrlog flags
      corrlog flags --now 2026-12-15 --format json
    """
    from corrlog.flagstate import evaluate, snoozes
    from corrlog.overview import flag_rows

    moment = _parse_now(now)
    settings = app.settings
    with app.datadir.open() as session:
        pipeline = make_pipeline(settings, session)
        found = evaluate(session, pipeline.contracts.values(), moment, flag_settings(settings))
        snoozed = snoozes(session, moment)
    if not show_all:
        found = [f for f in found if f.contract not in snoozed]
    rows = flag_rows(found, snoozed)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no open flags")
        return
    for row in rows:
        tail = f"  (snoozed until {row['snoozed_until'][:16]})" if row["snoozed_until"] else ""
        click.echo(f"{row['contract']:<16} {row['flag']:<18} {clean(row['detail'])}{tail}")


@cli.command()
@click.argument("contract")
@click.argument("duration")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@pass_app
def snooze(app: App, contract: str, duration: str, reason: str) -> None:
    """Hide a contract's flags for DURATION (3d, 12h, 2w); a ledger event.

    \b
    Example:
      corrlog snooze acme-site 3d --reason "client on holiday"
    """
    from corrlog.durations import parse_duration
    from corrlog.flagstate import snooze as snooze_contract

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = app.settings
    datadir = app.datadir
    with datadir.write_lock(), datadir.open() as session:
        check_before_append(session.ledger, datetime.now(UTC))
        known = make_pipeline(settings, session).contracts
        if contract not in known:
            raise UsageError(f"no contract {contract!r}; see 'corrlog contracts'")
        until = datetime.now(UTC) + length
        snooze_contract(session, contract, until, reason)
    click.echo(f"{contract}: flags snoozed until {until.astimezone(local_tz()):%Y-%m-%d %H:%M}")


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("contract")
@click.option("--milestone", metavar="M", help="Also link to this milestone of the contract.")
@pass_app
def link(app: App, record_id: str, contract: str, milestone: str | None) -> None:
    """File an item under a contract by hand (a ledger event that survives reindex).

    \b
    Examples:
      corrlog search --unlinked
      corrlog link 3f2a9c1b7d4e acme-site --milestone m2
    """
    from corrlog.links import link_by_hand

    settings = app.settings
    datadir = app.datadir
    with datadir.write_lock(), datadir.open() as session:
        check_before_append(session.ledger, datetime.now(UTC))
        pipeline = make_pipeline(settings, session)
        known = pipeline.contracts.get(contract)
        if known is None:
            raise UsageError(f"no contract {contract!r}; see 'corrlog contracts'")
        full_id = link_by_hand(session, record_id, known, milestone)
        pipeline.flush({})
    click.echo(f"{full_id} linked to {contract}" + (f" / {milestone}" if milestone else ""))


@cli.command()
@pass_app
def run(app: App) -> None:
    """Run the daemon in the foreground (systemd runs this).

    Syncs everything once, then watches: IMAP IDLE on INBOX, the other folders
    every poll_interval, notes folders live, flags every check_interval.
    SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the config.

    \b
    Example:
      corrlog run
    """
    from corrlog.daemon import Daemon

    app.settings  # noqa: B018 - fail fast on a bad config, before anything starts
    daemon = Daemon(
        lambda: load_settings(app.config_path),
        make_pipeline,
        finish_pass,
        os.environ,
        answer_search=answer_search,
        config_path=app.config_path,
    )
    sys.exit(daemon.run())


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_app
def status(app: App, fmt: str) -> None:
    """What the running daemon last reported: sources, last sync, errors, items today.

    \b
    Example:
      corrlog status --format json
    """
    from corrlog.daemon import status_path

    path = status_path(app.settings.data_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorrlogError(f"no daemon status at {path}; start it with 'corrlog run'") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CorrlogError(f"cannot read daemon status {path}: {exc}") from None
    data["running"] = _alive(int(data.get("pid", 0)))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    state = "running" if data["running"] else "not running"
    click.echo(f"daemon: {state} (pid {data.get('pid')}, started {data.get('started', '?')[:19]})")
    for name, source in sorted(data.get("sources", {}).items()):
        link = {True: "connected", False: "disconnected", None: "-"}[source.get("connected")]
        line = f"  {name:<16} {source.get('kind', ''):<8} {link:<13} last sync {str(source.get('last_sync'))[:19]}"
        line += f"  today {source.get('items_today', 0)}"
        if source.get("last_error"):
            line += f"  error: {clean(source['last_error'])}"
        click.echo(line)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@cli.command()
@click.option("--offline", is_flag=True, help="Skip connecting to mail servers.")
@pass_app
def doctor(app: App, offline: bool) -> None:
    """Check config, permissions, database, ledger, index and servers; say what to do.

    Exits 0 when everything is fine, 1 otherwise.

    \b
    Example:
      corrlog doctor
    """
    from corrlog.doctor import run_checks

    failed = 0
    click.echo(f"ok    config {app.config_path}")
    for check in run_checks(app.settings, servers=not offline):
        mark = "ok  " if check.ok else "FAIL"
        line = f"{mark}  {check.name}: {clean(check.detail)}"
        if not check.ok:
            failed += 1
            line += f" -> {check.remedy}"
        click.echo(line)
    if failed:
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning corrlog's errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="corrlog", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("corrlog: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("corrlog: interrupted", err=True)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except (CorrlogError, sqlite3.Error, OSError) as exc:
        message, code = describe(exc)
        click.echo(error_line(message), err=True)
        return code
    return 0


# Report commands live in their own module; registered here so `corrlog --help` lists them.
from corrlog.cli_reports import digest_command, export_command  # noqa: E402

cli.add_command(digest_command, name="digest")
cli.add_command(export_command, name="export")

if __name__ == "__main__":
    sys.exit(main())
