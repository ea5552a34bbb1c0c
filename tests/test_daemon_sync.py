"""`corrlog sync` through the running daemon: the CLI's output, each message archived once, never stuck."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from corrlog.datadir import DataDir
from support.cli import CorrlogHome, Result
from support.daemon import DaemonProcess, count, wait_for
from support.mail import AGREEMENT_NOTE, FRIEND, message, set_me, write_maildir

pytestmark = pytest.mark.slow

DAEMON = "corrlog: sync answered by the daemon\n"
HERE = "corrlog: sync answered by this process\n"
GONE = '\n[[imap]]\nname = "gone"\nhost = "127.0.0.1"\nport = 9\nusername = "x"\npassword = "y"\n'
WAITING = "another corrlog process is writing; waiting"


def sync(home: CorrlogHome, *args: str, **env: str) -> Result:
    """`corrlog sync ARGS`, saying on stderr which path answered."""
    return home.run("sync", *args, env=home.env(CORRLOG_DEBUG_SEARCH_PATH="1", **env))


def start_sync(home: CorrlogHome, *args: str) -> subprocess.Popen[bytes]:
    """`corrlog sync ARGS` in the background, saying which path answered."""
    argv = [sys.executable, "-m", "corrlog", "--config", str(home.config), "sync", *args]
    env = home.env(CORRLOG_DEBUG_SEARCH_PATH="1")
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def finished(proc: subprocess.Popen[bytes], timeout: float = 60) -> Result:
    """The result of a background run, once it has ended."""
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err.decode("utf-8", "replace"))


def path_taken(result: Result) -> tuple[str, tuple[int, bytes, str]]:
    """Which path answered ("daemon" or "here"), and the result without that line."""
    assert (DAEMON in result.stderr) != (HERE in result.stderr), result.stderr
    path = "daemon" if DAEMON in result.stderr else "here"
    return path, (result.code, result.stdout, result.stderr.replace(DAEMON, "").replace(HERE, ""))


def prepared(home: CorrlogHome, config_extra: str = "") -> CorrlogHome:
    """A home with the Acme contract, `me` set, and anything else the config should say."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    set_me(home)
    home.config.write_text(home.config.read_text() + config_extra)
    return home


def deliver(home: CorrlogHome, first: int, clients: int = 10, friends: int = 4) -> None:
    """Client messages (captured) and personal ones (skipped) into the default Maildir."""
    mail = [message(n) for n in range(first, first + clients)]
    mail += [message(n, sender=FRIEND) for n in range(first + clients, first + clients + friends)]
    write_maildir(home.data / "maildir", mail)


def maildir_records(home: CorrlogHome) -> tuple[int, int]:
    """(Maildir records, distinct subjects among them): equal when each was archived once."""
    records = "SELECT COUNT(*) FROM records WHERE source = 'maildir'"
    subjects = "SELECT COUNT(DISTINCT subject) FROM records WHERE source = 'maildir'"
    return count(home, records), count(home, subjects)


@dataclass
class Twins:
    """Two homes with the same sources and messages: one served by a daemon, one not."""

    cli: CorrlogHome
    served: CorrlogHome
    daemon: DaemonProcess

    def both(self, *args: str) -> tuple[Result, Result]:
        """`corrlog sync ARGS` in each: (the CLI's result, the daemon's)."""
        return sync(self.cli, *args), sync(self.served, *args)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    """Twin homes (a contract, the default Maildir, an unreachable IMAP account), both synced
    once; a daemon runs on one of them."""
    cli = prepared(CorrlogHome.create(tmp_path_factory.mktemp("cli")), GONE)
    served = prepared(CorrlogHome.create(tmp_path_factory.mktemp("served")), GONE)
    assert cli.run("sync").code == 3  # the daemon's first pass does the same in its home
    daemon = DaemonProcess(served).start()
    try:
        yield Twins(cli, served, daemon)
    finally:
        assert daemon.stop() == 0


