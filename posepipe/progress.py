"""Progress lines for long stages: done/total, rate and time left, at most every few seconds."""

from __future__ import annotations

import logging
import math
import time


def format_duration(seconds: float) -> str:
    """12.3 -> '0m12s', 4000 -> '1h06m'; '?' when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


class Progress:
    """``update(done)`` logs '<label>: done/total frames (pct), rate frames/s, time left'.

    Lines come at most every ``every`` seconds (``force`` skips the wait), and the end, when
    ``done`` reaches ``total``, is reported exactly once; so logs stay short for long videos and
    still show the end. ``total`` may be given later, with the first update, when it is not known
    at the start (the clock runs from construction).
    """

    def __init__(
        self, total: int, *, label: str, logger: logging.Logger, unit: str = "frames", every: float = 5.0
    ):
        self.total, self.label, self.logger, self.unit, self.every = total, label, logger, unit, every
        self.started = self.last = time.perf_counter()
        self.ended = False

    def update(self, done: int, *, total: int | None = None, force: bool = False) -> None:
        if total is not None:
            self.total = total
        now = time.perf_counter()
        at_end = done >= self.total
        if (at_end and self.ended) or (not (force or at_end) and now - self.last < self.every):
            return
        self.last, self.ended = now, at_end
        rate = done / max(now - self.started, 1e-9)
        left = (self.total - done) / rate if rate > 0 else math.inf
        self.logger.info(
            "%s: %d/%d %s (%.0f%%), %.1f %s/s, %s left", self.label, done, self.total, self.unit,
            100 * done / max(self.total, 1), rate, self.unit, format_duration(left),
        )  # fmt: skip
