"""Physiological features of ECG + PPG windows: heart rate, pulse arrival time, PPG amplitude and shape.

Pure numpy/scipy, batched over windows shaped (n_windows, n_samples). These are the inputs that carry
most of the within-patient blood-pressure signal (pulse arrival time falls when pressure rises), and the
model sees them beside its convolutional embedding.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as _sig

from bpstream.filters import sosfiltfilt_rows

__all__ = ["FEATURE_NAMES", "N_FEATURES", "window_features", "normalize_waveforms"]

FEATURE_NAMES: tuple[str, ...] = (
    "hr_ecg_bpm",
    "hr_ppg_bpm",
    "pat_ms",
    "pat_iqr_ms",
    "ppg_amp_log",
    "ppg_rise_ms",
    "ppg_width_ms",
    "ecg_amp_log",
    "beat_fraction",
)
N_FEATURES = len(FEATURE_NAMES)

# fixed scaling so the network sees numbers of order one (population-typical centre, spread)
_CENTER = np.array([85.0, 85.0, 250.0, 20.0, 0.0, 150.0, 300.0, 0.0, 0.8], dtype=np.float32)
_SCALE = np.array([20.0, 20.0, 80.0, 20.0, 1.0, 60.0, 100.0, 1.0, 0.3], dtype=np.float32)

_SOS_CACHE: dict[tuple, np.ndarray] = {}


def _sos(kind: str, fs_hz: float) -> np.ndarray:
    key = (kind, float(fs_hz))
    if key not in _SOS_CACHE:
        if kind == "ecg":
            sos = _sig.butter(2, [8.0, 30.0], btype="bandpass", fs=fs_hz, output="sos")
        else:
            sos = _sig.butter(2, [0.5, 8.0], btype="bandpass", fs=fs_hz, output="sos")
        _SOS_CACHE[key] = sos
    return _SOS_CACHE[key]


def _r_peaks(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """R-peak sample indices of a band-passed ECG: squared slope energy, adaptive height (polarity free)."""
    energy = np.convolve(np.diff(x, prepend=x[0]) ** 2, np.ones(int(0.08 * fs_hz)), "same")
    if not np.isfinite(energy).all() or energy.max() <= 0:
        return np.zeros(0, dtype=int)
    peaks, _ = _sig.find_peaks(
        energy, height=0.3 * np.percentile(energy, 99), distance=int(0.27 * fs_hz)
    )
    # refine to the largest absolute deflection of the filtered ECG nearby
    half = int(0.05 * fs_hz)
    out = []
    for p in peaks:
        lo, hi = max(p - half, 0), min(p + half, len(x))
        out.append(lo + int(np.argmax(np.abs(x[lo:hi]))))
    return np.asarray(out, dtype=int)


def _ppg_beats(x: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PPG feet (max-slope points), systolic peaks, pulse amplitudes and half-height widths (band-passed PPG)."""
    d = np.diff(x, prepend=x[0])
    if not np.isfinite(d).all() or np.ptp(d) <= 0:
        empty = np.zeros(0)
        return empty.astype(int), empty.astype(int), empty, empty
    slopes, _ = _sig.find_peaks(
        d, height=0.35 * np.percentile(d, 99), distance=int(0.27 * fs_hz)
    )
    feet, peaks, amps, widths = [], [], [], []
    look = int(0.45 * fs_hz)
    back = int(0.25 * fs_hz)
    for s in slopes:
        lo, hi = max(s - back, 0), min(s + look, len(x))
        if hi - s < 3 or s - lo < 1:
            continue
        foot = lo + int(np.argmin(x[lo : s + 1]))
        peak = s + int(np.argmax(x[s:hi]))
        amp = x[peak] - x[foot]
        if amp <= 0:
            continue
        half_level = x[foot] + 0.5 * amp
        left = np.nonzero(x[foot:peak] < half_level)[0]
        right = np.nonzero(x[peak : min(peak + int(0.8 * fs_hz), len(x))] < half_level)[0]
        width = (peak + (right[0] if right.size else int(0.4 * fs_hz))) - (foot + (left[-1] if left.size else 0))
        feet.append(s)
        peaks.append(peak)
        amps.append(amp)
        widths.append(width)
    return (
        np.asarray(feet, dtype=int),
        np.asarray(peaks, dtype=int),
        np.asarray(amps, dtype=float),
        np.asarray(widths, dtype=float),
    )


