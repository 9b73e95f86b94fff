"""Poll schedules: exponential backoff with jitter, always under a deadline. Pure maths."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class PollPolicy:
    """How a long task is polled.

    The n-th wait is ``min(max_interval, initial * factor**n)``, scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` so that many tasks started together do not poll in lockstep.
    ``deadline`` bounds the whole wait (seconds from submission).
    """

    initial: float = 0.5
    factor: float = 1.5
    max_interval: float = 5.0
    jitter: float = 0.2
    deadline: float = 300.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.max_interval <= 0 or not 0 <= self.jitter < 1:
            raise ValueError("PollPolicy needs initial > 0, factor >= 1, max_interval > 0, 0 <= jitter < 1")
        if self.deadline <= 0:
            raise ValueError("PollPolicy.deadline must be > 0")


def intervals(policy: PollPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """The endless sequence of waits between polls."""
    r = rng or random.Random()
    n = 0
    while True:
        base = min(policy.max_interval, policy.initial * policy.factor**n)
        yield base * (1 + policy.jitter * (2 * r.random() - 1))
        n += 1
