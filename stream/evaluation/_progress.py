"""A small progress bar on stderr for record loops (no patient identifiers in its notes)."""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, TextIO

__all__ = ["ProgressBar", "iter_with_progress"]


class ProgressBar:
    """``records 12/124 [===>      ] 10% 0:42 eta 6:12`` on stderr.

    Redrawn in place on a terminal; on a pipe or file, one line at the first update and at each tenth. The
    ``note`` is shown as given: do not pass patient identifiers.
    """

    def __init__(self, total: int, label: str = "records", stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.total, self.label, self.width = max(int(total), 0), label, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._t0 = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, note: str = "") -> str:
        frac = 1.0 if self.total == 0 else min(self.done / self.total, 1.0)
        fill = int(round(frac * self.width))
        elapsed = time.monotonic() - self._t0
        eta = "" if self.done == 0 or frac >= 1.0 else f" eta {_clock(elapsed * (1 - frac) / frac)}"
        bar = "=" * fill + " " * (self.width - fill)
        text = f"{self.label} {self.done}/{self.total} [{bar}] {frac:4.0%} {_clock(elapsed)}{eta}"
        return f"{text} {note}".rstrip()

    def update(self, advance: int = 1, note: str = "") -> None:
        self.done += int(advance)
        if self._tty:
            self.stream.write("\r\x1b[K" + self.render(note))
        else:
            tenth = 10 if self.total == 0 else int(10 * self.done / self.total)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(self.render(note) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def iter_with_progress(items: Iterable[Any], total: int, label: str = "records",
                       stream: TextIO | None = None) -> Iterable[Any]:
    """Yield ``items`` while advancing a :class:`ProgressBar`."""
    with ProgressBar(total, label, stream) as bar:
        for item in items:
            yield item
            bar.update()
