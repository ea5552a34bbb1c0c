"""Structured logging: readable on a terminal, JSON lines otherwise; secrets redacted."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "console", "json"]

REDACTED = "[redacted]"
_SECRET_KEYS = ("password", "passwd", "secret", "token", "authorization", "credential")
_MAX_SECRETS = 256
_secrets: dict[str, None] = {}
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears in a log line."""
    if value and len(value) >= 3:
        with _secrets_lock:
            _secrets.pop(value, None)
            _secrets[value] = None
            while len(_secrets) > _MAX_SECRETS:  # rotating OAuth tokens: keep the newest
                del _secrets[next(iter(_secrets))]


_warned: set[tuple[str, ...]] = set()


def first_time(*key: str) -> bool:
    """True the first time this key is seen in this process (log a recurring problem once)."""
    with _secrets_lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def reset() -> None:
    """Forget registered secrets, logged-once keys and structlog's configuration (for tests)."""
    with _secrets_lock:
        _secrets.clear()
        _warned.clear()
    structlog.reset_defaults()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        with _secrets_lock:
            known = tuple(_secrets)
        for secret in known:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _scrub_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _scrub_item(key: object, value: Any) -> Any:
    if isinstance(key, str) and any(word in key.lower() for word in _SECRET_KEYS):
        return REDACTED
    return _scrub(value)


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Processor: mask secret-looking keys and every registered secret value."""
    return {key: _scrub_item(key, value) for key, value in event_dict.items()}


def _wants_json(fmt: LogFormat, stream: TextIO) -> bool:
    return fmt == "json" or (fmt == "auto" and not stream.isatty())


def processors(fmt: LogFormat, stream: TextIO) -> list[Processor]:
    """The processor chain: level, time, exception rendering, redaction, then the renderer."""
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if _wants_json(fmt, stream):
        exceptions = ExceptionDictTransformer(show_locals=False)
        chain.append(structlog.processors.ExceptionRenderer(exceptions))
        chain += [redact_secrets, structlog.processors.JSONRenderer()]
    else:
        # Render the traceback to text *before* redaction so secrets in it are masked too.
        chain += [structlog.dev.set_exc_info, structlog.processors.format_exc_info]
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        chain += [redact_secrets, renderer]
    return chain


def configure(fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once, at the edge (CLI or daemon start)."""
    out = stream or sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=processors(fmt, out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # imapclient logs whole message bodies at DEBUG; keep it quiet.
    logging.getLogger("imapclient").setLevel(logging.INFO)


def get_logger(**context: Any) -> structlog.stdlib.BoundLogger:
    """A logger with bound context (`account=`, `path=`, ...)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger().bind(**context)
    return logger
