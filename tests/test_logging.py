"""Structured logging: JSON lines or console text, with secrets redacted."""

from __future__ import annotations

import io
import json
from collections import namedtuple
from typing import Any

import pytest

from corrlog.logging import REDACTED, configure, get_logger, register_secret, reset

# Built at run time so that the secret never appears in this file's source lines
# (a traceback quotes source lines, which would hide a real leak).
SECRET = "".join(["hun", "ter", "2-", "xyzzy"])


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written to `stream`, decoded as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def out() -> io.StringIO:
    """A stream with JSON logging configured onto it."""
    stream = io.StringIO()
    configure("json", stream=stream)
    return stream


def test_json_line_has_event_level_time_and_context(out: io.StringIO) -> None:
    """One call writes one JSON line with the event, level, UTC timestamp and bound context."""
    get_logger(account="work", folder="INBOX").info("fetched", uid=42)
    [line] = json_lines(out)
    assert "fetched" == line["event"]
    assert "info" == line["level"]
    assert line["timestamp"].endswith("Z")
    assert {"account": "work", "folder": "INBOX", "uid": 42} == {
        k: line[k] for k in ("account", "folder", "uid")
    }


def test_level_filter() -> None:
    """Messages below the configured level are dropped."""
    stream = io.StringIO()
    configure("json", level="warning", stream=stream)
    log = get_logger()
    log.info("quiet")
    log.warning("loud")
    assert ["loud"] == [line["event"] for line in json_lines(stream)]


def test_auto_is_json_when_not_a_terminal() -> None:
    """The `auto` format writes JSON lines to a stream that is not a terminal."""
    stream = io.StringIO()
    configure("auto", stream=stream)
    get_logger().info("hello")
    assert ["hello"] == [line["event"] for line in json_lines(stream)]


@pytest.mark.parametrize(
    "key", ["password", "PASSWORD", "imap_passwd", "token", "api_secret", "Authorization"]
)
def test_secret_looking_keys_redacted(out: io.StringIO, key: str) -> None:
    """A key that looks secret has its value replaced, whatever the value is."""
    get_logger().info("login", **{key: "plain-value", "user": "bob"})
    [line] = json_lines(out)
    assert REDACTED == line[key]
    assert "bob" == line["user"]
    assert "plain-value" not in out.getvalue()


def test_secret_keys_redacted_in_nested_dicts(out: io.StringIO) -> None:
    """Secret-looking keys are redacted inside nested dicts too."""
    get_logger().info("account", account={"user": "bob", "Token": "abc123"})
    [line] = json_lines(out)
    assert {"user": "bob", "Token": REDACTED} == line["account"]


def test_registered_secret_masked_everywhere(out: io.StringIO) -> None:
    """A registered secret value is masked inside strings, nested dicts, lists and tuples."""
    register_secret(SECRET)
    get_logger(url=f"imaps://bob:{SECRET}@mail.example").info(
        f"event with {SECRET}",
        nested={"deep": {"note": f"it was {SECRET}!"}},
        items=["a", f"x{SECRET}y", (SECRET,)],
    )
    [line] = json_lines(out)
    assert SECRET not in out.getvalue()
    assert f"event with {REDACTED}" == line["event"]
    assert f"imaps://bob:{REDACTED}@mail.example" == line["url"]
    assert {"deep": {"note": f"it was {REDACTED}!"}} == line["nested"]
    assert ["a", f"x{REDACTED}y", [REDACTED]] == line["items"]


@pytest.mark.parametrize("value", [None, "", "ab"])
def test_short_or_empty_secrets_ignored(out: io.StringIO, value: str | None) -> None:
    """Empty or very short secrets are not registered (they would mask ordinary text)."""
    register_secret(value)
    get_logger().info("about a b")
    [line] = json_lines(out)
    assert "about a b" == line["event"]


def _fail_with_local_password(secret: str) -> None:
    password = secret
    raise RuntimeError(f"login refused ({len(password)} chars)")


def test_json_exception_has_no_locals(out: io.StringIO) -> None:
    """log.exception in JSON mode renders the traceback without local variables."""
    try:
        _fail_with_local_password(SECRET)
    except RuntimeError:
        get_logger().exception("login failed")
    [line] = json_lines(out)
    assert SECRET not in out.getvalue()
    [exc] = line["exception"]
    assert "RuntimeError" == exc["exc_type"]
    assert f"login refused ({len(SECRET)} chars)" == exc["exc_value"]
    assert all("locals" not in frame for frame in exc["frames"])


def test_json_exception_message_masks_registered_secret(out: io.StringIO) -> None:
    """A registered secret inside an exception message is masked in JSON mode."""
    register_secret(SECRET)
    try:
        raise RuntimeError(f"server said: bad password {SECRET}")
    except RuntimeError:
        get_logger().exception("login failed")
    assert SECRET not in out.getvalue()
    [line] = json_lines(out)
    assert f"server said: bad password {REDACTED}" == line["exception"][0]["exc_value"]


def test_console_format() -> None:
    """The console format writes readable `event key=value` text, not JSON, still redacted."""
    stream = io.StringIO()
    configure("console", stream=stream)
    get_logger(account="work").warning("slow server", token="abc123", seconds=3)
    text = stream.getvalue()
    assert 1 == len(text.splitlines())
    assert "slow server" in text
    assert "account=work" in text
    assert "seconds=3" in text
    assert f"token={REDACTED}" in text
    assert "abc123" not in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colours on a non-terminal


def test_console_exception_masks_registered_secret() -> None:
    """A registered secret inside an exception message is masked in console mode too."""
    stream = io.StringIO()
    configure("console", stream=stream)
    register_secret(SECRET)
    try:
        raise RuntimeError(f"server said: bad password {SECRET}")
    except RuntimeError:
        get_logger().exception("login failed")
    text = stream.getvalue()
    assert "RuntimeError" in text
    assert SECRET not in text


def test_namedtuple_value_does_not_crash(out: io.StringIO) -> None:
    """Logging a namedtuple value writes a line instead of raising."""
    Pair = namedtuple("Pair", "left right")
    get_logger().info("pair", pair=Pair("a", "b"))
    [line] = json_lines(out)
    assert ["a", "b"] == line["pair"]


def test_reset_forgets_secrets() -> None:
    """After reset(), a previously registered secret is no longer masked."""
    register_secret(SECRET)
    reset()
    stream = io.StringIO()
    configure("json", stream=stream)
    get_logger().info(f"value {SECRET}")
    [line] = json_lines(stream)
    assert f"value {SECRET}" == line["event"]
