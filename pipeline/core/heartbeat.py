"""Progress lines for long steps whose output goes to a file or a pipe (a scheduler's log, CI).

A rich bar draws nothing there, so a 30-second tuning looked hung. `Heartbeat` logs one line at
most every `every` seconds, and always the last one, so a log shows the step moving without a
line per trial on a fast machine.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

EVERY_SECONDS = 10.0


class Heartbeat:
    """`beat(done, total, extra)` logs "<what>: done/total <extra> (N s)" when `every` seconds
    have passed since the last line (or at done == total). `enabled=False` logs nothing."""

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        every: float = EVERY_SECONDS,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.log, self.every, self.enabled, self.clock = what, log, every, enabled, clock
        self.start = self.last = clock()

    def beat(self, done: int, total: int | None, extra: str = "") -> bool:
        """Log a line if one is due; True when it did."""
        now = self.clock()
        finished = total is not None and done >= total
        if not self.enabled or (now - self.last < self.every and not finished):
            return False
        self.last = now
        of = f"{done}/{total}" if total is not None else str(done)
        tail = f" {extra}" if extra else ""
        self.log.info("%s: %s%s (%.0f s)", self.what, of, tail, now - self.start)
        return True


def output_is_terminal() -> bool:
    """True when stderr (where the bars and logs go) is a terminal: a bar shows progress then."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
