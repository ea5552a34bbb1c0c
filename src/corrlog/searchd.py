"""The daemon's socket server: answers `corrlog search` and `corrlog sync` over a Unix socket in the data dir."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, TypeGuard

from corrlog.errors import error_line
from corrlog.logging import get_logger
from corrlog.searchproto import MAX_REQUEST, PROTOCOL, dumps, loads

READ_TIMEOUT = 2.0  # seconds a client has to send its request, and to take the reply
WORKERS = 4  # connections served at once; searches themselves run one at a time
_UCRED = 12  # sizeof(struct ucred): pid, uid, gid
_DAEMON_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


@dataclass(frozen=True, slots=True)
class Caller:
    """Where the search output goes: colour or not, the terminal width, the UTC offset."""

    color: bool
    width: int
    utc_offset: int  # seconds east of UTC, as datetime.now().astimezone() sees it

    @property
    def tz(self) -> tzinfo:
        """The caller's local time zone (a fixed offset, as the CLI's local_tz())."""
        return timezone(timedelta(seconds=self.utc_offset))


@dataclass(frozen=True, slots=True)
class Reply:
    """What the client prints and exits with; `fallback` asks it to run the search itself."""

    stdout: str = ""
    stderr: str = ""
    exit: int = 0
    fallback: bool = False

    def encode(self) -> bytes:
        """The reply as one JSON line."""
        if self.fallback:
            return dumps({"fallback": True})
        return dumps({"stdout": self.stdout, "stderr": self.stderr, "exit": self.exit})

    @classmethod
    def joined(cls, parts: Iterable[Reply]) -> Reply:
        """The replies one after the other; the exit code is the first non-zero one."""
        parts = list(parts)
        return cls(
            stdout="".join(p.stdout for p in parts),
            stderr="".join(p.stderr for p in parts),
            exit=next((p.exit for p in parts if p.exit), 0),
        )


@dataclass(frozen=True, slots=True)
class SearchCall:
    """`corrlog search ARGV`, printed for `caller`."""

    argv: list[str]
    caller: Caller


@dataclass(frozen=True, slots=True)
class SyncCall:
    """`corrlog sync [--source SOURCE]`, with what the client's settings would depend on."""

    source: str | None
    config: str  # the config file the client's CLI would read (absolute)
    environ: dict[str, str]  # the client's searchproto.settings_environ()


Answer = Callable[[list[str], Caller], Reply]
SyncAnswer = Callable[[SyncCall], Reply]


def error(message: str, code: int) -> Reply:
    """A one-line error reply, formatted like the CLI's."""
    return Reply(stderr=error_line(message) + "\n", exit=code)


def said(line: str) -> Reply:
    """A reply that prints one line on stdout."""
    return Reply(stdout=line + "\n")


def parse_request(data: bytes) -> SearchCall | SyncCall | Reply:
    """The command a request asks for, or the reply refusing it."""
    try:
        value = loads(data)
    except ValueError:
        return error("the search request is not valid JSON", 2)
    if not isinstance(value, dict) or value.get("protocol") != PROTOCOL:
        return Reply(fallback=True)  # another corrlog version: let the client do the work
    if value.get("command") == "search":
        return _search_call(value)
    if value.get("command") == "sync":
        return _sync_call(value)
    return error("the request names no command the daemon answers", 2)


def _search_call(value: dict[str, Any]) -> SearchCall | Reply:
    argv, isatty, width = value.get("argv"), value.get("isatty"), value.get("width")
    no_color, offset = value.get("no_color"), value.get("utc_offset")
    if (
        not _strings(argv)
        or not isinstance(isatty, bool)
        or not isinstance(no_color, bool)
        or type(width) is not int
        or type(offset) is not int
        or not -86_400 < offset < 86_400
    ):
        return error("the search request is malformed", 2)
    return SearchCall(argv, Caller(isatty and not no_color, max(1, min(width, 10_000)), offset))


