"""Exponential backoff with jitter: the one retry policy for every connection that can drop."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of initial, initial*factor, … capped at maximum, each shaken by ±jitter."""

    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count this attempt)."""
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        spread = base * self.jitter * (2 * self.rng() - 1)
        return max(0.0, min(self.maximum, base + spread))

    def reset(self) -> None:
        """Start again from `initial` (after a success)."""
        self.attempts = 0
