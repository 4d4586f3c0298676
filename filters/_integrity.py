"""Raw integrity of windows of one channel, before any filtering (batched, pure numpy).

Every function takes an array shaped (n_windows, n_samples) in physical units and returns
per-window arrays. Nothing here raises on NaN, inf, constant or very short input.

- non-finite samples (NaN gaps, inf, and magnitudes >= 1e6) are counted;
- flat runs: stretches of at least ``flat_min_s`` seconds where the signal does not move
  (|difference| <= a tolerance far below any physiological change);
- clipping and flat peaks: plateaus of at least ``clip_min_s`` seconds within ``clip_band`` (a
  fraction of the range) of the window's own maximum or minimum (saturated amplifier drifting along
  its rail, ADC limits, flattened pulse tops); a rounded pulse peak stays that close for < 0.05 s;
- amplitude: a robust peak-to-peak (1st to 99th percentile) in the channel's physical unit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

__all__ = ["Integrity", "signal_integrity", "integrity_and_clean", "as_windows", "run_cover", "MAX_ABS"]

# larger magnitudes are no measurement in any physiological unit (mV, PPG units, mmHg): treated as NaN
MAX_ABS = 1e6


@dataclass(frozen=True)
class Integrity:
    """Per-window raw-integrity measures of one channel (arrays of length n_windows)."""

    nonfinite_fraction: np.ndarray  # fraction of NaN/inf samples
    flat_fraction: np.ndarray  # fraction of samples inside flat runs >= flat_min_s
    clipped_fraction: np.ndarray  # fraction of samples on plateaus at the window max/min
    amplitude: np.ndarray  # robust peak-to-peak (p99 - p1), physical unit; 0 when unknown


def as_windows(x: object) -> np.ndarray:
    """Coerce input to a float64 2-D array (n_windows, n_samples); a 1-D array is one window."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a[None, :]
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    return a


def run_cover(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Mark the elements of ``mask`` (n, T) that belong to a run of >= ``min_len`` True values."""
    n, t = mask.shape
    if min_len <= 1:
        return mask.copy()
    if t < min_len:
        return np.zeros_like(mask)
    c = np.zeros((n, t + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, dtype=np.int32, out=c[:, 1:])
    full = (c[:, min_len:] - c[:, :-min_len]) == min_len  # (n, t - min_len + 1): run starts here
    starts = np.zeros((n, t), dtype=bool)
    starts[:, : full.shape[1]] = full
    # spread each start forward over min_len elements
    spread = maximum_filter1d(starts.view(np.uint8), size=min_len, axis=1, origin=(min_len - 1) // 2, mode="constant")
    return spread.astype(bool)


def signal_integrity(x: np.ndarray, fs_hz: float = 125.0, flat_min_s: float = 0.12, clip_min_s: float = 0.08, clip_band: float = 0.01) -> Integrity:
    """Raw integrity measures of windows ``x`` (n_windows, n_samples) sampled at ``fs_hz``."""
    return integrity_and_clean(x, fs_hz, flat_min_s, clip_min_s, clip_band)[0]


def _amplitude(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1st-to-99th percentile range (nearest rank), max and min of all-finite windows."""
    k1, k99 = int(round(0.01 * (t - 1))), int(round(0.99 * (t - 1)))
    part = np.partition(x, (k1, k99), axis=1)
    return part[:, k99] - part[:, k1], x.max(axis=1), x.min(axis=1)


def integrity_and_clean(
    x: np.ndarray,
    fs_hz: float = 125.0,
    flat_min_s: float = 0.12,
    clip_min_s: float = 0.08,
    clip_band: float = 0.01,
) -> tuple[Integrity, np.ndarray]:
    """Integrity measures and a finite copy of ``x`` (non-finite samples set to 0)."""
    x = as_windows(x)
    n, t = x.shape
    if t == 0:
        z = np.zeros(n)
        return Integrity(np.ones(n), z, z.copy(), z.copy()), x
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x) & (np.abs(x) < MAX_ABS)
    nonfinite = 1.0 - finite.mean(axis=1)
    any_bad = not finite.all()
    xf = np.where(finite, x, 0.0) if any_bad else x
    # robust amplitude; windows with any non-finite sample get it from their finite part. Decided per
    # window, so a window's numbers never depend on the other windows of its batch.
    if not any_bad:
        amp, top, bot = _amplitude(x, t)
    else:
        bad_rows = ~finite.all(axis=1)
        amp, top, bot = np.empty(n), np.empty(n), np.empty(n)
        good = ~bad_rows
        if good.any():
            amp[good], top[good], bot[good] = _amplitude(x[good], t)
        xm = np.where(finite[bad_rows], x[bad_rows], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(xm, [1.0, 99.0], axis=1)
        amp[bad_rows] = np.nan_to_num(hi - lo, nan=0.0, posinf=0.0, neginf=0.0)
        top[bad_rows] = np.nan_to_num(np.nanmax(np.where(finite[bad_rows], x[bad_rows], -np.inf), axis=1), neginf=0.0)
        bot[bad_rows] = np.nan_to_num(np.nanmin(np.where(finite[bad_rows], x[bad_rows], np.inf), axis=1), posinf=0.0)
    scale = np.maximum(np.abs(top), np.abs(bot))
    # "does not move": below float32 resolution of the signal's level plus a hair of its range
    tol = 1e-6 + 2e-6 * scale + 1e-4 * amp
    if t >= 2:
        step = np.abs(np.diff(xf, axis=1))
        still = (step <= tol[:, None]) & finite[:, 1:] & finite[:, :-1]
        flat_steps = max(1, int(np.ceil(flat_min_s * fs_hz)) - 1)
        cov = run_cover(still, flat_steps)
        flat_samples = np.zeros((n, t), dtype=bool)
        flat_samples[:, 1:] |= cov
        flat_samples[:, :-1] |= cov
        flat_fraction = flat_samples.mean(axis=1)
        # plateaus at the extremes: within clip_band of the window's max/min for >= clip_min_s
        # (a saturated amplifier drifts slowly along its rail, so no stillness is required)
        band = (clip_band * (top - bot))[:, None]
        at_ext = (xf >= top[:, None] - band) | (xf <= bot[:, None] + band)
        at_ext &= finite
        clip_n = max(2, int(np.ceil(clip_min_s * fs_hz)))
        clip_samples = run_cover(at_ext, clip_n)
        # a plateau that fills a whole flat window is "flat", not "clipped"
        clipped_fraction = np.where(amp > 0, clip_samples.mean(axis=1), 0.0)
    else:
        flat_fraction = np.ones(n)
        clipped_fraction = np.zeros(n)
    integ = Integrity(
        nonfinite_fraction=nonfinite,
        flat_fraction=flat_fraction,
        clipped_fraction=clipped_fraction,
        amplitude=np.maximum(amp, 0.0),
    )
    return integ, xf
