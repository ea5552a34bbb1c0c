"""The `corrlog` command: thin wrappers that load config, call the library and print results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any

import click

from corrlog import __version__
from corrlog import logging as corrlog_logging
from corrlog.config import Settings, load_settings, resolve_config_path
from corrlog.datadir import DataDir
from corrlog.errors import CorrlogError, SourceError, UsageError
from corrlog.index import SearchRequest, search
from corrlog.output import clean, render_ids, render_json, render_table


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
        return DataDir(self.settings.data_dir)


def local_tz() -> tzinfo:
    """The machine's local time zone (read only here, at the edge)."""
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


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


def _template() -> str:
    return resources.files("corrlog").joinpath("templates/corrlog.toml").read_text("utf-8")


@cli.command()
@click.option(
    "--data-dir", metavar="DIR", help="Where to keep the data (default ~/.local/share/corrlog)."
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
        if data_dir:
            root = Path(data_dir).expanduser().resolve()
            text = text.replace("~/.local/share/corrlog", str(root))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        click.echo(f"wrote config {path}")
    settings = app.settings
    DataDir(settings.data_dir).ensure()
    for notes in settings.notes_paths:
        notes.mkdir(mode=0o700, parents=True, exist_ok=True)
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

    \b
    Examples:
      corrlog sync
      corrlog sync --source work
    """
    from corrlog.mailsync import sync_imap, sync_maildir
    from corrlog.pipeline import Pipeline
    from corrlog.sync import relink_threads, sync_notes

    settings = app.settings
    names = {"notes", *(m.name for m in settings.maildir_sources), *(a.name for a in settings.imap)}
    if only and only not in names:
        raise UsageError(f"no source named {only!r}; configured: {', '.join(sorted(names))}")
    failed = 0
    datadir = app.datadir
    with datadir.write_lock(), datadir.open(create=True) as session:
        session.archive.clean_tmp()
        pipeline = Pipeline.load(
            session,
            settings.contracts,
            settings.my_addresses,
            local_tz(),
            capture_all=settings.capture == "all",
        )
        if only in (None, "notes"):
            report = sync_notes(pipeline, settings.notes_paths)
            click.echo(
                f"notes: {report.archived} archived, {report.unchanged} unchanged, "
                f"{report.skipped} skipped, {report.deleted} deleted"
            )
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
                click.echo(f"corrlog: error: {exc}", err=True)
        relink_threads(pipeline)
    if failed:
        sys.exit(SourceError.exit_code)


def _parse_when(value: str | None, *, end: bool) -> datetime | None:
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
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=local_tz())


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
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ids"]),
    default="table",
    show_default=True,
)
@pass_app
def search_command(
    app: App,
    query: tuple[str, ...],
    contract: str | None,
    client: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    sort: str,
    fmt: str,
) -> None:
    """Full-text search; QUERY uses Whoosh syntax with mail fields.

    Fields: from: to: subject: contract: client: kind: date: attachment:
    milestone: source: direction: id:. Words are ANDed; OR, NOT, "phrases",
    wild* and date ranges work. Dates in queries are UTC.

    \b
    Examples:
      corrlog search invoice
      corrlog search 'from:acme.example subject:"milestone 2"'
      corrlog search 'kind:agreement date:[2026-01-01 to 2026-02-01]' --sort date
      corrlog search --contract acme-site --format json
    """
    request = SearchRequest(
        text=" ".join(query),
        contract=contract,
        client=client,
        kind=kind,
        since=_parse_when(since, end=False),
        until=_parse_when(until, end=True),
        limit=limit,
        sort=sort,
    )
    with app.datadir.open() as session:
        result = search(session.index, request)
    if fmt == "json":
        click.echo(render_json(result.hits))
    elif fmt == "ids":
        if result.hits:
            click.echo(render_ids(result.hits))
    else:
        click.echo(render_table(result.hits, result.total, color=sys.stdout.isatty()))


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
        with session.index.searcher() as searcher:
            doc = searcher.document(id=row["id"]) or {}
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
    from corrlog.pipeline import Pipeline
    from corrlog.rebuild import rebuild

    settings = app.settings
    datadir = app.datadir
    with datadir.write_lock(), datadir.open() as session:
        pipeline = Pipeline.load(
            session,
            settings.contracts,
            settings.my_addresses,
            local_tz(),
            capture_all=settings.capture == "all",
        )
        total = session.state.count_records() or session.ledger.count()
        with progress_bar(total, "reindexing") as bar:
            report = rebuild(pipeline, bar)
    click.echo(
        f"reindexed {report.records} records and {report.contracts} contracts "
        f"from {report.entries} ledger entries"
        + (f"; {report.unreadable} archived items could not be read" if report.unreadable else "")
    )


@cli.command(name="verify")
@pass_app
def verify_command(app: App) -> None:
    """Check the ledger's hash chain and re-hash every archived object.

    Exits 0 with a one-line summary, or 1 naming every broken entry or object.

    \b
    Example:
      corrlog verify
    """
    from corrlog.verify import verify

    with app.datadir.open() as session, progress_bar(session.ledger.count(), "verifying") as bar:
        report = verify(session.ledger, session.archive, bar)
    for problem in report.problems:
        click.echo(problem)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning corrlog's errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="corrlog", standalone_mode=False)
    except CorrlogError as exc:
        click.echo(f"corrlog: error: {exc}", err=True)
        return exc.exit_code
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