def _one(xf: np.ndarray, pf: np.ndarray, fs_hz: float) -> np.ndarray:
    """Features of one window from its band-passed ECG ``xf`` and PPG ``pf``."""
    fs_hz = float(fs_hz)
    out = np.full(N_FEATURES, np.nan)
    n = len(xf)
    r = _r_peaks(xf, fs_hz)
    feet, peaks, amps, widths = _ppg_beats(pf, fs_hz)
    if r.size >= 3:
        out[0] = 60.0 / np.median(np.diff(r) / fs_hz)
        out[7] = np.log(np.median(np.abs(xf[r])) + 1e-3)
    if feet.size >= 3:
        out[1] = 60.0 / np.median(np.diff(feet) / fs_hz)
        out[4] = np.log(np.median(amps) + 1e-6)
        out[5] = 1000.0 * np.median(peaks - feet) / fs_hz
        out[6] = 1000.0 * np.median(widths) / fs_hz
    if r.size >= 3 and feet.size >= 3:
        # pulse arrival time: each R peak to the next PPG max-slope point within 80-700 ms
        idx = np.searchsorted(feet, r + int(0.08 * fs_hz))
        ok = idx < feet.size
        pats = (feet[idx[ok]] - r[ok]) / fs_hz
        pats = pats[(pats >= 0.08) & (pats <= 0.7)]
        if pats.size >= 2:
            out[2] = 1000.0 * np.median(pats)
            q75, q25 = np.percentile(pats, [75, 25])
            out[3] = 1000.0 * (q75 - q25)
        expected = max(n / fs_hz * out[0] / 60.0, 1.0) if np.isfinite(out[0]) else 1.0
        out[8] = min(pats.size / expected, 1.0)
    else:
        out[8] = 0.0
    return out


def window_features(ecg: np.ndarray, ppg: np.ndarray, *, fs_hz: float = 125.0) -> np.ndarray:
    """Scaled physiological features, shape (n_windows, N_FEATURES), float32, NaN replaced by 0.

    ``ecg`` and ``ppg``: arrays (n_windows, n_samples) or single windows (n_samples,).
    Missing features (no beats found) become the population centre (0 after scaling).
    """
    ecg = np.atleast_2d(np.asarray(ecg))
    ppg = np.atleast_2d(np.asarray(ppg))
    if ecg.shape != ppg.shape:
        raise ValueError(f"ecg {ecg.shape} and ppg {ppg.shape} must have the same shape")
    if not len(ecg):
        return np.zeros((0, N_FEATURES), np.float32)
    # zero-phase band-pass of the whole batch at once (offline within a window: allowed)
    ef = sosfiltfilt_rows(_sos("ecg", fs_hz), np.nan_to_num(ecg.astype(np.float64)))
    pf = sosfiltfilt_rows(_sos("ppg", fs_hz), np.nan_to_num(ppg.astype(np.float64)))
    raw = np.stack([_one(e, p, fs_hz) for e, p in zip(ef, pf)])
    z = (raw.astype(np.float32) - _CENTER) / _SCALE
    z = np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), -5.0, 5.0)
    return z.astype(np.float32)


def normalize_waveforms(ecg: np.ndarray, ppg: np.ndarray) -> np.ndarray:
    """Per-window robust z-scored (ECG, PPG) stack, shape (n_windows, 2, n_samples), float32."""
    ecg = np.atleast_2d(np.asarray(ecg, dtype=np.float32))
    ppg = np.atleast_2d(np.asarray(ppg, dtype=np.float32))
    x = np.stack([ecg, ppg], axis=1)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    med = np.median(x, axis=2, keepdims=True)
    scale = np.percentile(x, 95, axis=2, keepdims=True) - np.percentile(x, 5, axis=2, keepdims=True)
    x = (x - med) / np.maximum(scale, 1e-6)
    return np.clip(x, -5.0, 5.0).astype(np.float32)
