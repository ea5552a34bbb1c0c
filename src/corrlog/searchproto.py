"""The daemon socket's protocol (search and sync): file name, size bound, JSON framing (stdlib only, no re)."""

from __future__ import annotations

# The C halves of the json module: importing `json` itself pulls in `re` (~7 ms at start-up),
# which the lean search client cannot afford. The server uses the same functions.
from _json import encode_basestring_ascii, make_encoder, make_scanner

TYPE_CHECKING = False  # `typing` costs ~4 ms at start-up; mypy reads the block below
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SOCKET_NAME = "search.sock"
MAX_REQUEST = 64 * 1024  # bytes of one request, newline included
PROTOCOL = 2  # bumped when the request or reply shape changes (2: "command", search or sync)
DEBUG_ENV = "CORRLOG_DEBUG_SEARCH_PATH"  # set: the client says on stderr which path answered
_PLACES = ("HOME", "XDG_DATA_HOME")  # `~` in paths, the default data dir
_NOT_SETTINGS = ("CORRLOG_CONFIG", DEBUG_ENV)  # the config path is compared on its own


def settings_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the settings depend on besides the config file.

    CORRLOG_* in any case, as pydantic-settings matches them (empty ones are ignored, as
    it ignores them), HOME and XDG_DATA_HOME. The daemon runs a client's sync only when
    the client's are its own, so both would load the same settings.
    """
    return {
        name: value
        for name, value in environ.items()
        if value
        and (
            name in _PLACES
            or (name.upper().startswith("CORRLOG_") and name.upper() not in _NOT_SETTINGS)
        )
    }


class _Decoding:
    """The settings the C scanner reads (those of a default json.JSONDecoder)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> Any:
        """NaN and Infinity are not part of the protocol."""
        raise ValueError(f"unexpected JSON constant {name}")


def dumps(value: Any) -> bytes:
    """One JSON line (ASCII, compact), as `json.dumps(value, separators=(",", ":"))` + newline."""
    encode = make_encoder({}, _refuse, encode_basestring_ascii, None, ":", ",", False, False, False)
    return ("".join(encode(value, 0)) + "\n").encode()


def loads(data: bytes) -> Any:
    """Parse one JSON value; ValueError on anything else (bad UTF-8, bad JSON, trailing data)."""
    text = data.decode("utf-8").strip(" \t\r\n")
    try:
        context: Any = _Decoding()
        value, end = make_scanner(context)(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text):
        raise ValueError("trailing data after the JSON value")
    return value


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} cannot be sent over the daemon's socket")
