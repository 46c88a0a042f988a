"""Exponential backoff with jitter, for reconnecting to a bus or retrying a handler."""

from __future__ import annotations

import random


class Backoff:
    """Delays of first, 2×first, 4×first… up to `cap` seconds, each ±20% (so many
    processes that failed together do not retry in lockstep)."""

    def __init__(self, first: float = 0.2, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.failures = 0
