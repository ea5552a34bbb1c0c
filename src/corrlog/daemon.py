"""`corrlog run`: one writer thread fed by watchers (notes, IMAP IDLE, timers) and syncs; signals; sd_notify; searches."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from corrlog.backoff import Backoff
from corrlog.config import Settings
from corrlog.datadir import DataDir, Session
from corrlog.errors import CorrlogError, IntegrityError, SourceError, UsageError, describe
from corrlog.idle import IdleWatcher
from corrlog.index import SearchIndex, open_index
from corrlog.ledger import check_before_append
from corrlog.logging import get_logger
from corrlog.mailsync import sync_imap, sync_maildir
from corrlog.pipeline import Pipeline
from corrlog.sdnotify import SystemdNotifier
from corrlog.searchd import Caller, Reply, SearchServer, SyncCall, error, said
from corrlog.searchproto import SOCKET_NAME, settings_environ
from corrlog.sync import relink_threads, sync_notes
from corrlog.watch import NotesWatcher


@dataclass(frozen=True, slots=True, order=True)
class Task:
    """One unit of work for the writer: which source (and folders) to sync, or a control."""

    kind: str
    source: str = ""
    inbox_only: bool = False


STOP = Task("stop")
RELOAD = Task("reload")
FLAGS = Task("flags")
NOTES = Task("notes")


def sync_tasks(settings: Settings, only: str | None) -> tuple[Task, ...]:
    """The tasks `corrlog sync [--source ONLY]` runs, in its order: notes, Maildir, IMAP."""
    every = [
        NOTES,
        *(Task("maildir", m.name) for m in settings.maildir_sources),
        *(Task("imap", a.name) for a in settings.imap),
    ]
    return tuple(dict.fromkeys(t for t in every if only is None or (t.source or t.kind) == only))


class SyncRequest:
    """A `corrlog sync` waiting on the socket: its tasks and, once its pass has ended, its reply."""

    def __init__(self, tasks: tuple[Task, ...], settings: Settings) -> None:
        self.tasks = tasks
        self.settings = settings  # the settings its tasks were chosen from
        self._reply: Reply | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    def finish(self, reply: Reply) -> None:
        """Answer the client (the first answer counts)."""
        with self._lock:
            if self._reply is None:
                self._reply = reply
                self._done.set()

    def wait(self) -> Reply:
        """Block until answered; the reply."""
        self._done.wait()
        assert self._reply is not None
        return self._reply


@dataclass
class SourceStatus:
    """What `corrlog status` shows for one source."""

    kind: str
    connected: bool | None = None
    last_sync: str | None = None
    last_error: str | None = None
    items_today: int = 0
    day: str = ""


@dataclass
class Status:
    """The daemon's health, written to status.json for `corrlog status`."""

    pid: int
    started: str
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def source(self, name: str, kind: str) -> SourceStatus:
        """The status entry of a source (created on first use)."""
        with self.lock:
            return self.sources.setdefault(name, SourceStatus(kind))

    def to_json(self) -> dict[str, Any]:
        """JSON for status.json."""
        with self.lock:
            return {
                "pid": self.pid,
                "started": self.started,
                "updated": datetime.now(UTC).isoformat(),
                "sources": {
                    name: {k: v for k, v in vars(s).items() if k != "day"}
                    for name, s in self.sources.items()
                },
            }


