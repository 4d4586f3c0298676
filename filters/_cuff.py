"""Calibration readings (cuff, or an arterial-line value sent as a command): plausibility and future
readings. Pairing with a window, staleness against the patient's history and duplicate command ids are
the per-patient step's (``bpstream.stream``), the one place they are decided.

Pure: the caller passes the patient's stream time; nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._types import Reason, Reference

__all__ = ["CuffReading", "CUFF_LIMITS", "cuff_plausibility", "cuff_reference"]

# Hard physiological limits for an oscillometric reading (never a "normal range": SBP 45 is a real reading).
CUFF_LIMITS = {
    "sbp_min_mmhg": 40.0,
    "sbp_max_mmhg": 260.0,
    "dbp_min_mmhg": 20.0,
    "dbp_max_mmhg": 160.0,
    "pp_min_mmhg": 10.0,
}


@dataclass(frozen=True)
class CuffReading:
    """One calibration reading. ``t_s``: when it was measured, on the patient's stream clock (seconds)."""

    command_id: str
    t_s: float
    sbp_mmhg: float
    dbp_mmhg: float
    map_mmhg: float | None = None
    source: str = "cuff"  # "cuff" or "arterial"


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def cuff_plausibility(sbp_mmhg, dbp_mmhg, map_mmhg=None) -> tuple[Reason, ...]:
    """``()`` when plausible: SBP 40-260, DBP 20-160, SBP - DBP >= 10, DBP < MAP < SBP when MAP is given."""
    L = CUFF_LIMITS
    if not (_finite(sbp_mmhg) and _finite(dbp_mmhg)) or (map_mmhg is not None and not _finite(map_mmhg)):
        return (Reason.CUFF_IMPLAUSIBLE,)
    s, d = float(sbp_mmhg), float(dbp_mmhg)
    ok = (
        L["sbp_min_mmhg"] <= s <= L["sbp_max_mmhg"]
        and L["dbp_min_mmhg"] <= d <= L["dbp_max_mmhg"]
        and s - d >= L["pp_min_mmhg"]
    )
    if map_mmhg is not None:
        ok = ok and d < float(map_mmhg) < s
    return () if ok else (Reason.CUFF_IMPLAUSIBLE,)


def cuff_reference(reading: CuffReading, *, stream_t_s: float | None, max_future_s: float = 600.0) -> Reference:
    """The label of one calibration reading, or why it cannot be one (``usable`` False, ``reasons``).

    Implausible (``cuff_plausibility``); stale when its time is not finite; future when measured more than
    ``max_future_s`` after the patient's stream time (None: no stream yet, nothing is future). Whether a
    reading is older than what the patient's history can pair it with, and which window it pairs with,
    is the step's (``bpstream.stream``: its journal); duplicates are the step's too (command ids).
    ``map_mmhg`` stays None when the reading gave none (an arterial MAP is an area mean; none is invented).
    """
    why = list(cuff_plausibility(reading.sbp_mmhg, reading.dbp_mmhg, reading.map_mmhg))
    t = reading.t_s
    if not _finite(t):
        why.append(Reason.CUFF_STALE)
    elif stream_t_s is not None and _finite(stream_t_s) and t > stream_t_s + max_future_s:
        why.append(Reason.CUFF_FUTURE)
    plausible = Reason.CUFF_IMPLAUSIBLE not in why
    return Reference(
        sbp_mmhg=float(reading.sbp_mmhg) if plausible else None,
        dbp_mmhg=float(reading.dbp_mmhg) if plausible else None,
        map_mmhg=float(reading.map_mmhg) if plausible and reading.map_mmhg is not None else None,
        usable=not why,
        reasons=tuple(dict.fromkeys(why)),
        t_s=float(t) if _finite(t) else None,
        source=reading.source,
    )
