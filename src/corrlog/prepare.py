"""Parsing and classifying mail in worker processes, so a large import uses every core."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

from corrlog.ingest_mail import Prepared, prepare_mail
from corrlog.logging import get_logger
from corrlog.rules.classify import ClassifyRules

# Below this many messages in a pass, starting workers (a fresh interpreter each, ~0.3 s)
# costs more than it saves: the daemon's everyday passes stay in-process.
POOL_THRESHOLD = 1_000
CHUNK = 32  # messages per task sent to a worker
ORPHAN_CHECK = 1.0  # seconds between a worker's checks that its parent is alive

_context: tuple[frozenset[str], ClassifyRules] | None = None


def _init_worker(
    parent: int, me: frozenset[str], agreement: tuple[str, ...], update: tuple[str, ...]
) -> None:
    global _context
    _context = (me, ClassifyRules(agreement=agreement, update=update))
    # Ctrl-C and systemd's SIGTERM reach the whole group: the parent decides when workers end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker within a second of its parent's death (kill -9 leaves no orphans)."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK)
    os._exit(0)


def _prepare_in_worker(raw: bytes) -> Prepared:
    assert _context is not None, "worker not initialised"
    me, rules = _context
    return prepare_mail(raw, me=me, rules=rules)


def worker_count() -> int:
    """How many workers: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Preparer:
    """Prepares batches of messages, in worker processes when it has them, else in-process."""

    me: frozenset[str]
    rules: ClassifyRules
    workers: int = 0
    _pool: ProcessPoolExecutor | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the workers (spawned, not forked: the daemon has threads)."""
        if self.workers < 1:
            return
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(), self.me, self.rules.agreement, self.rules.update),
        )

    def close(self) -> None:
        """Stop the workers: running tasks finish (one chunk at most), queued ones are dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, raws: list[bytes]) -> Callable[[], list[Prepared]]:
        """Hand messages to the workers now; the callable returns them parsed, in order."""
        if self._pool is None or len(raws) < 2:
            return lambda: self._inline(raws)
        try:
            results = self._pool.map(_prepare_in_worker, raws, chunksize=CHUNK)
        except BrokenProcessPool:
            return self._fallback(raws)

        def collect() -> list[Prepared]:
            try:
                return list(results)
            except BrokenProcessPool:
                return self._fallback(raws)()

        return collect

    def _fallback(self, raws: list[bytes]) -> Callable[[], list[Prepared]]:
        get_logger().warning("parse workers died; parsing in-process from here on")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return lambda: self._inline(raws)

    def _inline(self, raws: list[bytes]) -> list[Prepared]:
        return [prepare_mail(raw, me=self.me, rules=self.rules) for raw in raws]


@contextmanager
def preparer(
    me: frozenset[str], rules: ClassifyRules, expected: int, workers: int | None = None
) -> Iterator[Preparer]:
    """A Preparer for a pass of `expected` messages: with workers only when it pays."""
    count = worker_count() if workers is None else workers
    use = count if expected >= POOL_THRESHOLD and count > 1 else 0
    prep = Preparer(me, rules, use)
    prep.start()
    try:
        yield prep
    finally:
        prep.close()
