"""Per-beat arterial pressures from the slope-sum onsets (``_abp_onsets``), one window or a batch.

Pure functions of a block of samples; nothing raises on NaN, flat, short or empty input (such beats
fail the jSQI physiological limits, :data:`JSQI_LIMITS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._abp_onsets import abp_onsets, as_1d

__all__ = ["Beats", "abp_beats", "beats_from_onsets", "beats_batch", "JSQI_LIMITS"]

JSQI_LIMITS = {
    "sbp_max_mmhg": 300.0,
    "dbp_min_mmhg": 20.0,
    "map_min_mmhg": 30.0,
    "map_max_mmhg": 200.0,
    "hr_min_bpm": 20.0,
    "hr_max_bpm": 200.0,
    "pp_min_mmhg": 20.0,
}

# jSQI beat-to-beat and slope-noise rules (Sun, Reisner & Mark 2006)
_FOOT_SEARCH_S = 0.05  # diastolic pressure: minimum within +-50 ms of the onset (before the peak)


@dataclass(frozen=True)
class Beats:
    """Complete beats (onset to next onset) of an arterial waveform; one entry per beat.

    ``onset``/``systolic`` are sample indices into the input; pressures in mmHg; ``map_mmhg`` is the area
    mean over the whole beat; ``onset_mmhg`` the pressure at the detected onset; ``neg_slope_mmhg_s``
    the mean of the negative first differences over the beat (jSQI slope-noise feature, in mmHg/s);
    ``good`` the jSQI physiological-limits mask (see :data:`JSQI_LIMITS`).
    """

    onset: np.ndarray
    systolic: np.ndarray
    sbp_mmhg: np.ndarray
    dbp_mmhg: np.ndarray
    map_mmhg: np.ndarray
    onset_mmhg: np.ndarray
    period_s: np.ndarray
    neg_slope_mmhg_s: np.ndarray
    good: np.ndarray

    def __len__(self) -> int:
        return int(self.onset.shape[0])

    @property
    def pp_mmhg(self) -> np.ndarray:
        return self.sbp_mmhg - self.dbp_mmhg

    @property
    def hr_bpm(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 60.0 / self.period_s

    @classmethod
    def empty(cls) -> "Beats":
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=np.float64)
        return cls(i, i, f, f, f, f, f, f, np.zeros(0, dtype=bool))


def abp_beats(abp, fs_hz: float = 125.0, onsets: np.ndarray | None = None) -> Beats:
    """Per-beat pressures of every complete beat (onset to next onset); see :class:`Beats`."""
    x = as_1d(abp)
    fs_hz = float(fs_hz) if np.isfinite(fs_hz) and fs_hz > 0 else 0.0
    if onsets is None:
        on = abp_onsets(x, fs_hz)  # strictly increasing, inside the input
    else:
        on = np.asarray(onsets, dtype=np.int64).reshape(-1)
        on = np.unique(on[(on >= 0) & (on < x.shape[0])])
    return beats_from_onsets(x, on, fs_hz)


def beats_from_onsets(x: np.ndarray, on: np.ndarray, fs_hz: float) -> Beats:
    """Per-beat pressures of ``x`` (1-D, mmHg) between strictly increasing onset indices ``on``."""
    fs_hz = float(fs_hz)
    if on.size < 2 or not fs_hz > 0:
        return Beats.empty()
    n = x.shape[0]
    start, stop = on[:-1], on[1:]
    length = stop - start
    seg = x[on[0] : on[-1]]
    rel = on[:-1] - on[0]
    with np.errstate(all="ignore"):
        sbp = np.maximum.reduceat(seg, rel)  # NaN propagates: such beats fail the limits
        mean = np.add.reduceat(seg, rel) / length
        xs = x[on[0] : on[-1] + 1]
        d = xs[1:] - xs[:-1]
        np.minimum(d, 0.0, out=d)
        neg = np.add.reduceat(d, rel) / length * fs_hz
        # systolic index: first sample of each beat that equals its maximum
        beat_id = np.repeat(np.arange(length.size), length)
        hit = (seg == sbp[beat_id]).nonzero()[0]
        sys_idx = start.copy()
        if hit.size:
            b = beat_id[hit]  # non-decreasing: the first hit of each beat is where the beat id changes
            change = np.empty(b.size, dtype=bool)
            change[0] = True
            np.not_equal(b[1:], b[:-1], out=change[1:])
            first = change.nonzero()[0]
            sys_idx[b[first]] = hit[first] + on[0]
        # diastolic pressure: minimum within +-50 ms of the onset, never past the systolic peak
        m = max(1, int(round(_FOOT_SEARCH_S * fs_hz)))
        idx = start[:, None] + np.arange(-m, m + 1)[None, :]
        np.maximum(idx, 0, out=idx)
        np.minimum(idx, n - 1, out=idx)
        idx = np.where(idx > sys_idx[:, None], start[:, None], idx)
        dbp = x[idx].min(axis=1)
        period = length / fs_hz
        good = _limits_ok(sbp, dbp, mean, 60.0 / period)
    return Beats(
        onset=start.astype(np.int64),
        systolic=sys_idx.astype(np.int64),
        sbp_mmhg=sbp,
        dbp_mmhg=dbp,
        map_mmhg=mean,
        onset_mmhg=x[start],
        period_s=period.astype(np.float64),
        neg_slope_mmhg_s=neg,
        good=good,
    )


def beats_batch(x: np.ndarray, onsets: list[np.ndarray], fs_hz: float) -> list[Beats]:
    """:func:`beats_from_onsets` of every row of ``x`` (n_windows, n_samples) in one pass over the
    flattened batch (row ``i`` gives the same numbers as ``beats_from_onsets(x[i], onsets[i])``)."""
    fs_hz = float(fs_hz)
    n_rows, n = x.shape
    rows = [i for i in range(n_rows) if onsets[i].size >= 2]
    out = [Beats.empty() for _ in range(n_rows)]
    if not rows or not fs_hz > 0:
        return out
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    g = np.concatenate([onsets[i] + i * n for i in rows])  # every onset, in flat coordinates
    row_of = np.concatenate([np.full(onsets[i].size, i) for i in rows])
    valid = row_of[1:] == row_of[:-1]  # a beat: two consecutive onsets of one row
    start, stop, brow = g[:-1][valid], g[1:][valid], row_of[:-1][valid]
    length = stop - start
    with np.errstate(all="ignore"):
        # slice sums and maxima over [g[j], g[j + 1]): the beats, and cross-row gaps that are dropped
        sbp = np.maximum.reduceat(flat, g)[:-1][valid]
        mean = np.add.reduceat(flat, g)[:-1][valid] / length
        d = np.empty(flat.size)
        np.subtract(flat[1:], flat[:-1], out=d[:-1])
        d[-1] = 0.0
        np.minimum(d, 0.0, out=d)
        neg = np.add.reduceat(d, g)[:-1][valid] / length * fs_hz
        # systolic index: first sample of each beat that equals its maximum
        beat_id = np.repeat(np.arange(length.size), length)
        pos = np.arange(beat_id.size) - np.repeat(np.cumsum(length) - length, length) + start[beat_id]
        hit = (flat[pos] == sbp[beat_id]).nonzero()[0]
        sys_idx = start.copy()
        if hit.size:
            b = beat_id[hit]
            change = np.empty(b.size, dtype=bool)
            change[0] = True
            np.not_equal(b[1:], b[:-1], out=change[1:])
            first = change.nonzero()[0]
            sys_idx[b[first]] = pos[hit[first]]
        # diastolic pressure: minimum within +-50 ms of the onset (inside its row), never past the peak
        m = max(1, int(round(_FOOT_SEARCH_S * fs_hz)))
        idx = start[:, None] + np.arange(-m, m + 1)[None, :]
        lo = (brow * n)[:, None]
        np.maximum(idx, lo, out=idx)
        np.minimum(idx, lo + (n - 1), out=idx)
        idx = np.where(idx > sys_idx[:, None], start[:, None], idx)
        dbp = flat[idx].min(axis=1)
        period = length / fs_hz
        good = _limits_ok(sbp, dbp, mean, 60.0 / period)
    onset_mmhg = flat[start]
    base = brow * n
    cuts = np.flatnonzero(np.diff(brow)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, brow.size]):
        i = int(brow[a])
        sl = slice(int(a), int(b))
        out[i] = Beats(
            onset=(start[sl] - base[sl]).astype(np.int64),
            systolic=(sys_idx[sl] - base[sl]).astype(np.int64),
            sbp_mmhg=sbp[sl],
            dbp_mmhg=dbp[sl],
            map_mmhg=mean[sl],
            onset_mmhg=onset_mmhg[sl],
            period_s=period[sl].astype(np.float64),
            neg_slope_mmhg_s=neg[sl],
            good=good[sl],
        )
    return out


def _limits_ok(sbp: np.ndarray, dbp: np.ndarray, mean: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """The jSQI physiological limits per beat (see :data:`JSQI_LIMITS`)."""
    L = JSQI_LIMITS
    pp = sbp - dbp
    return (
        np.isfinite(sbp)
        & np.isfinite(dbp)
        & np.isfinite(mean)
        & (sbp <= L["sbp_max_mmhg"])
        & (dbp >= L["dbp_min_mmhg"])
        & (mean >= L["map_min_mmhg"])
        & (mean <= L["map_max_mmhg"])
        & (hr >= L["hr_min_bpm"])
        & (hr <= L["hr_max_bpm"])
        & (pp >= L["pp_min_mmhg"])
    )
