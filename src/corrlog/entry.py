"""The `corrlog` console script: `search` and `sync` ask a running daemon first, the rest is the CLI.

This module runs before anything heavy is imported: only the standard library's
C-backed pieces (`_socket`, `_json`), `gc`, `os`, `sys` and `time`, and `tomllib` only
when the config file is not plain enough to read its top-level `data_dir`
directly. On any doubt it returns None and the full CLI (click, pydantic, Whoosh)
does the work, so the answer never depends on which path was taken.
"""

from __future__ import annotations

import _socket
import gc
import os
import sys
import time

from corrlog.searchproto import (
    DEBUG_ENV,
    MAX_REQUEST,
    PROTOCOL,
    SOCKET_NAME,
    dumps,
    loads,
    settings_environ,
)

TYPE_CHECKING = False  # `typing` costs ~4 ms at start-up; mypy reads the block below
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

CONNECT_TIMEOUT = 1.0  # seconds to connect and send
SEARCH_TIMEOUT = 30.0  # seconds to wait for a search's answer before searching here instead
# A sync waits for the daemon's pass however long it takes (a first import can take
# minutes); if the connection drops first, this process syncs instead.
SYNC_TIMEOUT: float | None = None
_HELP = frozenset({"-h", "--help"})
_COMMANDS = ("search", "sync")


def main() -> int:
    """Run `corrlog`: a search or sync through the daemon when one answers, else the full CLI."""
    argv = sys.argv[1:]
    code = via_daemon(argv, os.environ)
    if code is not None:
        # The answer is written and flushed, and this process made nothing else to clean up:
        # ending here spares the interpreter's teardown (~2 ms, a tenth of the whole search).
        os._exit(code)
    if os.environ.get(DEBUG_ENV) and (sendable := _sendable(argv)) is not None:
        sys.stderr.write(f"corrlog: {sendable[0]} answered by this process\n")
    # Importing the CLI makes ~75,000 tracked objects and hardly a cycle among them: collecting while
    # it runs is wasted (~15 ms), and freezing what it made spares every later collection of
    # the run (a full one costs ~12 ms) from walking it again.
    gc.disable()
    try:
        from corrlog.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    code = cli_main(argv)
    # The process ends next, its work committed, fsynced and flushed: frozen objects spare
    # the interpreter's teardown its collections over the whole run (~70 ms after a sync).
    # Frozen objects in reference cycles are then never collected, nor their `__del__` run:
    # nothing corrlog needs done may wait for that. The standard streams are flushed as usual.
    gc.freeze()
    return code


def via_daemon(argv: list[str], environ: Mapping[str, str]) -> int | None:
    """Answer `corrlog [--config P] search|sync ...` through the daemon's socket; None to fall back."""
    found = _sendable(argv)
    if found is None:
        return None
    command, config, args = found
    data_dir = lean_data_dir(config, environ)
    if data_dir is None:
        return None
    timeout: float | None
    if command == "search":
        facts, timeout = terminal_facts(environ), SEARCH_TIMEOUT
    else:
        facts, timeout = settings_facts(config, environ), SYNC_TIMEOUT
    request = dumps({"protocol": PROTOCOL, "command": command, "argv": args, **facts})
    if len(request) > MAX_REQUEST:
        return None
    try:
        reply = _ask(os.path.join(data_dir, SOCKET_NAME), request, timeout)
    except KeyboardInterrupt:  # as the CLI says it (a sync's pass goes on in the daemon)
        sys.stderr.write("corrlog: interrupted\n")
        return 130
    if reply is None:
        return None
    if environ.get(DEBUG_ENV):
        sys.stderr.write(f"corrlog: {command} answered by the daemon\n")
    return _emit(*reply)


def _sendable(argv: list[str]) -> tuple[str, str | None, list[str]] | None:
    """(search or sync, the --config value, the command's arguments) when argv can be sent."""
    config: str | None = None
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option == "--config" and rest:
            config = rest.pop(0)
        elif option.startswith("--config="):
            config = option.removeprefix("--config=")
        elif option in ("-q", "--quiet"):
            continue  # less log output: through the daemon nothing is logged here anyway
        else:
            return None  # -v, --log-format, --help, --version: the CLI handles those
    if not rest or rest[0] not in _COMMANDS or _HELP.intersection(rest[1:]):
        return None
    if rest[0] == "sync":
        args = _sync_args(rest[1:])
        return None if args is None else ("sync", config, args)
    return rest[0], config, rest[1:]


def _sync_args(args: list[str]) -> list[str] | None:
    """`sync`'s arguments as sent ([] or ["--source", NAME]); None for anything less plain."""
    if len(args) == 1 and args[0].startswith("--source="):
        args = ["--source", args[0].removeprefix("--source=")]
    if not args or (
        len(args) == 2 and args[0] == "--source" and args[1] and not args[1].startswith("-")
    ):
        return args
    return None


# where the data lives: the same answer as config.resolve_config_path and load_settings -------


