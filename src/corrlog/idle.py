"""IMAP IDLE on INBOX, one thread per account: wake the daemon when mail arrives; reconnect with backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from corrlog.backoff import Backoff
from corrlog.config import ImapAccount
from corrlog.errors import SourceError
from corrlog.logging import get_logger
from corrlog.sources.imap import ImapConnection

CHECK_SECONDS = 1.0
SUSPEND_JUMP = 30.0
_FAST_EMPTY = 0.05
HEALTHY_SECONDS = 60.0


class ConnectionDead(Exception):
    """The IDLE connection stopped working and must be replaced."""


class IdleWatcher(threading.Thread):
    """Keep an IDLE on INBOX; call `wake(account, catch_up)` on new mail or after reconnecting."""

    def __init__(
        self,
        account: ImapAccount,
        wake: Callable[[str, bool], None],
        report: Callable[[str, bool, str | None], None],
        refresh: timedelta,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name=f"corrlog-idle-{account.name}", daemon=True)
        self.account = account
        self._wake = wake
        self._report = report
        self._refresh = refresh.total_seconds()
        self._backoff = backoff or Backoff(initial=1.0, maximum=300.0)
        self._halt = threading.Event()
        self._log = get_logger(source="imap", account=account.name)

    def stop(self) -> None:
        """Ask the thread to finish (it notices within CHECK_SECONDS)."""
        self._halt.set()

    def should_keep_running(self) -> bool:
        """Whether stop() has not been called."""
        return not self._halt.is_set()

    def run(self) -> None:
        """Connect, IDLE, and reconnect after any failure until stopped."""
        first = True
        while self.should_keep_running():
            connected_at: float | None = None
            try:
                with ImapConnection(self.account) as conn:
                    connected_at = time.monotonic()
                    self._report(self.account.name, True, None)
                    if not first:
                        self._wake(self.account.name, True)
                    first = False
                    self._idle_loop(conn)
            except Exception as exc:  # SourceError, ConnectionDead, OSError — or a bug: never die
                if not isinstance(exc, SourceError | ConnectionDead | OSError):
                    self._log.exception("unexpected error in the IDLE thread")
                if connected_at is not None and time.monotonic() - connected_at > HEALTHY_SECONDS:
                    self._backoff.reset()
                self._report(self.account.name, False, str(exc))
                delay = self._backoff.next_delay()
                self._log.warning(
                    "imap connection lost; reconnecting with backoff",
                    reason=str(exc),
                    retry_in=round(delay, 1),
                    attempt=self._backoff.attempts,
                )
                self._halt.wait(delay)
        self._report(self.account.name, False, None)

    def _idle_loop(self, conn: ImapConnection) -> None:
        client = conn.client
        conn.select("INBOX")
        if b"IDLE" not in client.capabilities():
            self._log.info("server has no IDLE; INBOX is polled")
            self._halt.wait()
            return
        while self.should_keep_running():
            self._one_idle(client)

    def _one_idle(self, client: Any) -> None:
        """One IDLE of at most `refresh` seconds (RFC 2177: re-issue well under 29 minutes)."""
        try:
            client.idle()
        except Exception as exc:
            raise ConnectionDead(f"IDLE refused: {exc.__class__.__name__}") from None
        started = time.monotonic()
        fast_empty = 0
        try:
            while self.should_keep_running() and time.monotonic() - started < self._refresh:
                before, before_wall = time.monotonic(), time.time()
                responses = client.idle_check(timeout=CHECK_SECONDS)
                elapsed = time.monotonic() - before
                if (time.time() - before_wall) - elapsed > SUSPEND_JUMP:
                    raise ConnectionDead("clock jumped (suspend/resume)")
                if responses:
                    fast_empty = 0
                    if any(b"EXISTS" in r or b"RECENT" in r for r in map(_flat, responses)):
                        self._wake(self.account.name, False)
                elif elapsed < _FAST_EMPTY:
                    # imapclient returns [] at once after the server died: never spin on it.
                    fast_empty += 1
                    if fast_empty >= 3:
                        raise ConnectionDead("server stopped answering during IDLE")
        except ConnectionDead:
            raise
        except Exception as exc:
            raise ConnectionDead(f"IDLE failed: {exc.__class__.__name__}") from None
        try:
            client.idle_done()
        except Exception as exc:
            raise ConnectionDead(f"ending IDLE failed: {exc.__class__.__name__}") from None


def _flat(response: Any) -> bytes:
    if isinstance(response, tuple):
        return b" ".join(_flat(part) for part in response)
    if isinstance(response, bytes):
        return response
    return str(response).encode()
