"""PPG signal quality per window, batched (pure numpy/scipy, causal band-pass).

Per window of an (n_windows, n_samples) array in the monitor's raw PPG units:

- skewness of the 0.5-8 Hz band-passed PPG (SSQI, Elgendi 2016: > 0 for a clean pulse);
- systolic peaks (Elgendi 2013: two moving averages of the clipped, squared band-passed PPG
  mark blocks of interest; the peak is the largest sample within +-0.25 s inside a block);
- Orphanidou et al. 2015 rules: mean HR, longest gap, RR max/min, and beat morphology: every
  beat resampled over one median RR (HR-normalized, 48 points), z-scored; the window's mean beat
  is its own template. Correlation against a per-patient running template is computed by
  ``InputFilter`` (the mean of per-beat correlations equals the window's mean z-beat dotted with
  the z-scored template, so only the window template is needed);
- perfusion: the median beat peak-to-peak of the band-passed PPG, in raw units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from ._beats import PeakSet, beat_matrix, causal_sos, filt, pick_peaks, rr_stats, window_templates, zscore_rows

__all__ = ["PpgQuality", "ppg_quality", "ppg_peaks", "template_correlation", "TEMPLATE_POINTS"]

TEMPLATE_POINTS = 48


@dataclass(frozen=True)
class PpgQuality:
    """Per-window PPG measures (arrays of length n_windows; NaN where not computable).

    ``template`` holds each window's mean z-scored beat (n_windows, TEMPLATE_POINTS), zeros
    without beats; ``own_template_corr`` is Orphanidou's correlation with that own template."""

    hr_bpm: np.ndarray
    n_beats: np.ndarray
    max_gap_s: np.ndarray
    rr_ratio: np.ndarray
    skewness: np.ndarray
    amplitude: np.ndarray
    own_template_corr: np.ndarray
    template: np.ndarray
    n_template_beats: np.ndarray


def _bandpass(ppg: np.ndarray, fs_hz: float) -> np.ndarray:
    return filt(causal_sos("bandpass", 0.5, 8.0, 2, float(fs_hz)), ppg, pad_n=int(fs_hz))


def _peaks_of(bp: np.ndarray, fs_hz: float) -> PeakSet:
    fs_hz = float(fs_hz)
    n, t = bp.shape
    y = np.maximum(bp, 0.0)
    y = y * y
    w1 = max(int(round(0.111 * fs_hz)), 1)
    w2 = max(int(round(0.667 * fs_hz)), 1)
    ma_peak = uniform_filter1d(y, size=w1, axis=1, mode="nearest")
    ma_beat = uniform_filter1d(y, size=w2, axis=1, mode="nearest")
    alpha = 0.02 * y.mean(axis=1, keepdims=True) if t else np.zeros((n, 1))
    block = ma_peak > ma_beat + alpha
    feature = np.where(block, bp, -np.inf)
    return pick_peaks(feature, np.zeros(n), int(round(0.25 * fs_hz)))


def ppg_peaks(ppg: np.ndarray, fs_hz: float = 125.0) -> PeakSet:
    """Systolic peaks of finite PPG windows (n, T), positions on the causally band-passed PPG."""
    return _peaks_of(_bandpass(ppg, fs_hz), fs_hz)


def _skew(x: np.ndarray) -> np.ndarray:
    d = x - x.mean(axis=1, keepdims=True)
    m2 = (d * d).mean(axis=1)
    m3 = (d * d * d).mean(axis=1)
    with np.errstate(all="ignore"):
        return np.where(m2 > 0, m3 / np.power(np.where(m2 > 0, m2, 1.0), 1.5), np.nan)


def template_correlation(window_templates_: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Mean correlation of each window's beats with ``template`` (one or one per window), from
    the windows' mean z-scored beats; NaN for windows without beats (all-zero rows)."""
    zt = zscore_rows(np.atleast_2d(np.asarray(template, dtype=np.float64)))
    c = (window_templates_ * zt).mean(axis=1)
    has = np.any(window_templates_ != 0.0, axis=1)
    return np.where(has, c, np.nan)


def ppg_quality(ppg: np.ndarray, fs_hz: float = 125.0) -> PpgQuality:
    """Quality measures of finite PPG windows (n, T). Non-finite samples must be replaced
    beforehand (the integrity check reports them); see ``bpstream.filters.input_quality``."""
    fs_hz = float(fs_hz)
    n, t = ppg.shape
    bp = _bandpass(ppg, fs_hz)
    beats = _peaks_of(bp, fs_hz)
    rr = rr_stats(beats, fs_hz)
    m, rows = beat_matrix(bp, beats, rr.median_rr_s * fs_hz, TEMPLATE_POINTS, before=0.4)
    tmpl, cnt = window_templates(m, rows, n)
    own = template_correlation(tmpl, tmpl) if n else np.zeros(0)
    # own-template correlation is the mean beat correlation with the window's own mean z-beat
    if rows.size:
        ptp = np.ptp(m, axis=1)
        order = np.lexsort((ptp, rows))
        ps, rs = ptp[order], rows[order]
        starts = np.flatnonzero(np.r_[True, rs[1:] != rs[:-1]])
        c = np.diff(np.r_[starts, ps.size])
        amp = np.full(n, np.nan)
        amp[rs[starts]] = 0.5 * (ps[starts + (c - 1) // 2] + ps[starts + c // 2])
    else:
        amp = np.full(n, np.nan)
    miss = ~np.isfinite(amp)
    if t and miss.any():  # windows without a complete beat: robust peak-to-peak of the pulse band
        amp[miss] = np.percentile(bp[miss], 99, axis=1) - np.percentile(bp[miss], 1, axis=1)
    return PpgQuality(
        hr_bpm=rr.hr_bpm,
        n_beats=rr.n_beats,
        max_gap_s=rr.max_gap_s,
        rr_ratio=rr.rr_ratio,
        skewness=_skew(bp) if t else np.full(n, np.nan),
        amplitude=amp,
        own_template_corr=own,
        template=tmpl,
        n_template_beats=cnt,
    )