def test_the_daemon_syncs_and_prints_what_the_cli_prints(twins: Twins) -> None:
    """New Maildir messages: the daemon's pass archives each once, and the client prints the
    CLI's lines, error line and exit code; a second sync archives nothing."""
    deliver(twins.cli, 0)
    deliver(twins.served, 0)
    for expected_line in (
        "maildir local: 10 archived, 0 already known, 4 personal skipped",
        "maildir local: 0 archived",
    ):
        here, there = twins.both()
        assert path_taken(here)[0] == "here"
        assert path_taken(there)[0] == "daemon"
        assert path_taken(there)[1] == path_taken(here)[1]
        assert expected_line in there.out
        assert there.code == 3
        assert "corrlog: error: imap account 'gone'" in there.stderr
        assert maildir_records(twins.served) == (10, 10)
    assert there.out.splitlines()[0].startswith("notes: 0 archived, 1 unchanged")


@pytest.mark.parametrize("args", [("--source", "local"), ("--source=notes",), ("--source", "gone")])
def test_one_source_is_synced_alone_as_by_the_cli(twins: Twins, args: tuple[str, ...]) -> None:
    """`--source NAME` (either spelling): only that source's line, the same as the CLI's."""
    here, there = twins.both(*args)
    assert path_taken(here)[0] == "here"
    assert path_taken(there)[0] == "daemon"
    assert path_taken(there)[1] == path_taken(here)[1]
    assert len(there.out.splitlines()) == (0 if "gone" in args else 1)


def test_an_unknown_source_is_the_clis_usage_error(twins: Twins) -> None:
    """`--source nosuch`: the CLI's message naming the configured sources, exit 2."""
    here, there = twins.both("--source", "nosuch")
    assert path_taken(there) == ("daemon", path_taken(here)[1])
    assert there.code == 2
    assert there.stderr.endswith(
        "corrlog: error: no source named 'nosuch'; configured: gone, local, notes\n"
    )


def test_help_and_unusual_options_take_the_cli_path(twins: Twins) -> None:
    """--help, -v and options sync does not know are the full CLI's to handle."""
    helped = sync(twins.served, "--help")
    assert helped.code == 0 and "Examples:" in helped.out and DAEMON not in helped.stderr
    unknown = sync(twins.served, "--no-such-option")
    assert unknown.code == 2 and "No such option" in unknown.stderr
    assert DAEMON not in unknown.stderr
    verbose = twins.served.run("-v", "sync", env=twins.served.env(CORRLOG_DEBUG_SEARCH_PATH="1"))
    assert verbose.code == 3 and "maildir local: 0 archived" in verbose.out
    assert DAEMON not in verbose.stderr


def test_the_lean_client_imports_nothing_heavy(twins: Twins) -> None:
    """A sync through the daemon loads neither click, pydantic, structlog, whoosh nor re."""
    code = (
        "import os, sys\n"
        "from corrlog.entry import via_daemon\n"
        "code = via_daemon(['--config', sys.argv[1], 'sync', '--source', 'local'], os.environ)\n"
        "heavy = ('click', 'pydantic', 'pydantic_settings', 'structlog', 'whoosh', 're', 'json',\n"
        "         'typing')\n"
        "print(code, sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(twins.served.config)],
        capture_output=True,
        text=True,
        env=twins.served.env(),
        timeout=60,
        check=False,
    )
    assert done.stderr.strip() == "0 []"
    assert done.stdout.startswith("maildir local: 0 archived")


def test_syncs_at_once_are_passes_in_turn(twins: Twins) -> None:
    """Syncs sent together run a pass each, as CLI runs would: one counts the new messages,
    the others none, and each message is archived once."""
    before = maildir_records(twins.served)[0]
    deliver(twins.served, 100, clients=5, friends=0)
    clients = [start_sync(twins.served, "--source", "local") for _ in range(3)]
    results = [finished(p) for p in clients]
    assert all(path_taken(r) == ("daemon", (0, r.stdout, "")) for r in results), results
    archived = sorted(int(r.out.removeprefix("maildir local: ").split()[0]) for r in results)
    assert archived == [0, 0, 5]
    assert maildir_records(twins.served) == (before + 5, before + 5)