def _sync_call(value: dict[str, Any]) -> SyncCall | Reply:
    argv, config, environ = value.get("argv"), value.get("config"), value.get("environ")
    if (
        not _strings(argv)
        or not (argv == [] or (len(argv) == 2 and argv[0] == "--source" and argv[1]))
        or not isinstance(config, str)
        or not Path(config).is_absolute()
        or not isinstance(environ, dict)
        or not _strings(list(environ.values()))
    ):
        return error("the sync request is malformed", 2)
    return SyncCall(argv[1] if argv else None, config, environ)


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class SearchServer:
    """Listens on a Unix socket (0600, same uid only); one answer per connection."""

    def __init__(self, path: Path, answer: Answer, answer_sync: SyncAnswer | None = None) -> None:
        self.path = path
        self._answer = answer
        self._answer_sync = answer_sync
        self._answer_lock = threading.Lock()  # the index searcher is not assumed thread-safe
        self._slots = threading.BoundedSemaphore(WORKERS)
        # A sync holds its connection until the writer's pass ends: one slot stays for searches.
        self._sync_slots = threading.BoundedSemaphore(WORKERS - 1)
        self._closing = threading.Event()
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None
        self.log = get_logger(component="searchd", socket=str(path))

    def start(self) -> bool:
        """Listen and serve in a thread; False (logged) when the socket cannot be made."""
        if not hasattr(socket, "SO_PEERCRED"):  # no way to check who asks (not Linux)
            self.log.info("search server not started: the system cannot name a socket's peer")
            return False
        try:
            self._listener = self._listen()
        except OSError as exc:
            self.log.warning(
                "search server not started; searches run in their own process",
                reason=exc.strerror or str(exc),
            )
            return False
        self._thread = threading.Thread(target=self._accept_loop, name="corrlog-searchd")
        self._thread.start()
        self.log.info("search server listening")
        return True

    def stop(self) -> None:
        """Stop accepting, wait briefly for answers in flight, remove the socket."""
        self._closing.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._listener is not None:
            self._listener.close()
        self._remove_socket()
        self._drain(deadline=time.monotonic() + 1.0)
        self.log.debug("search server stopped")

    def _drain(self, deadline: float) -> None:
        """Let answers in flight finish (they run in daemon threads: never past `deadline`)."""
        taken = 0
        while taken < WORKERS and self._slots.acquire(
            timeout=max(0.0, deadline - time.monotonic())
        ):
            taken += 1
        for _ in range(taken):
            self._slots.release()

    def _wake(self) -> None:
        """Connect once so the blocked accept() returns (shutdown() does not wake it here)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(OSError), probe:
            probe.settimeout(0.5)
            probe.connect(str(self.path))

    def _listen(self) -> socket.socket:
        self._clear_stale()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            self.path.chmod(0o600)
            self._inode = self.path.stat().st_ino
            listener.listen(16)
            listener.settimeout(2.0)  # a backstop: stop() wakes accept() at once by connecting
        except OSError:
            listener.close()
            raise
        return listener

    def _clear_stale(self) -> None:
        """Remove a socket file no process listens on; refuse to touch anything else."""
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"{self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except ConnectionRefusedError:
            self.path.unlink()  # the daemon that made it is gone
            return
        finally:
            probe.close()
        raise OSError(f"another corrlog daemon is answering searches on {self.path}")

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.lstat().st_ino == self._inode:
                self.path.unlink()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        # A signal delivered to this thread (or the answer threads it starts, which inherit the
        # mask) would not wake the main thread, and SIGTERM would wait for its next wake-up.
        signal.pthread_sigmask(signal.SIG_BLOCK, _DAEMON_SIGNALS)
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._closing.is_set():
                    self.log.warning("search socket accept failed", reason=str(exc))
                    self._closing.wait(1.0)  # e.g. out of file descriptors: do not spin
                continue
            if self._closing.is_set():
                conn.close()
                return
            if not self._wait_for_slot():
                conn.close()
                return
            threading.Thread(
                target=self._serve, args=(conn,), name="corrlog-search", daemon=True
            ).start()

    def _wait_for_slot(self) -> bool:
        while not self._slots.acquire(timeout=1.0):
            if self._closing.is_set():
                return False
        return True

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            with conn:
                conn.settimeout(READ_TIMEOUT)
                uid = _peer_uid(conn)
                if uid != os.getuid():
                    self.log.warning("search request from another user refused", uid=uid)
                    return
                reply = self._reply(_read_request(conn))
                conn.settimeout(READ_TIMEOUT)
                conn.sendall(reply.encode())
                self.log.debug(
                    "request served", exit=reply.exit, ms=round(1000 * (time.monotonic() - started))
                )
        except OSError as exc:  # the client went away or was too slow: nothing to tell it
            self.log.debug("request connection dropped", reason=str(exc))
        finally:
            self._slots.release()

    def _reply(self, data: bytes | None) -> Reply:
        if data is None:
            return error(f"the search request is larger than {MAX_REQUEST} bytes", 2)
        parsed = parse_request(data)
        if isinstance(parsed, Reply):
            return parsed
        if isinstance(parsed, SyncCall):
            return self._sync(parsed)
        try:
            with self._answer_lock:
                return self._answer(parsed.argv, parsed.caller)
        except Exception:  # a bug must not reach the client as a traceback, nor stop the server
            self.log.exception("search failed in the daemon")
            return error("the daemon failed to answer this search; its log has the details", 1)

    def _sync(self, call: SyncCall) -> Reply:
        """The writer's answer, however long its pass takes; else the client syncs itself."""
        if self._answer_sync is None or not self._sync_slots.acquire(blocking=False):
            return Reply(fallback=True)
        try:
            return self._answer_sync(call)
        except Exception:  # a bug: the client's own sync says what is wrong, if anything is
            self.log.exception("sync request failed in the daemon")
            return Reply(fallback=True)
        finally:
            self._sync_slots.release()


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED)
    return int.from_bytes(creds[4:8], sys.byteorder)


def _read_request(conn: socket.socket) -> bytes | None:
    """Bytes up to the first newline (or EOF); None when more than MAX_REQUEST arrive.

    The whole request must arrive within READ_TIMEOUT (TimeoutError otherwise).
    """
    deadline = time.monotonic() + READ_TIMEOUT
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the search request did not arrive in time")
        conn.settimeout(remaining)
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST:
            return None
        if b"\n" in chunk:
            return b"".join(chunks)
