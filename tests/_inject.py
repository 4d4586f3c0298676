"""Synthetic arterial pressure and artifact injectors for filter tests (reusable by any test module).

Every injector takes a 1-D array and returns a modified float64 copy; positions are in seconds.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as _sig

__all__ = [
    "synthetic_abp",
    "inject_flat",
    "inject_clip",
    "inject_spike",
    "inject_flush",
    "inject_zeroing",
    "inject_blood_sampling",
    "inject_damping",
    "inject_offset",
    "inject_nan",
    "inject_noise",
]


def _beat_shape(n: int, fs: float) -> np.ndarray:
    """One normalised arterial beat (0 at the foot, 1 at the systolic peak) of ``n`` samples."""
    t = np.arange(n) / fs
    tr = 0.12
    s = np.where(t < tr, 0.5 * (1 - np.cos(np.pi * np.minimum(t, tr) / tr)), 0.0)
    tail = t >= tr
    s[tail] = np.exp(-(t[tail] - tr) / 0.35) + 0.12 * np.exp(-(((t[tail] - 0.36) / 0.04) ** 2))
    s -= np.linspace(0.0, s[-1], n)  # end of diastole back at the foot
    s = np.maximum(s, 0.0)
    return s / s.max()


def synthetic_abp(
    duration_s: float = 10.0,
    fs_hz: float = 125.0,
    sbp_mmhg: float = 120.0,
    dbp_mmhg: float = 70.0,
    hr_bpm: float = 75.0,
    phase_s: float = 0.0,
    noise_mmhg: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Arterial pressure with a fast upstroke, exponential run-off and a dicrotic wave (mmHg)."""
    n = int(round(duration_s * fs_hz))
    period = int(round(60.0 / hr_bpm * fs_hz))
    beat = _beat_shape(period, fs_hz)
    start = int(round(phase_s * fs_hz)) % period
    reps = (n + start) // period + 2
    x = np.tile(beat, reps)[start : start + n]
    x = dbp_mmhg + (sbp_mmhg - dbp_mmhg) * x
    if noise_mmhg:
        x = x + np.random.default_rng(seed).normal(0.0, noise_mmhg, n)
    return x.astype(np.float64)


def _span(x: np.ndarray, fs: float, t0_s: float, dur_s: float) -> slice:
    a = max(0, int(round(t0_s * fs)))
    b = min(x.shape[0], a + max(1, int(round(dur_s * fs))))
    return slice(a, b)


def inject_flat(x, fs_hz, t0_s, dur_s, value=None):
    """Flat line (signal held at its value at ``t0_s``, or at ``value``)."""
    y = np.array(x, dtype=np.float64)
    s = _span(y, fs_hz, t0_s, dur_s)
    y[s] = y[s.start] if value is None else value
    return y


def inject_clip(x, fs_hz=None, hi=None, lo=None):
    """Clipping at ``hi``/``lo`` (defaults: the 80th / 20th percentile)."""
    y = np.array(x, dtype=np.float64)
    hi = np.percentile(y, 80) if hi is None else hi
    lo = -np.inf if lo is None else lo
    return np.clip(y, lo, hi)


def inject_spike(x, fs_hz, t_s, amp=150.0, dur_s=0.02):
    """A short spike of ``amp`` added at ``t_s``."""
    y = np.array(x, dtype=np.float64)
    y[_span(y, fs_hz, t_s, dur_s)] += amp
    return y


def inject_flush(x, fs_hz, t0_s, dur_s=2.0, level_mmhg=300.0, ring_s=0.6):
    """Fast-flush (square-wave) test: a square pulse to ``level_mmhg`` then an under-damped ringing back."""
    y = np.array(x, dtype=np.float64)
    fs = fs_hz
    s = _span(y, fs, t0_s, dur_s)
    y[s] = level_mmhg
    r = _span(y, fs, t0_s + dur_s, ring_s)
    t = np.arange(r.stop - r.start) / fs
    base = y[r]
    y[r] = base + (level_mmhg - base) * np.exp(-t / 0.05) * np.cos(2 * np.pi * 18 * t)
    return y


def inject_zeroing(x, fs_hz, t0_s, dur_s=4.0, noise_mmhg=0.3, seed=0):
    """Transducer open to air: pressure near 0 mmHg with a little noise."""
    y = np.array(x, dtype=np.float64)
    s = _span(y, fs_hz, t0_s, dur_s)
    y[s] = np.random.default_rng(seed).normal(0.0, noise_mmhg, s.stop - s.start)
    return y


def inject_blood_sampling(x, fs_hz, t0_s, dur_s=6.0, ramp_to_mmhg=280.0):
    """Line closed for blood sampling: pulsatility vanishes and pressure drifts up towards the flush bag."""
    y = np.array(x, dtype=np.float64)
    s = _span(y, fs_hz, t0_s, dur_s)
    m = s.stop - s.start
    y[s] = np.linspace(y[s.start], ramp_to_mmhg, m)
    return y


def inject_damping(x, fs_hz, t0_s=0.0, dur_s=None, cutoff_hz=1.0):
    """Over-damped line: low-pass from ``t0_s`` on (pulse pressure collapses, mean preserved)."""
    y = np.array(x, dtype=np.float64)
    dur = y.shape[0] / fs_hz - t0_s if dur_s is None else dur_s
    s = _span(y, fs_hz, t0_s, dur)
    sos = _sig.butter(2, cutoff_hz, fs=fs_hz, output="sos")
    zi = _sig.sosfilt_zi(sos) * y[s.start]
    y[s] = _sig.sosfilt(sos, y[s], zi=zi)[0]
    return y


def inject_offset(x, fs_hz, t0_s, offset_mmhg=25.0):
    """Offset step (re-zeroing / re-levelling): every sample from ``t0_s`` on shifts by ``offset_mmhg``."""
    y = np.array(x, dtype=np.float64)
    y[int(round(t0_s * fs_hz)) :] += offset_mmhg
    return y


def inject_nan(x, fs_hz, t0_s, dur_s=0.5):
    """A gap of NaN samples."""
    y = np.array(x, dtype=np.float64)
    y[_span(y, fs_hz, t0_s, dur_s)] = np.nan
    return y


def inject_noise(x, fs_hz, t0_s, dur_s, sd_mmhg=15.0, seed=0):
    """White noise (high-frequency artifact) over a span."""
    y = np.array(x, dtype=np.float64)
    s = _span(y, fs_hz, t0_s, dur_s)
    y[s] += np.random.default_rng(seed).normal(0.0, sd_mmhg, s.stop - s.start)
    return y
