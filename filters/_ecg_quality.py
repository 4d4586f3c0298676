"""ECG signal quality per window, batched (pure numpy/scipy, causal filters).

Measures, per window of an (n_windows, n_samples) array in mV:

- two QRS detectors of different design and their agreement, bSQI (Li, Clark & Clifford 2008):
  A) Pan-Tompkins style: 5-15 Hz band-pass, derivative, squaring, 150 ms moving integration,
     one global threshold per window; B) 8-25 Hz band-pass magnitude smoothed over 40 ms with a
     threshold from the median of per-2-s maxima. Both are moved to the largest |8-25 Hz| sample
     near the detection, and matched within 150 ms;
- Orphanidou et al. 2015 rules on detector A: mean HR, longest gap (window edges included),
  RR max/min, mean correlation of beats with the window's own average beat;
- kurtosis (Pearson) of the band-passed ECG (kSQI);
- basSQI = 1 - P(0-1 Hz) / P(0-40 Hz) of the raw ECG (a true 0-1 Hz band, mean removed, Hann
  window; Li & Clifford 2008, thresholds from Zhao & Zhang 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._beats import (
    PeakSet,
    beat_matrix,
    causal_sos,
    filt,
    match_count,
    moving_mean,
    pick_peaks,
    refine,
    rr_stats,
    template_corr,
    window_templates,
)

__all__ = ["EcgQuality", "ecg_quality", "ecg_peaks", "bas_sqi"]

TEMPLATE_POINTS = 48


@dataclass(frozen=True)
class EcgQuality:
    """Per-window ECG measures (arrays of length n_windows; NaN where not computable)."""

    hr_bpm: np.ndarray
    n_beats: np.ndarray
    bsqi: np.ndarray
    max_gap_s: np.ndarray
    rr_ratio: np.ndarray
    template_corr: np.ndarray
    kurtosis: np.ndarray
    bas_sqi: np.ndarray


def _clean(x: np.ndarray, fs_hz: float) -> np.ndarray:
    return filt(causal_sos("bandpass", 0.5, 40.0, 2, float(fs_hz)), x, pad_n=int(fs_hz))


def _detector_a(x: np.ndarray, fs_hz: float) -> PeakSet:
    fs_hz = float(fs_hz)
    bp = filt(causal_sos("bandpass", 5.0, 15.0, 2, fs_hz), x, pad_n=int(0.25 * fs_hz))
    d = np.zeros_like(bp)
    d[:, 1:] = np.diff(bp, axis=1)
    mwi = moving_mean(d * d, int(round(0.15 * fs_hz)))
    t = mwi.shape[1]
    if t:
        k = int(0.98 * (t - 1))
        thr = 0.3 * np.partition(mwi, k, axis=1)[:, k]
    else:
        thr = np.zeros(mwi.shape[0])
    thr = np.maximum(thr, 1e-12)
    return pick_peaks(mwi, thr, int(round(0.2 * fs_hz)))


def _detector_b(x: np.ndarray, fs_hz: float) -> tuple[PeakSet, np.ndarray]:
    fs_hz = float(fs_hz)
    bp = np.abs(filt(causal_sos("bandpass", 8.0, 25.0, 2, fs_hz), x, pad_n=int(0.25 * fs_hz)))
    env = moving_mean(bp, int(round(0.04 * fs_hz)))
    n, t = env.shape
    block = max(int(round(2.0 * fs_hz)), 1)
    nb = t // block
    if nb >= 1:
        blk_max = env[:, : nb * block].reshape(n, nb, block).max(axis=2)
        thr = 0.35 * np.median(blk_max, axis=1)
    else:
        thr = 0.35 * env.max(axis=1) if t else np.zeros(n)
    thr = np.maximum(thr, 1e-12)
    return pick_peaks(env, thr, int(round(0.25 * fs_hz))), bp


def ecg_peaks(ecg: np.ndarray, fs_hz: float = 125.0) -> tuple[PeakSet, PeakSet]:
    """R peaks of both detectors (A, B), each moved to the largest |8-25 Hz| sample within
    -150..+50 ms (undoing the detectors' causal delays). ``ecg``: finite (n, T) array in mV."""
    fs_hz = float(fs_hz)
    a = _detector_a(ecg, fs_hz)
    b, qrs = _detector_b(ecg, fs_hz)
    lo, hi = int(round(0.15 * fs_hz)), int(round(0.05 * fs_hz))
    return refine(a, qrs, lo, hi), refine(b, qrs, lo, hi)


@lru_cache(maxsize=16)
def _bas_bands(t: int, fs_hz: float) -> tuple[np.ndarray, int, int]:
    """Hann window and the number of rfft bins at or below 1 Hz and 40 Hz."""
    f = np.fft.rfftfreq(t, d=1.0 / fs_hz)
    return np.hanning(t)[None, :], int(np.sum(f <= 1.0)), int(np.sum(f <= 40.0))


def bas_sqi(ecg: np.ndarray, fs_hz: float = 125.0) -> np.ndarray:
    """1 - power(0-1 Hz) / power(0-40 Hz) of the raw ECG per window (mean removed, Hann)."""
    n, t = ecg.shape
    if t < 4:
        return np.full(n, np.nan)
    win, n_low, n_tot = _bas_bands(t, float(fs_hz))
    x = ecg - ecg.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(x * win, axis=1)[:, :n_tot]
    p = spec.real**2 + spec.imag**2
    low = p[:, :n_low].sum(axis=1)
    tot = p.sum(axis=1)
    with np.errstate(all="ignore"):
        return np.where(tot > 0, 1.0 - low / tot, np.nan)


def _kurtosis(x: np.ndarray) -> np.ndarray:
    d = x - x.mean(axis=1, keepdims=True)
    d2 = d * d
    m2 = d2.mean(axis=1)
    m4 = (d2 * d2).mean(axis=1)
    with np.errstate(all="ignore"):
        return np.where(m2 > 0, m4 / (m2 * m2), np.nan)


def ecg_quality(ecg: np.ndarray, fs_hz: float = 125.0) -> EcgQuality:
    """Quality measures of finite ECG windows (n, T) in mV. Non-finite samples must be replaced
    beforehand (the integrity check reports them); see ``bpstream.filters.input_quality``."""
    fs_hz = float(fs_hz)
    n, t = ecg.shape
    a, b = ecg_peaks(ecg, fs_hz)
    na, nb = a.counts(), b.counts()
    m = match_count(a, b, int(round(0.15 * fs_hz)))
    denom = na + nb - m
    with np.errstate(all="ignore"):
        bsqi = np.where(denom > 0, m / np.maximum(denom, 1), 0.0)
    rr = rr_stats(a, fs_hz)
    clean = _clean(ecg, fs_hz)
    beats, rows = beat_matrix(clean, a, rr.median_rr_s * fs_hz, TEMPLATE_POINTS)
    tmpl, _ = window_templates(beats, rows, n)
    tc = template_corr(beats, rows, tmpl)
    return EcgQuality(
        hr_bpm=rr.hr_bpm,
        n_beats=rr.n_beats,
        bsqi=bsqi.astype(np.float64),
        max_gap_s=rr.max_gap_s,
        rr_ratio=rr.rr_ratio,
        template_corr=tc,
        kurtosis=_kurtosis(clean) if t else np.full(n, np.nan),
        bas_sqi=bas_sqi(ecg, fs_hz),
    )
