"""Retry delays that grow while a broker stays away and start small again after it is back."""

from __future__ import annotations


class Backoff:
    """Delays (seconds) doubling from `first` up to `cap`; `reset()` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def next(self) -> float:
        """The delay to wait now; the one after it doubles (up to `cap`)."""
        delay = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = self.first
