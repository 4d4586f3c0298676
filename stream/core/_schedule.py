"""Calibration schedules for the arterial reference: off, once, every:N (seconds of stream time)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Schedule", "ScheduleKind"]


class ScheduleKind(str, enum.Enum):
    """The three kinds of arterial calibration schedule (compares equal to its string value)."""

    OFF = "off"
    ONCE = "once"
    EVERY = "every"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Schedule:
    """``once``: the first valid reference at or after ``start_s`` (30 s) of the stream.

    ``every:N``: the same first calibration, then the first valid reference at or after each further
    multiple of N seconds after it (missed slots are not made up). ``off``: no arterial calibration.
    """

    kind: ScheduleKind = ScheduleKind.OFF
    every_s: float | None = None
    start_s: float = 30.0

    @classmethod
    def off(cls) -> "Schedule":
        return cls(ScheduleKind.OFF)

    @classmethod
    def parse(cls, text: str, start_s: float = 30.0) -> "Schedule":
        text = text.strip().lower()
        if text in ("off", "none"):
            return cls(ScheduleKind.OFF, None, start_s)
        if text == "once":
            return cls(ScheduleKind.ONCE, None, start_s)
        if text.startswith("every:"):
            try:
                n = float(text.split(":", 1)[1])
            except ValueError:
                n = -1.0
            if n > 0:
                return cls(ScheduleKind.EVERY, n, start_s)
        raise ValueError(f"calibration schedule must be off, once or every:N (seconds), not {text!r}")

    def __str__(self) -> str:
        return f"every:{self.every_s:g}" if self.kind == ScheduleKind.EVERY else self.kind.value

    def first_s(self) -> float | None:
        return None if self.kind == ScheduleKind.OFF else self.start_s

    def after(self, due_s: float, elapsed_s: float) -> float | None:
        """The next due time after a calibration taken at ``elapsed_s`` for the slot ``due_s``."""
        if self.kind != ScheduleKind.EVERY or self.every_s is None:
            return None
        nxt = due_s + self.every_s
        while nxt <= elapsed_s:
            nxt += self.every_s
        return nxt