def lean_config_path(explicit: str | None, environ: Mapping[str, str]) -> str:
    """`--config`, else `$CORRLOG_CONFIG`, else `$XDG_CONFIG_HOME/corrlog/corrlog.toml`."""
    if explicit:
        return os.path.expanduser(explicit)
    if environ.get("CORRLOG_CONFIG"):
        return os.path.expanduser(environ["CORRLOG_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(_home(), ".config")
    return os.path.join(base, "corrlog", "corrlog.toml")


def lean_data_dir(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The data dir `load_settings` would pick, or None when in any doubt."""
    try:
        with open(lean_config_path(explicit, environ), "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    variants = [k for k in environ if k.upper() == "CORRLOG_DATA_DIR" and environ[k]]
    if variants:  # pydantic-settings matches the name in any case; two spellings: ask the CLI
        value: object = environ[variants[0]] if len(variants) == 1 else None
    else:
        value = _toml_data_dir(text)
    if value is _UNSURE:
        return None
    if value is None:
        return os.path.join(
            environ.get("XDG_DATA_HOME") or os.path.join(_home(), ".local", "share"), "corrlog"
        )
    if not isinstance(value, str):
        return None
    path = os.path.expanduser(value)
    return path if os.path.isabs(path) else None


_UNSURE = object()


def _toml_data_dir(text: str) -> object:
    """The top-level `data_dir` of a TOML text: None when absent, _UNSURE when unreadable."""
    quick = _plain_data_dir(text)
    if quick is not _UNSURE:
        return quick
    import tomllib

    try:
        return tomllib.loads(text).get("data_dir")
    except tomllib.TOMLDecodeError:
        return _UNSURE  # the CLI names the error


def _plain_data_dir(text: str) -> object:
    """Read `data_dir = "..."` from the top of a plain file without a TOML parser.

    Only lines before the first table that are blank, comments, or `key = value` with
    a one-line value are accepted; anything else (multi-line strings or arrays,
    escapes in data_dir, a repeated key) answers _UNSURE and tomllib decides.
    """
    found: object = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            break
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").replace("-", "").isalnum():
            return _UNSURE
        if value.startswith(('"""', "'''")) or (value.startswith("[") and "]" not in value):
            return _UNSURE
        if key == "data_dir":
            if found is not None:
                return _UNSURE
            found = _plain_string(value)
    return found


def _plain_string(value: str) -> object:
    """`"text"` (no escapes) or `'text'`, optionally followed by a comment; else _UNSURE."""
    quote = value[:1]
    if quote not in ('"', "'"):
        return _UNSURE
    body, closing, tail = value[1:].partition(quote)
    tail = tail.strip()
    if not closing or (quote == '"' and "\\" in body) or (tail and not tail.startswith("#")):
        return _UNSURE
    return body


def _home() -> str:
    return os.path.expanduser("~")


# what the answer depends on ----------------------------------------------------------------------


def settings_facts(config: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """What a sync's settings come from: the config file (absolute) and the variables read."""
    return {
        "config": os.path.abspath(lean_config_path(config, environ)),
        "environ": settings_environ(environ),
    }


def terminal_facts(environ: Mapping[str, str]) -> dict[str, Any]:
    """What the output depends on: stdout a terminal?, its width, NO_COLOR, the UTC offset."""
    return {
        "isatty": _isatty(),
        "width": terminal_width(environ),
        "no_color": bool(environ.get("NO_COLOR")),
        "utc_offset": time.localtime().tm_gmtoff,
    }


def _isatty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width(environ: Mapping[str, str], fallback: int = 100) -> int:
    """`shutil.get_terminal_size((fallback, 20)).columns`, without importing shutil."""
    try:
        columns = int(environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or fallback  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return fallback


# the socket --------------------------------------------------------------------------------------


def _ask(path: str, request: bytes, timeout: float | None) -> tuple[str, str, int] | None:
    """Send the request and read the reply (None `timeout`: wait for it as long as it takes,
    unless the connection drops); None when no daemon answered properly."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(path)
        if _peer_uid(sock) != os.getuid():
            return None
        sock.sendall(request)
        sock.settimeout(timeout)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return _reply(loads(b"".join(chunks)))
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def _peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end (-1 where the system cannot tell: no daemon
    search is served there, so the client falls back)."""
    option = getattr(_socket, "SO_PEERCRED", None)
    if option is None:
        return -1
    creds = sock.getsockopt(_socket.SOL_SOCKET, option, 12)  # struct ucred
    return int.from_bytes(creds[4:8], sys.byteorder)


def _reply(value: object) -> tuple[str, str, int] | None:
    if not isinstance(value, dict) or value.get("fallback"):
        return None
    out, err, code = value.get("stdout"), value.get("stderr"), value.get("exit")
    if isinstance(out, str) and isinstance(err, str) and type(code) is int:
        return out, err, code
    return None


def _emit(out: str, err: str, code: int) -> int:
    try:
        if out:
            sys.stdout.write(out)
            sys.stdout.flush()
    except BrokenPipeError:  # `corrlog search x | head -1`: like the CLI, quietly done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()
    return code
