"""Arterial-pressure reference: per-beat pressures from the slope-sum onsets (``_abp_onsets``)
and the window label with the jSQI physiological limits as a first gate.

Everything here is a pure function of one block of samples (a window or a whole record): no state is
carried between calls, so zero-phase filtering inside the block is allowed (it never looks past the block).
Nothing raises on NaN, flat, short or empty input; a window that cannot be labelled comes back with
``usable=False`` and a :class:`~bpstream.filters.Reason`.
"""

from __future__ import annotations

import numpy as np

from ._abp_beats import JSQI_LIMITS, Beats, abp_beats, beats_batch, beats_from_onsets
from ._abp_onsets import abp_onsets, as_1d
from ._types import Reason, Reference

__all__ = [
    "Beats",
    "abp_onsets",
    "abp_beats",
    "beats_from_onsets",
    "beats_batch",
    "jsqi_beat_flags",
    "reference_from_beats",
    "abp_reference",
    "JSQI_LIMITS",
    "JSQI_BEAT_TO_BEAT",
]

JSQI_BEAT_TO_BEAT = {
    "d_sbp_mmhg": 20.0,
    "d_dbp_mmhg": 20.0,
    "d_onset_mmhg": 20.0,
    "d_period_s": 0.5,
    # mean negative slope over a beat below -3 mmHg per sample at 125 Hz = -375 mmHg/s at any rate
    "neg_slope_mmhg_s": -3.0 * 125.0,
}

def jsqi_beat_flags(beats: Beats, prev: np.ndarray) -> tuple[np.ndarray, dict[Reason, np.ndarray]]:
    """jSQI per beat: the physiological limits, slope noise, and the beat-to-beat rule against the
    beat before (``prev``: the previous beat's [SBP, DBP, onset pressure, period] as a (0 or 1, 4) array,
    e.g. the last beat of the window before). Returns (good mask, {reason: mask of beats it flags})."""
    J = JSQI_BEAT_TO_BEAT
    n = len(beats)
    phys = ~beats.good
    noise = beats.neg_slope_mmhg_s < J["neg_slope_mmhg_s"]
    cols = np.column_stack((beats.sbp_mmhg, beats.dbp_mmhg, beats.onset_mmhg, beats.period_s))
    if prev.shape[0]:
        cols = np.concatenate((prev, cols))
    with np.errstate(all="ignore"):
        d = np.abs(np.diff(cols, axis=0))
        lim = np.array([J["d_sbp_mmhg"], J["d_dbp_mmhg"], J["d_onset_mmhg"], J["d_period_s"]])
        b2b = (d > lim).any(axis=1) | ~np.isfinite(d).all(axis=1)
    if not prev.shape[0]:
        b2b = np.concatenate(([False], b2b)) if n else np.zeros(0, bool)
    b2b = b2b[-n:] if n else np.zeros(0, bool)
    flags = {
        Reason.ABP_BEATS_IMPLAUSIBLE: phys,
        Reason.ABP_SLOPE_NOISE: noise,
        Reason.ABP_BEAT_TO_BEAT: b2b,
    }
    return ~(phys | noise | b2b), flags


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
    fs_hz: float = 125.0,
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
    beats = abp_beats(x, fs_hz)
    return reference_from_beats(
        beats, min_good_fraction=min_good_fraction, min_good_beats=min_good_beats, t_s=t_s
    )