class Daemon:
    """The background service: owns the only writer, runs watchers, handles signals."""

    def __init__(
        self,
        load_settings: Callable[[], Settings],
        make_pipeline: Callable[[Settings, Session], Pipeline],
        finish_pass: Callable[[Settings, Pipeline, datetime], None],
        environ: Mapping[str, str],
        answer_search: Callable[[SearchIndex, list[str], Caller], Reply] | None = None,
        config_path: Path | None = None,
    ) -> None:
        self._load_settings = load_settings
        self._config_path = config_path.absolute() if config_path else None  # None: no syncs
        self._settings_environ = settings_environ(environ)
        self._answer_search = answer_search
        self._make_pipeline = make_pipeline
        self._finish_pass = finish_pass
        self.settings = load_settings()
        self.queue: queue.SimpleQueue[Task | SyncRequest] = queue.SimpleQueue()  # signal-safe put()
        self.stopping = threading.Event()
        self.systemd = SystemdNotifier.from_environ(environ)
        self.status = Status(os.getpid(), datetime.now(UTC).isoformat())
        self.log = get_logger(component="daemon")
        self._idle: dict[str, IdleWatcher] = {}
        self._notes: NotesWatcher | None = None
        self._timers: list[threading.Thread] = []
        self._timer_stop = threading.Event()
        self._ready = False
        self._last_beat = time.monotonic()
        self._retry = Backoff(initial=2.0, maximum=300.0)
        self._requests_lock = threading.Lock()
        self._waiting: set[SyncRequest] = set()  # queued or in a pass, not yet answered
        self._closed = False  # no more sync requests are taken

    # lifecycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        self._install_signals()
        pulse = self._start_pulse()
        datadir = DataDir(self.settings.data_dir, self.settings.index.engine)
        datadir.ensure()
        self.log.info("starting", pid=os.getpid(), data_dir=str(self.settings.data_dir))
        self._check_store(datadir)
        searchd = self._start_search(datadir)
        try:
            self._serve(datadir, pulse)
        finally:
            self._close_requests()
            if searchd is not None:
                searchd.stop()
        return 0

    def _serve(self, datadir: DataDir, pulse: threading.Thread | None) -> None:
        self._sync_all(datadir)
        self._start_watchers()
        self._ready = True
        self.systemd.notify("READY=1", "STATUS=watching for new mail and notes")
        self.log.info("ready")
        try:
            self._loop(datadir)
        finally:
            self._stop_watchers()
            self._pulse_stop.set()
            if pulse is not None:
                pulse.join(timeout=2)
            self.systemd.notify("STOPPING=1")
            self._write_status(datadir)
            self.log.info("stopped")

    def _start_search(self, datadir: DataDir) -> SearchServer | None:
        """Answer searches over `<data_dir>/search.sock` from one index object kept open."""
        if self._answer_search is None:
            return None
        index, answer = open_index(datadir.index_dir, datadir.engine), self._answer_search
        server = SearchServer(
            datadir.root / SOCKET_NAME,
            lambda argv, caller: answer(index, argv, caller),
            self.answer_sync,
        )
        return server if server.start() else None

    def _check_store(self, datadir: DataDir) -> None:
        """Refuse a broken ledger; rebuild a damaged index from the archive before serving."""
        from corrlog.rebuild import rebuild

        with datadir.write_lock(), datadir.open(create=True) as session:
            check_before_append(session.ledger, datetime.now(UTC), full_every=timedelta(0))
            session.archive.clean_tmp()
            problem = session.index.problem(session.state.expected_docs())
            if problem is None:
                return
            self.log.warning("index damaged; rebuilding it from the archive", problem=problem)
            pipeline = self._make_pipeline(self.settings, session)
            pipeline.heartbeat = self._beat
            report = rebuild(pipeline)
            self.log.info("index rebuilt", records=report.records)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()
            self.queue.put(STOP)

        def reload(signum: int, _frame: FrameType | None) -> None:
            self.queue.put(RELOAD)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _loop(self, datadir: DataDir) -> None:
        wait = self.systemd.watchdog_interval or 30.0
        while not self.stopping.is_set():
            try:
                first = self.queue.get(timeout=wait)
            except queue.Empty:
                self._ping()
                continue
            items = [first, *self._drain()]
            tasks = {item for item in items if isinstance(item, Task)}
            requests = [item for item in items if isinstance(item, SyncRequest)]
            self._ping()
            if STOP in tasks:
                return
            if RELOAD in tasks:
                self._reload()
                tasks = {t for t in tasks if t != RELOAD} | {NOTES, *self._all_sources()}
            if not requests:
                self._run_tasks(datadir, sorted(tasks, key=_order))
            for request in requests:  # a pass each, as `corrlog sync` runs in turn would have
                if self.stopping.is_set():
                    break  # the requests left are told to sync themselves as the daemon stops
                self._run_tasks(datadir, self._in_cli_order({*tasks, *request.tasks}), request)
                tasks = set()

    def _in_cli_order(self, tasks: Iterable[Task]) -> list[Task]:
        """Sources in `corrlog sync`'s order (the config's), so a request's counts are the CLI's."""
        place = {task: n for n, task in enumerate(sync_tasks(self.settings, None))}

        def key(task: Task) -> tuple[int, tuple[int, str]]:
            return place.get(Task(task.kind, task.source), len(place)), _order(task)

        return sorted(tasks, key=key)

    def _drain(self) -> list[Task | SyncRequest]:
        drained = []
        while True:
            try:
                drained.append(self.queue.get_nowait())
            except queue.Empty:
                return drained

    def _ping(self) -> None:
        self._beat()

    def _beat(self) -> None:
        """The writer is making progress (called per task and per indexed record)."""
        self._last_beat = time.monotonic()

    def _start_pulse(self) -> threading.Thread | None:
        """Tell systemd we are alive while the writer makes progress (long imports included)."""
        self._pulse_stop = threading.Event()
        interval = self.systemd.watchdog_interval
        if not self.systemd.enabled:
            return None
        period = interval or 30.0

        def pulse() -> None:
            while not self._pulse_stop.wait(period):
                if time.monotonic() - self._last_beat > 4 * period:
                    continue  # the writer is stuck: let systemd's watchdog act
                if not self._ready:
                    self.systemd.notify(f"EXTEND_TIMEOUT_USEC={int(4 * period * 1_000_000)}")
                if interval:
                    self.systemd.notify("WATCHDOG=1")

        thread = threading.Thread(target=pulse, name="corrlog-pulse", daemon=True)
        thread.start()
        return thread

    # work ---------------------------------------------------------------------------------

    def _all_sources(self) -> list[Task]:
        return [task for task in sync_tasks(self.settings, None) if task != NOTES]

    def _sync_all(self, datadir: DataDir) -> None:
        self._run_tasks(datadir, [NOTES, *self._all_sources()])

    def _run_tasks(
        self, datadir: DataDir, tasks: list[Task], request: SyncRequest | None = None
    ) -> None:
        """One pass; then the sync request it was run for, if any, is answered."""
        tasks = [t for t in tasks if not (t.inbox_only and Task("imap", t.source) in tasks)]
        said: dict[Task, Reply] = {}
        failure: Reply | None = None  # the CLI's error line; not the exception, which would keep
        # the failed pass's frames (and the index writer's lock in them) alive until collected
        try:
            with datadir.write_lock(), datadir.open(create=True) as session:
                self._check_chain(session)
                if request is not None:
                    session.archive.clean_tmp()  # as `corrlog sync` does
                pipeline = self._make_pipeline(self.settings, session)
                pipeline.heartbeat = self._beat
                pipeline.flush({})  # records left pending by an earlier failed commit
                for task in tasks:
                    if self.stopping.is_set():
                        break
                    try:
                        output = self._run_one(pipeline, task)
                    except (CorrlogError, OSError, sqlite3.Error):
                        raise  # the whole pass is retried with backoff
                    except Exception:  # a bug must not kill the service: log it, keep serving
                        self.log.exception("task failed; retried on the next event", task=task.kind)
                    else:
                        if output is not None:
                            said[task] = output
                relink_threads(pipeline)
                self._finish_pass(self.settings, pipeline, datetime.now(UTC))
        except IntegrityError as exc:
            self._answer(request, said, error(*describe(exc)))
            raise
        except CorrlogError as exc:
            self._retry_later(tasks, str(exc))
            failure = error(*describe(exc))
        except (sqlite3.Error, OSError) as exc:  # disk full, I/O errors: nothing committed half
            self._retry_later(tasks, f"{exc.__class__.__name__}: {exc}")
            failure = error(*describe(exc))
        else:
            self._retry.reset()
        self._write_status(datadir)
        self._answer(request, said, failure)

    def _retry_later(self, tasks: list[Task], reason: str) -> None:
        """Run a failed pass again after a backoff delay (or sooner, on the next event)."""
        delay = self._retry.next_delay()
        self.log.error(
            "pass failed; retried on the next event", reason=reason, retry_in=round(delay, 1)
        )

        def again() -> None:
            if not self._timer_stop.wait(delay):
                for task in tasks:
                    self.queue.put(task)

        threading.Thread(target=again, name="corrlog-retry", daemon=True).start()

    def _check_chain(self, session: Session) -> None:
        """Refuse a broken ledger before a pass appends to it: `corrlog sync`'s check (quick,
        every entry re-hashed daily), so damage done while the daemon runs is found too."""
        check_before_append(session.ledger, datetime.now(UTC))

    def _run_one(self, pipeline: Pipeline, task: Task) -> Reply | None:
        """Run one task; what `corrlog sync` prints for it (None where it prints nothing)."""
        if task == NOTES:
            report = sync_notes(pipeline, self.settings.notes_paths)
            self._count("notes", "notes", report.archived, None)
            return said(report.summary())
        if task.kind == "maildir":
            return self._run_maildir(pipeline, task.source)
        if task.kind == "imap":
            return self._run_imap(pipeline, task)
        return None

    def _run_maildir(self, pipeline: Pipeline, name: str) -> Reply | None:
        lines = []
        for source in self.settings.maildir_sources:
            if source.name == name:
                mail = sync_maildir(pipeline, source, self.stopping)
                self._count(source.name, "maildir", mail.archived, None)
                lines.append(said(mail.summary()))
        return Reply.joined(lines) if lines else None

    def _run_imap(self, pipeline: Pipeline, task: Task) -> Reply | None:
        account = next((a for a in self.settings.imap if a.name == task.source), None)
        if account is None:
            return None
        folders = ["INBOX"] if task.inbox_only else None
        try:
            mail = sync_imap(pipeline, account, folders=folders, stop=self.stopping)
        except SourceError as exc:
            self.log.error("imap sync failed", account=account.name, reason=str(exc))
            self._count(account.name, "imap", 0, str(exc))
            return error(*describe(exc))
        self._count(account.name, "imap", mail.archived, None)
        if mail.archived:
            self.log.info("mail archived", account=account.name, count=mail.archived)
        return said(mail.summary())

    def _count(self, name: str, kind: str, archived: int, error: str | None) -> None:
        entry = self.status.source(name, kind)
        now = datetime.now(UTC)
        with self.status.lock:
            today = now.date().isoformat()
            if entry.day != today:
                entry.day, entry.items_today = today, 0
            entry.items_today += archived
            entry.last_error = error
            if error is None:
                entry.last_sync = now.isoformat()

    # sync requests ------------------------------------------------------------------------

    def answer_sync(self, call: SyncCall) -> Reply:
        """`corrlog sync`, run by the writer in its next pass: the CLI's output once it ends.

        Called on a server thread, which only waits. A fallback (the client syncs itself)
        whenever the client's CLI might load other settings than this daemon runs with.
        """
        settings = self.settings
        if not self._same_settings(call, settings):
            return Reply(fallback=True)
        try:
            settings.check_source(call.source)
        except UsageError as exc:
            return error(*describe(exc))
        request = SyncRequest(sync_tasks(settings, call.source), settings)
        if not self._submit(request):
            return Reply(fallback=True)
        return request.wait()

    def _same_settings(self, call: SyncCall, settings: Settings) -> bool:
        """The client's config file and variables are this daemon's, and the file still
        says what it said when these settings were loaded from it."""
        if self._config_path is None or call.environ != self._settings_environ:
            return False
        if Path(call.config).resolve() != self._config_path.resolve():
            return False
        try:
            fresh = self._load_settings()
        except CorrlogError:
            return False
        return fresh.model_dump() == settings.model_dump()

    def _submit(self, request: SyncRequest) -> bool:
        """Queue a sync request for the writer; False once the daemon is on its way out."""
        with self._requests_lock:
            if self._closed:
                return False
            self._waiting.add(request)
        self.queue.put(request)
        return True

    def _answer(
        self,
        request: SyncRequest | None,
        said: Mapping[Task, Reply],
        failure: Reply | None,
    ) -> None:
        if request is None:
            return
        request.finish(self._reply(request, said, failure))
        with self._requests_lock:
            self._waiting.discard(request)

    def _reply(
        self,
        request: SyncRequest,
        said: Mapping[Task, Reply],
        failure: Reply | None,
    ) -> Reply:
        """What the CLI would have printed: each task's lines until the pass failed, if it did,
        then the error. A fallback when the pass may have stopped short or settings changed."""
        if self.stopping.is_set() or request.settings is not self.settings:
            return Reply(fallback=True)
        parts = []
        for task in request.tasks:
            if task not in said:
                break
            parts.append(said[task])
        if failure is not None:
            return Reply.joined([*parts, failure])
        if len(parts) < len(request.tasks):
            return Reply(fallback=True)  # a task failed on a bug (logged); the CLI shows it
        return Reply.joined(parts)

    def _close_requests(self) -> None:
        """Take no more sync requests; those still waiting are told to sync themselves."""
        with self._requests_lock:
            self._closed = True
            waiting, self._waiting = self._waiting, set()
        for request in waiting:
            request.finish(Reply(fallback=True))

    def _write_status(self, datadir: DataDir) -> None:
        path = datadir.root / "status.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.status.to_json(), indent=2))
            tmp.chmod(0o600)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.log.warning("cannot write status.json", reason=exc.strerror or str(exc))

    # watchers -----------------------------------------------------------------------------

    def _start_watchers(self) -> None:
        settings = self.settings
        self._notes = NotesWatcher(
            settings.notes_paths, settings.daemon.debounce, self._notes_changed
        )
        self._notes.start()
        for account in settings.imap:
            self._start_idle(account.name)
        self._timer_stop = threading.Event()
        self._timers = [
            self._every(settings.daemon.poll_interval.total_seconds(), self._poll, "corrlog-poll"),
            self._every(
                settings.daemon.check_interval.total_seconds(),
                lambda: self.queue.put(FLAGS),
                "corrlog-flags",
            ),
        ]

    def _start_idle(self, name: str) -> None:
        account = next(a for a in self.settings.imap if a.name == name)
        watcher = IdleWatcher(
            account, self._mail_arrived, self._connection, self.settings.daemon.idle_refresh
        )
        self._idle[name] = watcher
        watcher.start()

    def _every(self, seconds: float, action: Callable[[], None], name: str) -> threading.Thread:
        stop = self._timer_stop

        def loop() -> None:
            while not stop.wait(seconds):
                action()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        return thread

    def _stop_watchers(self) -> None:
        self._timer_stop.set()
        for watcher in self._idle.values():
            watcher.stop()
        if self._notes is not None:
            self._notes.stop()
        for thread in [*self._idle.values(), *self._timers]:
            thread.join(timeout=3)
        self._idle.clear()
        self._timers = []

    def _poll(self) -> None:
        for task in self._all_sources():
            self.queue.put(task)

    def _notes_changed(self, paths: set[str]) -> None:
        self.log.debug("notes changed", count=len(paths))
        self.queue.put(NOTES)

    def _mail_arrived(self, account: str, catch_up: bool) -> None:
        self.queue.put(Task("imap", account, inbox_only=not catch_up))

    def _connection(self, account: str, connected: bool, error: str | None) -> None:
        entry = self.status.source(account, "imap")
        with self.status.lock:
            entry.connected = connected
            if error:
                entry.last_error = error

    def _reload(self) -> None:
        try:
            fresh = self._load_settings()
        except CorrlogError as exc:
            self.log.error("config reload failed; keeping the old config", reason=str(exc))
            return
        old = self.settings
        if (fresh.data_dir, fresh.index.engine) != (old.data_dir, old.index.engine):
            self.log.warning(
                "data_dir and [index] engine take effect when corrlog run restarts; "
                "keeping the running ones",
                data_dir=str(old.data_dir),
                engine=old.index.engine,
            )
            fresh = fresh.model_copy(update={"data_dir": old.data_dir, "index": old.index})
        self._stop_watchers()
        self.settings = fresh
        self._start_watchers()
        self.log.info("config reloaded", imap=[a.name for a in fresh.imap])


def _order(task: Task) -> tuple[int, str]:
    rank = {"notes": 0, "maildir": 1, "imap": 2, "flags": 3}
    return (rank.get(task.kind, 9), task.source)


def status_path(data_dir: Path) -> Path:
    """Where the daemon writes its status."""
    return data_dir / "status.json"
