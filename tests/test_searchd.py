"""Search through the running daemon: same answers as the CLI, over a private socket, never in the way."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corrlog.searchproto import MAX_REQUEST, PROTOCOL, SOCKET_NAME, dumps, loads
from support.cli import CorrlogHome, Result
from support.daemon import DaemonProcess, wait_for
from support.mail import AGREEMENT_NOTE

pytestmark = pytest.mark.slow

DAEMON = "corrlog: search answered by the daemon\n"
HERE = "corrlog: search answered by this process\n"

NOTES = {
    "acme/agreement.md": AGREEMENT_NOTE,
    "acme/invoice.md": "# Invoice 7\nThe okapi invoice for milestone two is attached.\n",
    "acme/call.md": "# Call notes\nDiscussed the okapi mascot and the \x1b[31mcolour\x1b[0m scheme.\n",
    "other/idea.md": "# Idea\nAn okapi-free idea.\n",
}

SEARCHES = [
    ("okapi",),
    ("okapi", "--format", "json"),
    ("okapi", "--format", "ids"),
    ("okapi", "--sort", "date", "--limit", "1"),
    ("--contract", "acme-site", "--format", "json"),
    ("okapi", "--since", "2020-01-01", "--until", "2099-12-31"),
    ("nothingmatchesthis",),
    ("nothingmatchesthis", "--format", "ids"),
]
BAD = [
    ("foo:bar",),
    ('"unbalanced',),
    ("x", "--limit", "0"),
    ("x", "--kind", "nonsense"),
    ("x", "--since", "garbage"),
    ("x", "--no-such-option"),
]


def search(home: CorrlogHome, *args: str, **env: str) -> Result:
    """`corrlog search ARGS`, saying on stderr which path answered."""
    return home.run("search", *args, env=home.env(CORRLOG_DEBUG_SEARCH_PATH="1", **env))


def without_path_line(result: Result) -> tuple[int, bytes, str]:
    """The result with the debug line about the path removed."""
    return result.code, result.stdout, result.stderr.replace(DAEMON, "").replace(HERE, "")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CorrlogHome, dict]]:
    """A synced home, every search's no-daemon answer, then a running daemon."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("searchd"))
    for relative, text in NOTES.items():
        home.note(relative, text)
    home.ok("sync")
    before = {}
    for args in [*SEARCHES, *BAD, ("okapi", "--format", "table")]:
        result = search(home, *args, COLUMNS="61")
        assert HERE in result.stderr
        before[args] = without_path_line(result)
    daemon = DaemonProcess(home).start()
    try:
        yield home, before
    finally:
        assert daemon.stop() == 0


def test_the_daemon_answers_with_byte_identical_output(served: tuple[CorrlogHome, dict]) -> None:
    """Table, JSON and ids output, hits or none: the same bytes and exit code through the socket."""
    home, before = served
    for args in SEARCHES:
        result = search(home, *args, COLUMNS="61")
        assert DAEMON in result.stderr, (args, result.stderr)
        assert without_path_line(result) == before[args], args


def test_errors_are_the_same_line_and_exit_code(served: tuple[CorrlogHome, dict]) -> None:
    """A bad query, a bad option value or an unknown option: same message, same exit code."""
    home, before = served
    for args in BAD:
        result = search(home, *args, COLUMNS="61")
        assert DAEMON in result.stderr, (args, result.stderr)
        assert without_path_line(result) == before[args], args
        assert result.code == 2
        assert "Traceback" not in result.stderr


def _on_a_terminal(home: CorrlogHome, *args: str, **env: str) -> bytes:
    """What `corrlog search ARGS` prints on a pseudo-terminal (colour, width from the tty)."""
    leader, follower = pty.openpty()
    argv = [sys.executable, "-m", "corrlog", "--config", str(home.config), "search", *args]
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=home.env(**env))
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(timeout=60)
    assert proc.stderr is not None
    path = proc.stderr.read().decode()
    proc.stderr.close()
    return path.encode() + b"|" + b"".join(chunks)


def test_colour_and_width_follow_the_client_terminal(served: tuple[CorrlogHome, dict]) -> None:
    """On a terminal the daemon's table has the same colours and cut as the CLI's; NO_COLOR too."""
    home, _ = served
    sock = home.data / SOCKET_NAME
    for env in ({"COLUMNS": "57"}, {"COLUMNS": "57", "NO_COLOR": "1"}):
        debug = {"CORRLOG_DEBUG_SEARCH_PATH": "1", **env}
        through = _on_a_terminal(home, "okapi", **debug)
        sock.rename(sock.with_name("parked.sock"))
        try:
            alone = _on_a_terminal(home, "okapi", **debug)
        finally:
            sock.with_name("parked.sock").rename(sock)
        assert through.startswith(DAEMON.encode()) and alone.startswith(HERE.encode())
        assert through.split(b"|", 1)[1] == alone.split(b"|", 1)[1]
        assert (b"\x1b[" in through) is ("NO_COLOR" not in env)


def test_help_and_unknown_global_options_take_the_cli_path(
    served: tuple[CorrlogHome, dict],
) -> None:
    """`search --help` and `-v search` are answered by the full CLI, as before."""
    home, _ = served
    helped = search(home, "--help")
    assert helped.code == 0 and "Example" in helped.out and DAEMON not in helped.stderr
    verbose = home.run("-v", "search", "okapi", env=home.env(CORRLOG_DEBUG_SEARCH_PATH="1"))
    assert verbose.code == 0 and "okapi" in verbose.out and DAEMON not in verbose.stderr


