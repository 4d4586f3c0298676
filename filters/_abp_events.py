"""Arterial-line event detectors on one window: fast flush / square-wave test, zeroing, blood sampling,
offset steps (on a beat sequence) and over-damping (against the patient's own recent reference).

Pure functions; the stateful :class:`~bpstream.filters.LabelFilter` supplies the patient's reference and
turns each event into a mask over the event plus a hold time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from ._types import Reason

__all__ = [
    "AbpEvent",
    "EVENT_THRESHOLDS",
    "EventMeasures",
    "abp_events",
    "event_measures",
    "pulsatility_mmhg",
    "offset_steps",
    "upstroke_rate_hz",
    "is_damped",
]

EVENT_THRESHOLDS = {
    "pulse_window_s": 2.0,  # rolling peak-to-peak span (covers one beat down to 30 bpm)
    "non_pulsatile_mmhg": 8.0,  # peak-to-peak below this: no pulse
    "flush_above_sbp_mmhg": 30.0,  # flush plateau: above the systolic reference by this much ...
    "flush_min_s": 0.3,  # ... for at least this long ...
    "flush_flat_mmhg": 20.0,  # ... and flat within this range
    "clip_tol_mmhg": 1e-3,  # clipping: samples equal to the window's maximum (to float32 precision) ...
    "clip_min_s": 0.06,  # ... in >= 2 runs, each at least this long
    "zero_level_mmhg": 10.0,  # zeroing: non-pulsatile, |pressure| below this ...
    "zero_min_s": 1.0,  # ... for at least this long
    "sampling_min_s": 2.0,  # non-pulsatile this long, not at zero: blood sampling if
    "sampling_ramp_mmhg_s": 2.0,  # ramping at least this fast, or
    "sampling_above_sbp_mmhg": 20.0,  # or held above systole by this much (flush-bag pressure); else flat
    "step_min_mmhg": 15.0,  # offset step: MAP shifts by at least this much between 8-beat medians,
    "step_tol_mmhg": 5.0,  # SBP and DBP shift by the same amount within this tolerance,
    "step_pp_ratio": 0.25,  # and pulse pressure changes by at most this fraction of the step,
    "damped_pp_ratio": 0.6,  # over-damping: pulse pressure below this fraction of the patient's own,
    "damped_map_tol_mmhg": 10.0,  # MAP within max(this, 15 %) of the patient's own,
    "damped_min_pp_mmhg": 5.0,  # still pulsatile,
    "damped_upstroke_ratio": 0.6,  # and the upstroke rate (dP/dt per mmHg of PP) below this fraction
}


class AbpEvent(NamedTuple):
    """One detected line event; times in seconds from the window start."""

    reason: Reason
    start_s: float
    end_s: float


def _runs(mask: np.ndarray) -> np.ndarray:
    """(start, stop) index pairs of the True runs of a boolean array, shape (n_runs, 2)."""
    if mask.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.stack((np.flatnonzero(d == 1), np.flatnonzero(d == -1)), axis=1)


class EventMeasures(NamedTuple):
    """The stateless part of the event detectors for one window (see :func:`event_measures`)."""

    max_mmhg: float  # the window's maximum
    rolling_max_median_mmhg: float  # median 2-s rolling maximum: the systolic reference without a patient's own
    clip_runs: np.ndarray  # (k, 2) runs held at the maximum, each long enough to count as clipped
    non_pulsatile_runs: np.ndarray  # (k, 2) core runs without a pulse (ramps removed)


def pulsatility_mmhg(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """Centred rolling peak-to-peak over 2 s (per sample, mmHg), along the last axis."""
    w = max(3, int(round(EVENT_THRESHOLDS["pulse_window_s"] * fs_hz)))
    return maximum_filter1d(x, w, axis=-1, mode="nearest") - minimum_filter1d(x, w, axis=-1, mode="nearest")


def event_measures(abp: np.ndarray, fs_hz: float) -> list[EventMeasures]:
    """The patient-independent part of :func:`abp_events` for each row of a finite batch
    (n_windows, n_samples), filtered in one pass; rows are independent of each other."""
    T = EVENT_THRESHOLDS
    x = np.asarray(abp, dtype=np.float64)
    fs_hz = float(fs_hz)
    w = max(3, int(round(T["pulse_window_s"] * fs_hz)))
    with np.errstate(all="ignore"):
        xmax = x.max(axis=1)
        roll_max = np.median(maximum_filter1d(x, w, axis=1, mode="nearest"), axis=1)
        at_max = np.abs(x - xmax[:, None]) <= T["clip_tol_mmhg"]
        # non-pulsatile: peak-to-peak of the signal minus its centred 1-s mean (a ramp is not a pulse)
        resid = x - uniform_filter1d(x, max(3, int(round(fs_hz))), axis=1, mode="nearest")
        flat = pulsatility_mmhg(resid, fs_hz) < T["non_pulsatile_mmhg"]
    min_clip = T["clip_min_s"] * fs_hz
    need = 2 * int(np.ceil(min_clip))  # two runs of at least min_clip samples
    none = np.zeros((0, 2), dtype=np.int64)
    n_at_max = at_max.sum(axis=1)
    any_flat = flat.any(axis=1)
    out = []
    for i in range(x.shape[0]):
        clip = none
        if n_at_max[i] >= need:
            clip = _runs(at_max[i])
            clip = clip[(clip[:, 1] - clip[:, 0]) >= min_clip]
        out.append(EventMeasures(float(xmax[i]), float(roll_max[i]), clip, _runs(flat[i]) if any_flat[i] else none))
    return out


def abp_events(
    abp: np.ndarray,
    fs_hz: float,
    *,
    ref_sbp_mmhg: float | None = None,
    measures: EventMeasures | None = None,
) -> list[AbpEvent]:
    """Flush, clipping, zeroing, blood-sampling and flat-line events in one finite window (mmHg).

    ``ref_sbp_mmhg``: the patient's recent systolic reference; without one, the window's own median
    rolling maximum stands in. ``measures``: this window's :func:`event_measures`, when a batch has
    them already. Input with non-finite samples gets no events (it is rejected as ABP_NAN).
    """
    x = np.asarray(abp, dtype=np.float64).reshape(-1)
    fs_hz = float(fs_hz)
    if measures is None:  # (measures exist only for finite windows of at least 4 samples)
        if x.shape[0] < 4 or not fs_hz > 0 or not np.isfinite(x).all():
            return []
        measures = event_measures(x[None, :], fs_hz)[0]
    m = measures
    with np.errstate(all="ignore"):
        return _events(x, fs_hz, ref_sbp_mmhg, m)


def _events(x: np.ndarray, fs_hz: float, ref_sbp_mmhg: float | None, m: EventMeasures) -> list[AbpEvent]:
    T = EVENT_THRESHOLDS
    n = x.shape[0]
    events: list[AbpEvent] = []
    w = max(3, int(round(T["pulse_window_s"] * fs_hz)))
    if ref_sbp_mmhg is None:
        ref_sbp_mmhg = m.rolling_max_median_mmhg
    # fast flush / square wave: a flat plateau far above systole
    if m.max_mmhg > ref_sbp_mmhg + T["flush_above_sbp_mmhg"]:
        hi = _runs(x > ref_sbp_mmhg + T["flush_above_sbp_mmhg"])
        for a, b in hi[(hi[:, 1] - hi[:, 0]) >= T["flush_min_s"] * fs_hz]:
            seg = x[a:b]
            if np.percentile(seg, 95) - np.percentile(seg, 5) <= T["flush_flat_mmhg"]:
                events.append(AbpEvent(Reason.ABP_FLUSH, a / fs_hz, b / fs_hz))
    # clipping: the window's maximum held exactly on flat tops of at least two beats (a natural
    # systolic peak stays within 0.5 mmHg of its top for about 20 ms; a clipped one for much longer)
    runs = m.clip_runs
    if runs.shape[0] >= 2:
        events.append(AbpEvent(Reason.ABP_CLIPPED, runs[0, 0] / fs_hz, runs[-1, 1] / fs_hz))
    # non-pulsatile runs, widened by half the rolling span to the flat part's true extent:
    # zeroing (near 0), blood sampling (ramping, or held above systole), else a flat line
    core = m.non_pulsatile_runs
    if not core.shape[0]:
        return events
    flat = np.stack((np.maximum(core[:, 0] - w // 2, 0), np.minimum(core[:, 1] + w // 2, n)), axis=1)
    flush = [(e.start_s * fs_hz, e.end_s * fs_hz) for e in events if e.reason is Reason.ABP_FLUSH]
    for (a, b), (ca, cb) in zip(flat, core):
        if any(a < fb + w and b > fa - w for fa, fb in flush):
            continue  # the flush plateau itself
        dur = (b - a) / fs_hz
        seg = x[a:b]
        level = float(np.median(seg))
        if abs(level) < T["zero_level_mmhg"]:
            if dur >= T["zero_min_s"]:
                events.append(AbpEvent(Reason.ABP_ZEROING, a / fs_hz, b / fs_hz))
        elif dur >= T["sampling_min_s"]:
            slope = abs(float(x[cb - 1] - x[ca])) / max((cb - 1 - ca) / fs_hz, 1.0 / fs_hz)
            high = level >= ref_sbp_mmhg + T["sampling_above_sbp_mmhg"]
            if slope >= T["sampling_ramp_mmhg_s"] or high:
                events.append(AbpEvent(Reason.ABP_BLOOD_SAMPLING, a / fs_hz, b / fs_hz))
            else:
                events.append(AbpEvent(Reason.ABP_FLAT, a / fs_hz, b / fs_hz))
    return events


def offset_steps(sbp: np.ndarray, dbp: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Indices k of beats where SBP, DBP and MAP step together and stay there.

    Medians of the 8 beats before k and of the 8 beats after k (beat k may straddle the step and is left
    out) differ by >= 15 mmHg in MAP, by the same amount within 5 mmHg in SBP and DBP (pulse pressure
    within a quarter of the step), and the change is
    abrupt: the 2-beat medians next to k already differ by >= 75 % of the step, and each side is steady
    (median absolute deviation <= a quarter of the step). Respiratory swings, ectopy and gradual
    haemodynamic changes do not pass.
    """
    T = EVENT_THRESHOLDS
    h = 8
    n = mean.shape[0]
    if n < 2 * h + 1:
        return np.zeros(0, dtype=np.int64)
    # a median of 8 beats lies within their range: where no pair of sides' ranges is 15 mmHg apart,
    # no step can reach the minimum; skip the medians (NaN beats: fmax/fmin ignore them, as the sort does)
    fin = mean[np.isfinite(mean)]
    if fin.size == 0 or fin.max() - fin.min() < T["step_min_mmhg"]:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(n - h + 1)[:, None] + np.arange(h)[None, :]  # the 8-beat windows, as a copy:
    win = mean[rows]  # contiguous rows sort and reduce much faster than a strided sliding view
    with np.errstate(all="ignore"):
        hi8, lo8 = np.fmax.reduce(win, axis=1), np.fmin.reduce(win, axis=1)
        kk = np.arange(h, n - h)
        reach = np.maximum(hi8[kk + 1] - lo8[kk - h], hi8[kk - h] - lo8[kk + 1])
    if not (reach >= T["step_min_mmhg"]).any():
        return np.zeros(0, dtype=np.int64)

    def med(w):  # running medians of 8-beat windows: mean of the two middle values
        srt = np.sort(w, axis=1)
        return 0.5 * (srt[:, h // 2 - 1] + srt[:, h // 2])

    m8, s8, d8 = med(win), med(sbp[rows]), med(dbp[rows])
    m2 = 0.5 * (mean[1:] + mean[:-1])
    dev = np.sort(np.abs(win - m8[:, None]), axis=1)
    mad = 0.5 * (dev[:, h // 2 - 1] + dev[:, h // 2])  # spread of each 8-beat side
    k = np.arange(h, n - h)
    pre, post = k - h, k + 1
    step = m8[post] - m8[pre]
    jump = m2[k + 1] - m2[k - 2]
    ok = (
        (np.abs(step) >= T["step_min_mmhg"])
        & (np.abs((s8[post] - s8[pre]) - step) <= T["step_tol_mmhg"])
        & (np.abs((d8[post] - d8[pre]) - step) <= T["step_tol_mmhg"])
        & (np.abs((s8[post] - s8[pre]) - (d8[post] - d8[pre])) <= T["step_pp_ratio"] * np.abs(step))
        & (jump * np.sign(step) >= 0.75 * np.abs(step))
        & (mad[pre] <= np.abs(step) / 4)
        & (mad[post] <= np.abs(step) / 4)
    )
    ok &= np.isfinite(step)
    hit = k[ok]
    if hit.size > 1:  # one step, one index: keep the first of each cluster
        hit = hit[np.concatenate(([True], np.diff(hit) > 3))]
    return hit.astype(np.int64)


def upstroke_rate_hz(x: np.ndarray, fs_hz: float, p2p: np.ndarray) -> float:
    """Steepest upstroke over the window (99th percentile of dP/dt, mmHg/s) per mmHg of pulse pressure.

    A shape measure that does not scale with amplitude: about 1/rise time. Over-damping (a low-pass
    line) lowers it; a real fall in pulse pressure does not.
    """
    pp = float(np.median(p2p))
    if not pp > 0 or x.shape[0] < 3:
        return float("nan")
    d = np.diff(x)
    k = int(0.99 * (d.shape[0] - 1))
    return float(np.partition(d, k)[k] * fs_hz / pp)


def is_damped(
    pp_window_mmhg: float,
    map_window_mmhg: float,
    upstroke_hz: float,
    ref_pp_mmhg: float | None,
    ref_map_mmhg: float | None,
    ref_upstroke_hz: float | None,
) -> bool:
    """Over-damping, against the patient's own reference: pulse pressure collapsed, MAP kept, and the
    upstroke slowed (the waveform is smoothed, not merely smaller)."""
    T = EVENT_THRESHOLDS
    vals = (pp_window_mmhg, map_window_mmhg, upstroke_hz, ref_pp_mmhg, ref_map_mmhg, ref_upstroke_hz)
    if any(v is None or not np.isfinite(v) for v in vals):
        return False
    tol = max(T["damped_map_tol_mmhg"], 0.15 * ref_map_mmhg)
    return bool(
        T["damped_min_pp_mmhg"] <= pp_window_mmhg < T["damped_pp_ratio"] * ref_pp_mmhg
        and abs(map_window_mmhg - ref_map_mmhg) <= tol
        and upstroke_hz < T["damped_upstroke_ratio"] * ref_upstroke_hz
    )
