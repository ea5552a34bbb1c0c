"""Durations as users write them: parse and format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corrlog.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("1w3d", timedelta(days=10)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(hours=36)),
    ],
)
def test_parse_units(text: str, expected: timedelta) -> None:
    """Each unit (s, m, h, d, w) and combinations of them parse to the right timedelta."""
    assert expected == parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7D", timedelta(days=7)),
        (" 7d ", timedelta(days=7)),
        ("\t2W\n", timedelta(weeks=2)),
        ("1W 3D", timedelta(days=10)),
        ("1 w 3 d", timedelta(days=10)),
    ],
)
def test_parse_ignores_case_and_spaces(text: str, expected: timedelta) -> None:
    """Upper-case units and surrounding or inner spaces are accepted."""
    assert expected == parse_duration(text)


@pytest.mark.parametrize("text", ["", "   ", "7", "7x", "d", "7 days", "1.5d", "-1d", "7d!"])
def test_parse_rejects_malformed_with_hint(text: str) -> None:
    """Malformed input is a ValueError whose message quotes it and shows how to write one."""
    with pytest.raises(ValueError, match="like 7d, 12h or 2w") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["0d", "0w0h", "0m"])
def test_parse_rejects_zero(text: str) -> None:
    """A zero duration is a ValueError saying it must be longer than zero."""
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(days=14), "2w"),
        (timedelta(days=7), "1w"),
        (timedelta(days=10), "10d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=3601), "3601s"),
    ],
)
def test_format_uses_largest_exact_unit(value: timedelta, expected: str) -> None:
    """A timedelta is rendered in the largest unit that divides it exactly."""
    assert expected == format_duration(value)


@pytest.mark.parametrize("text", ["7d", "12h", "2w", "1w3d", "90m", "45s", "36h"])
def test_format_round_trips(text: str) -> None:
    """Formatting a parsed duration and parsing it again gives the same timedelta."""
    value = parse_duration(text)
    assert value == parse_duration(format_duration(value))