def test_the_socket_is_private(served: tuple[CorrlogHome, dict]) -> None:
    """The socket is 0600 in the 0700 data dir."""
    home, _ = served
    mode = (home.data / SOCKET_NAME).lstat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(home.data.stat().st_mode) == 0o700


def _raw(path: Path, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    reply = loads(data)
    assert isinstance(reply, dict)
    return reply


def _request(argv: list[str]) -> bytes:
    facts = {"isatty": False, "width": 80, "no_color": False, "utc_offset": 0}
    return dumps({"protocol": PROTOCOL, "command": "search", "argv": argv, **facts})


def test_an_oversized_request_gets_a_clear_error_and_the_server_keeps_serving(
    served: tuple[CorrlogHome, dict],
) -> None:
    """More than 64 KB: one-line error, exit 2; the next request is answered normally."""
    home, _ = served
    path = home.data / SOCKET_NAME
    huge = _request(["x" * (MAX_REQUEST + 10)])
    reply = _raw(path, huge)
    assert reply == {
        "stdout": "",
        "stderr": f"corrlog: error: the search request is larger than {MAX_REQUEST} bytes\n",
        "exit": 2,
    }
    assert _raw(path, b"not json\n")["exit"] == 2
    assert _raw(path, dumps({"protocol": PROTOCOL + 1}))["fallback"] is True
    fine = _raw(path, _request(["okapi", "--format", "ids"]))
    assert fine["exit"] == 0 and len(fine["stdout"].split()) == 3
    assert DAEMON in search(home, "okapi").stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_a_client_of_another_user_is_refused(served: tuple[CorrlogHome, dict]) -> None:
    """Even if the socket were reachable, a peer with another uid gets no answer."""
    home, _ = served
    path = home.data / SOCKET_NAME
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 another user may run")
    shut = [p for p in reversed(path.parents) if not p.stat().st_mode & 0o001]
    modes = [(p, stat.S_IMODE(p.stat().st_mode)) for p in (*shut, path)]
    probe = (
        "import socket,sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])\n"
        "try:\n"
        "    s.sendall(sys.argv[2].encode()); s.shutdown(socket.SHUT_WR)\n"
        "    print(repr(s.recv(65536)))\n"
        "except (ConnectionResetError, BrokenPipeError):\n"
        "    print('reset')\n"
    )
    try:
        for p, mode in modes:
            p.chmod(mode | 0o005 if p.is_dir() else 0o666)
        done = subprocess.run(
            [python, "-c", probe, str(path), _request(["okapi"]).decode()],
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        for p, mode in modes:
            p.chmod(mode)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("b''", "reset")  # closed unanswered
    assert "search request from another user refused" in (home.root / "daemon.log").read_text()


def test_a_record_synced_after_the_server_started_is_found(
    served: tuple[CorrlogHome, dict],
) -> None:
    """A note written while the daemon runs is found through the socket once synced."""
    home, _ = served
    home.note("acme/later.md", "# Later\nA quokka appeared.\n")

    def found() -> bool:
        result = search(home, "quokka", "--format", "ids")
        assert DAEMON in result.stderr, result.stderr
        return result.code == 0 and bool(result.out.strip())

    wait_for(found, 30, "quokka found through the daemon", interval=0.1)


def test_a_stale_socket_without_a_daemon_falls_back(home: CorrlogHome) -> None:
    """A socket file left by a killed daemon: search still works, in its own process."""
    home.note("acme/invoice.md", NOTES["acme/invoice.md"])
    home.ok("sync")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(home.data / SOCKET_NAME))
    stale.close()  # the file stays; nobody listens
    result = search(home, "okapi", "--format", "ids")
    assert result.code == 0, result.stderr
    assert HERE in result.stderr
    assert len(result.out.split()) == 1


def test_sigterm_removes_the_socket_promptly_even_with_a_silent_client(
    home: CorrlogHome,
) -> None:
    """A connected client that sends nothing does not hold up SIGTERM; the socket is removed."""
    home.note("acme/invoice.md", NOTES["acme/invoice.md"])
    (home.data / SOCKET_NAME).parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(home.data / SOCKET_NAME))
    stale.close()  # a stale socket at start is replaced
    daemon = DaemonProcess(home).start()
    path = home.data / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(path))
        start = time.monotonic()
        daemon.signal(signal.SIGTERM)
        wait_for(lambda: not path.exists(), 5, "socket removed")
        removed = time.monotonic() - start
        code = daemon.stop(timeout=10)
        exited = time.monotonic() - start
    print(f"\nsocket removed {removed:.2f}s after SIGTERM, process exited after {exited:.2f}s")
    assert code == 0
    assert removed < 1.0
    assert exited < 5.0
    assert daemon.events("search server listening")


def test_the_lean_client_imports_nothing_heavy(served: tuple[CorrlogHome, dict]) -> None:
    """A search through the daemon loads neither click, pydantic, structlog, whoosh nor re."""
    home, _ = served
    code = (
        "import os, sys\n"
        "from corrlog.entry import via_daemon\n"
        "argv = ['--config', sys.argv[1], 'search', 'okapi', '--format', 'ids']\n"
        "code = via_daemon(argv, os.environ)\n"
        "heavy = ('click', 'pydantic', 'pydantic_settings', 'structlog', 'whoosh', 're', 'json')\n"
        "print(code, sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(home.config)],
        capture_output=True,
        text=True,
        env=home.env(),
        timeout=60,
        check=False,
    )
    assert done.stderr.strip() == "0 []"
    assert len(done.stdout.split()) == 3
