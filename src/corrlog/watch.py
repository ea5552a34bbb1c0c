"""Watching notes folders: watchdog events, filtered and debounced per path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from corrlog.logging import get_logger
from corrlog.sources.notes import is_note_name


class Debouncer:
    """Collect paths; call `fire(paths)` once every path has been quiet for `delay` seconds."""

    def __init__(self, delay: float, fire: Callable[[set[str]], None]) -> None:
        self.delay = delay
        self._fire = fire
        self._pending: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="corrlog-debounce", daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread (pending paths are dropped; a restart scan picks them up)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

    def touch(self, path: str) -> None:
        """Note an event on `path` now."""
        with self._cond:
            self._pending[path] = time.monotonic()
            self._cond.notify_all()

    def _due(self, now: float) -> tuple[set[str], float | None]:
        ready = {p for p, t in self._pending.items() if now - t >= self.delay}
        for path in ready:
            del self._pending[path]
        wait = min((self.delay - (now - t) for t in self._pending.values()), default=None)
        return ready, wait

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                ready, wait = self._due(time.monotonic())
                if not ready:
                    self._cond.wait(timeout=wait)
                    continue
            self._fire(ready)


_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


class _Handler(FileSystemEventHandler):
    def __init__(self, debouncer: Debouncer) -> None:
        self._debouncer = debouncer

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READ_ONLY_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else str(raw)
            if path and (event.is_directory or is_note_name(Path(path).name)):
                self._debouncer.touch(path)


class NotesWatcher:
    """One observer over every notes folder; falls back to polling when inotify runs out."""

    def __init__(
        self, roots: Iterable[Path], delay: float, fire: Callable[[set[str]], None]
    ) -> None:
        self.roots = [r for r in roots if r.is_dir()]
        self.debouncer = Debouncer(delay, fire)
        self.observer: BaseObserver | None = None

    def start(self) -> None:
        """Start watching (recursively)."""
        self.debouncer.start()
        try:
            self.observer = self._start(Observer())
        except OSError as exc:
            get_logger(source="notes").warning(
                "inotify unavailable (watch limit reached?); polling notes instead",
                reason=exc.strerror or str(exc),
                hint="raise fs.inotify.max_user_watches",
            )
            self.observer = self._start(PollingObserver(timeout=2))

    def _start(self, observer: BaseObserver) -> BaseObserver:
        handler = _Handler(self.debouncer)
        for root in self.roots:
            observer.schedule(handler, str(root), recursive=True)
        observer.start()
        return observer

    def stop(self) -> None:
        """Stop watching and join the threads."""
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=3)
        self.debouncer.stop()
