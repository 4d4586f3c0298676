"""Arterial-pressure reference: per-beat pressures from the slope-sum onsets (``_abp_onsets``)
and the window label with the jSQI physiological limits as a first gate.

Everything here is a pure function of one block of samples (a window or a whole record): no state is
carried between calls, so zero-phase filtering inside the block is allowed (it never looks past the block).
Nothing raises on NaN, flat, short or empty input; a window that cannot be labelled comes back with
``usable=False`` and a :class:`~bpstream.filters.Reason`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._abp_onsets import abp_onsets, as_1d
from ._types import Reason, Reference

__all__ = ["Beats", "abp_onsets", "abp_beats", "abp_reference", "JSQI_LIMITS"]

# jSQI physiological limits (Sun, Reisner & Mark 2006). Hard limits: nothing narrower, hypotension is valid.
JSQI_LIMITS = {
    "sbp_max_mmhg": 300.0,
    "dbp_min_mmhg": 20.0,
    "map_min_mmhg": 30.0,
    "map_max_mmhg": 200.0,
    "hr_min_bpm": 20.0,
    "hr_max_bpm": 200.0,
    "pp_min_mmhg": 20.0,
}

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


def abp_beats(abp, sampling_rate: float = 125.0, onsets: np.ndarray | None = None) -> Beats:
    """Per-beat pressures of every complete beat (onset to next onset); see :class:`Beats`."""
    x = as_1d(abp)
    fs = float(sampling_rate) if np.isfinite(sampling_rate) and sampling_rate > 0 else 0.0
    if onsets is None:
        on = abp_onsets(x, fs)  # strictly increasing, inside the input
    else:
        on = np.asarray(onsets, dtype=np.int64).reshape(-1)
        on = np.unique(on[(on >= 0) & (on < x.shape[0])])
    if on.size < 2 or fs <= 0:
        return Beats.empty()
    n = x.shape[0]
    if on.size < 2:
        return Beats.empty()
    start, stop = on[:-1], on[1:]
    length = stop - start
    seg = x[on[0] : on[-1]]
    rel = on[:-1] - on[0]
    with np.errstate(all="ignore"):
        sbp = np.maximum.reduceat(seg, rel)  # NaN propagates: such beats fail the limits
        mean = np.add.reduceat(seg, rel) / length
        d = np.diff(x[on[0] : on[-1] + 1])
        neg = np.add.reduceat(np.minimum(d, 0.0), rel) / length * fs
    # systolic index: first sample of each beat that equals its maximum
    beat_id = np.repeat(np.arange(length.size), length)
    hit = np.flatnonzero(seg == sbp[beat_id])
    sys_idx = start.copy()
    if hit.size:
        b = beat_id[hit]  # non-decreasing: the first hit of each beat is where the beat id changes
        first = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
        sys_idx[b[first]] = hit[first] + on[0]
    # diastolic pressure: minimum within +-50 ms of the onset, never past the systolic peak
    m = max(1, int(round(_FOOT_SEARCH_S * fs)))
    idx = start[:, None] + np.arange(-m, m + 1)[None, :]
    idx = np.clip(idx, 0, n - 1)
    idx = np.where(idx > sys_idx[:, None], start[:, None], idx)
    with np.errstate(all="ignore"):
        dbp = x[idx].min(axis=1)
        period = length / fs
        hr = 60.0 / period
        pp = sbp - dbp
        L = JSQI_LIMITS
        good = (
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


def reference_from_beats(
    beats: Beats,
    good: np.ndarray | None = None,
    *,
    reasons: tuple[Reason, ...] = (),
    min_good_fraction: float = 0.8,
    min_good_beats: int = 5,
    t_s: float | None = None,
) -> Reference:
    """Window label: medians over the ``good`` beats; usable when >= 80 % good and >= 5 good beats."""
    g = beats.good if good is None else np.asarray(good, dtype=bool)
    n = len(beats)
    n_good = int(g.sum())
    frac = n_good / n if n else 0.0
    why = list(reasons)
    if n_good < min_good_beats:
        why.append(Reason.ABP_TOO_FEW_BEATS if n < min_good_beats else Reason.ABP_BEATS_IMPLAUSIBLE)
    elif frac < min_good_fraction:
        why.append(Reason.ABP_BEATS_IMPLAUSIBLE)
    if n_good:
        sbp = float(np.median(beats.sbp_mmhg[g]))
        dbp = float(np.median(beats.dbp_mmhg[g]))
        mp = float(np.median(beats.map_mmhg[g]))
        hr = float(60.0 / np.median(beats.period_s[g]))
        extras = {"pp_mmhg": float(np.median(beats.pp_mmhg[g]))}
    else:
        sbp = dbp = mp = hr = None
        extras = {}
    why_t = tuple(dict.fromkeys(why))
    return Reference(
        sbp_mmhg=sbp,
        dbp_mmhg=dbp,
        map_mmhg=mp,
        usable=not why_t,
        reasons=why_t,
        good_beat_fraction=float(frac),
        n_beats=n,
        hr_bpm=hr,
        t_s=t_s,
        source="arterial",
        extras=extras,
    )


def abp_reference(
    abp,
    sampling_rate: float = 125.0,
    *,
    t_s: float | None = None,
    min_good_fraction: float = 0.8,
    min_good_beats: int = 5,
) -> Reference:
    """The arterial reference label of one window (or any block of samples).

    Median SBP/DBP/MAP over the beats that pass the jSQI physiological limits; ``usable`` only when
    >= ``min_good_fraction`` of the beats are good and >= ``min_good_beats`` good beats remain.
    Values are filled whenever there is a good beat, also when ``usable`` is False (for diagnostics):
    consumers must check ``usable``. Missing input -> ABP_MISSING; any non-finite sample -> ABP_NAN;
    too few beats (flat, short, damped to nothing) -> ABP_TOO_FEW_BEATS; limits -> ABP_BEATS_IMPLAUSIBLE.
    Never raises.
    """
    if abp is None:
        return Reference(None, None, None, usable=False, reasons=(Reason.ABP_MISSING,), t_s=t_s)
    x = as_1d(abp)
    if x.size == 0:
        return Reference(None, None, None, usable=False, reasons=(Reason.ABP_MISSING,), t_s=t_s)
    if not np.isfinite(x).all():
        return Reference(None, None, None, usable=False, reasons=(Reason.ABP_NAN,), t_s=t_s)
    beats = abp_beats(x, sampling_rate)
    return reference_from_beats(
        beats, min_good_fraction=min_good_fraction, min_good_beats=min_good_beats, t_s=t_s
    )
