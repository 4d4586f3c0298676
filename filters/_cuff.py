"""Cuff (non-invasive) labels: plausibility, duplicates, stale or future readings, pairing with a window.

Pure: the caller passes the patient's stream time and the window times; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np

from ._types import Reason, Reference

__all__ = ["CuffReading", "CUFF_LIMITS", "cuff_plausibility", "cuff_reference", "pair_window", "CuffFilter"]

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
    """One cuff measurement. ``t_s``: when it was measured, on the patient's stream clock (seconds)."""

    command_id: str
    t_s: float
    sbp_mmhg: float
    dbp_mmhg: float
    map_mmhg: float | None = None


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


def pair_window(t_s: float, window_start_s, window_end_s) -> int:
    """Index of the window that contains ``t_s`` (the one centred closest to it); -1 when none does."""
    a = np.asarray(window_start_s, dtype=np.float64).reshape(-1)
    b = np.asarray(window_end_s, dtype=np.float64).reshape(-1)
    if not _finite(t_s) or a.size == 0 or a.shape != b.shape:
        return -1
    inside = (a <= t_s) & (t_s <= b)
    if not inside.any():
        return -1
    dist = np.where(inside, np.abs((a + b) / 2.0 - t_s), np.inf)
    return int(np.argmin(dist))


def cuff_reference(
    reading: CuffReading,
    *,
    stream_t_s: float,
    max_age_s: float = 300.0,
    max_future_s: float = 10.0,
    window_start_s=None,
    window_end_s=None,
) -> Reference:
    """The label of one cuff reading (without the duplicate check; see :class:`CuffFilter`).

    Stale: measured more than ``max_age_s`` before the patient's stream time; future: more than
    ``max_future_s`` after it. With window times given, the reading must fall inside a window
    (``extras["window_index"]``), else CUFF_NO_WINDOW. ``map_mmhg`` stays None when the cuff gave none.
    """
    why = list(cuff_plausibility(reading.sbp_mmhg, reading.dbp_mmhg, reading.map_mmhg))
    t, now = reading.t_s, stream_t_s
    if not _finite(t) or not _finite(now):
        why.append(Reason.CUFF_STALE)
    elif t < now - max_age_s:
        why.append(Reason.CUFF_STALE)
    elif t > now + max_future_s:
        why.append(Reason.CUFF_FUTURE)
    extras: dict[str, float] = {}
    if window_start_s is not None and window_end_s is not None:
        k = pair_window(t, window_start_s, window_end_s)
        if k < 0:
            why.append(Reason.CUFF_NO_WINDOW)
        else:
            extras["window_index"] = float(k)
    plausible = Reason.CUFF_IMPLAUSIBLE not in why
    return Reference(
        sbp_mmhg=float(reading.sbp_mmhg) if plausible else None,
        dbp_mmhg=float(reading.dbp_mmhg) if plausible else None,
        map_mmhg=float(reading.map_mmhg) if plausible and reading.map_mmhg is not None else None,
        usable=not why,
        reasons=tuple(dict.fromkeys(why)),
        t_s=float(t) if _finite(t) else None,
        source="cuff",
        extras=extras,
    )


def _id_hash(command_id) -> int:
    raw = str(command_id).encode("utf-8", "surrogatepass")
    return struct.unpack("<q", hashlib.blake2b(raw, digest_size=8).digest())[0]


class CuffFilter:
    """Per-patient cuff label filter: :func:`cuff_reference` plus duplicate command ids.

    State: a ring of the last ``remember`` command-id hashes (int64, 8 bytes each).
    """

    def __init__(self, *, max_age_s: float = 300.0, max_future_s: float = 10.0, remember: int = 64):
        self.max_age_s = max_age_s
        self.max_future_s = max_future_s
        self.remember = remember
        self.seen_ = np.zeros(int(remember), dtype=np.int64)
        self.n_seen_ = 0

    def update(
        self, reading: CuffReading, stream_t_s: float, window_start_s=None, window_end_s=None
    ) -> Reference:
        ref = cuff_reference(
            reading,
            stream_t_s=stream_t_s,
            max_age_s=self.max_age_s,
            max_future_s=self.max_future_s,
            window_start_s=window_start_s,
            window_end_s=window_end_s,
        )
        h = _id_hash(reading.command_id)
        k = min(self.n_seen_, self.seen_.shape[0])
        if (self.seen_[:k] == h).any():
            return Reference(
                None, None, None, usable=False, reasons=(Reason.CUFF_DUPLICATE,), t_s=ref.t_s, source="cuff"
            )
        self.seen_ = np.roll(self.seen_, 1)
        self.seen_[0] = h
        self.n_seen_ = k + 1
        return ref

    def to_bytes(self) -> bytes:
        k = min(self.n_seen_, self.seen_.shape[0])
        return struct.pack("<ii", self.seen_.shape[0], k) + self.seen_[:k].astype("<i8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, **params) -> "CuffFilter":
        """Rebuild from :meth:`to_bytes`; malformed bytes raise ValueError."""
        try:
            size, k = struct.unpack_from("<ii", data)
        except (struct.error, TypeError) as e:
            raise ValueError("CuffFilter state: not a state blob") from e
        if not (0 < size <= 65536 and 0 <= k <= size) or len(data) != 8 + 8 * k:
            raise ValueError("CuffFilter state: wrong size")
        self = cls(remember=size, **params)
        self.seen_[:k] = np.frombuffer(data, dtype="<i8", offset=8, count=k)
        self.n_seen_ = k
        return self