def test_without_a_daemon_the_cli_syncs(home: CorrlogHome) -> None:
    """No daemon, or one stopped before the sync: the CLI syncs, with the same output."""
    prepared(home)
    deliver(home, 0)
    assert path_taken(sync(home))[0] == "here"
    DaemonProcess(home).start().stop()
    assert not (home.data / "search.sock").exists()
    deliver(home, 50)
    result = sync(home)
    assert path_taken(result)[0] == "here"
    assert "maildir local: 10 archived, 0 already known, 4 personal skipped" in result.out
    assert maildir_records(home) == (20, 20)


def test_another_config_or_environment_is_synced_by_the_cli(home: CorrlogHome) -> None:
    """A config edited since the daemon loaded it, or other CORRLOG_* variables: the CLI syncs
    (it may load other settings); after SIGHUP the daemon answers again."""
    daemon = DaemonProcess(prepared(home)).start()
    try:
        assert path_taken(sync(home))[0] == "daemon"
        assert path_taken(sync(home, CORRLOG_CAPTURE="all"))[0] == "here"
        text = home.config.read_text()
        home.config.write_text(text.replace('capture = "clients"', "# the default capture"))
        assert path_taken(sync(home))[0] == "daemon"  # the same settings
        home.config.write_text(text.replace('capture = "clients"', 'capture = "all"'))
        assert path_taken(sync(home))[0] == "here"
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("config reloaded"), 30, "config reloaded")
        assert path_taken(sync(home))[0] == "daemon"
    finally:
        assert daemon.stop() == 0


def _waiting_on_the_lock(home: CorrlogHome, daemon: DaemonProcess) -> subprocess.Popen[bytes]:
    """A sync sent to the daemon, whose pass waits for the lock this test holds."""
    client = start_sync(home)
    wait_for(lambda: daemon.events(WAITING), 30, "the daemon's pass waiting for the lock")
    assert client.poll() is None
    return client


@pytest.mark.parametrize("ending", ["sigterm", "sigkill"])
def test_a_sync_waiting_when_the_daemon_ends_is_done_by_the_cli(
    home: CorrlogHome, ending: str
) -> None:
    """SIGTERM (the daemon says fallback) or SIGKILL (the connection drops) while the daemon's
    pass waits for the lock: the client syncs itself, and each message is archived once."""
    daemon = DaemonProcess(prepared(home)).start()
    deliver(home, 0)
    with DataDir(home.data).write_lock():
        client = _waiting_on_the_lock(home, daemon)
        if ending == "sigterm":
            daemon.signal(signal.SIGTERM)
        else:
            daemon.kill()
    result = finished(client)
    assert result.code == 0, result.stderr
    assert path_taken(result)[0] == "here"
    assert "maildir local: " in result.out
    assert daemon.stop() == (0 if ending == "sigterm" else -signal.SIGKILL)
    assert maildir_records(home) == (10, 10)
    assert "maildir local: 0 archived" in sync(home).out


def test_a_failed_pass_answers_with_the_clis_error(home: CorrlogHome) -> None:
    """A pass that fails (a classify pattern that does not compile; the daemon retries it
    later) answers the waiting client with the CLI's error line and exit code at once."""
    bad = '\n[classify]\nagreement = ["(unclosed"]\n'
    daemon = DaemonProcess(prepared(home, bad)).start()
    try:
        there = sync(home)
    finally:
        assert daemon.stop() == 0
    here = sync(home)
    assert path_taken(here)[0] == "here"
    assert path_taken(there) == ("daemon", path_taken(here)[1])
    assert there.code == 2
    assert "corrlog: error: invalid config [classify]" in there.stderr
