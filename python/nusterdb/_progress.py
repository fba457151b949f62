"""The progress bar of long calls (``progress=True``): phase, percent, count, elapsed
time, ETA and rate on one line of stderr, redrawn at most ten times a second."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["ProgressBar"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m:02d}:{s:02d}"


class ProgressBar:
    """A text bar for ``callback(phase, done, total)`` progress reports.

    ``delay``: seconds of work before the bar first shows (short calls stay quiet).
    """

    def __init__(
        self,
        desc: str,
        delay: float = 0.0,
        stream: Optional[TextIO] = None,
        width: int = 25,
    ) -> None:
        self.desc = desc
        self.delay = delay
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.monotonic()
        self.phase = ""
        self.phase_started = self.started
        self.last_draw = 0.0
        # When the last report came: a phase's work began after its predecessor's last
        # report (or when the bar was made), not at its own first report.
        self.last_report = self.started
        self.shown = False
        self.line = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            if self.shown:
                self.stream.write("\n")
            self.phase, self.phase_started = phase, self.last_report
        self.last_report = now
        if now - self.started < self.delay:
            return
        if done < total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        self.line = self.render(phase, done, total, now - self.phase_started)
        self.stream.write("\r" + self.line)
        self.stream.flush()
        self.shown = True

    def render(self, phase: str, done: int, total: int, elapsed: float) -> str:
        """The bar's text for ``done`` of ``total`` after ``elapsed`` seconds."""
        frac = done / total if total > 0 else 1.0
        frac = min(max(frac, 0.0), 1.0)
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        # No time measured yet (a clock tick): no rate to show, rather than 0/s.
        shown_rate = f"{rate:,.0f}/s" if rate > 0 else "?/s"
        return (
            f"{self.desc} {phase}: {frac * 100:3.0f}%|{bar}| {done}/{total} "
            f"[{_clock(elapsed)}<{_clock(eta)}, {shown_rate}]"
        )

    def close(self) -> None:
        """Ends the bar's line (if it was shown)."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
