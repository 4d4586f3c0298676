"""Beat onsets of an arterial pressure waveform: a slope-sum detector in the style of Zong et al. 2003 (wabp).

A pure function of one block of samples (a window or a whole record): no state is carried between calls,
so the zero-phase (centred FIR) low-pass inside the block never looks past the block.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal as _sig

__all__ = ["abp_onsets", "as_1d"]

_LOWPASS_HZ = 16.0  # wabp's low-pass corner
_SSF_WINDOW_S = 0.128  # slope-sum window
_LOCKOUT_S = 0.256  # refractory ("eye-closing") period after a detection
_TIMEOUT_S = 2.5  # no beat for this long: lower the threshold
_THR_OFFSET_MMHG = 5.0  # threshold = base/3 + offset (wabp's avg0 + 5)
_MIN_RISE_MMHG = 10.0  # an SSF pulse must rise this much above its local minimum
_DECAY_PER_S = 125.0  # threshold-base decay (wabp: 1 unit per sample at 125 Hz)
_MIN_SAMPLES_S = 1.0  # shorter input has no complete beat worth detecting


def as_1d(abp) -> np.ndarray:
    if abp is None:
        return np.zeros(0, dtype=np.float64)
    x = np.asarray(abp, dtype=np.float64)
    return x.reshape(-1)


def _fill_nonfinite(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over non-finite samples (for detection only; such beats are marked bad)."""
    ok = np.isfinite(x)
    if ok.all():
        return x
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(x.shape[0])
    return np.interp(idx, idx[ok], x[ok])


@lru_cache(maxsize=16)
def _lowpass_taps(fs: float) -> np.ndarray:
    """Linear-phase FIR low-pass (Hamming), about 90 ms long: zero phase when centred."""
    half = max(2, int(round(0.045 * fs)))
    return _sig.firwin(2 * half + 1, _LOWPASS_HZ, fs=fs).astype(np.float64)


def _lowpass(x: np.ndarray, fs: float) -> np.ndarray:
    if fs <= 2.5 * _LOWPASS_HZ:
        return x
    h = _lowpass_taps(fs)
    half = h.shape[0] // 2
    if x.shape[0] <= h.shape[0]:
        return x
    xp = np.concatenate((np.full(half, x[0]), x, np.full(half, x[-1])))
    return np.convolve(xp, h, mode="valid")


def _ssf(y: np.ndarray, w: int) -> np.ndarray:
    """Slope sum function: sum of the positive first differences over the last ``w`` samples."""
    du = np.diff(y, prepend=y[0])
    np.maximum(du, 0.0, out=du)
    c = np.cumsum(du)
    out = c.copy()
    out[w:] -= c[:-w]
    return out


def _first_crossing(ssf: np.ndarray, lo: int, hi: int, thr) -> int:
    """First k in [lo, hi) with ssf[k] > thr[k] >= ssf[k-1] (upward crossing); -1 if none."""
    if hi <= lo:
        return -1
    cur = ssf[lo:hi]
    prev = ssf[lo - 1 : hi - 1]
    hit = (cur > thr) & (prev <= thr)
    k = int(np.argmax(hit))
    return lo + k if hit[k] else -1


def abp_onsets(abp, sampling_rate: float = 125.0) -> np.ndarray:
    """Beat onset sample indices of an arterial pressure waveform (mmHg), slope-sum detector.

    Low-pass (16 Hz), slope sum over 128 ms, threshold ``base/3 + 5 mmHg`` with ``base`` starting at
    three times the mean slope sum and tracking each detected pulse's slope-sum peak, decaying after
    2.5 s without a beat; a candidate needs an upward crossing and a slope-sum rise of >= 10 mmHg;
    the onset is where the slope sum starts to rise, searched back 128 ms from the crossing; 256 ms
    refractory period. Non-finite samples are interpolated for detection. Returns int64 indices.
    """
    x = as_1d(abp)
    fs = float(sampling_rate) if np.isfinite(sampling_rate) and sampling_rate > 0 else 0.0
    n = x.shape[0]
    if fs <= 0 or n < max(8, int(_MIN_SAMPLES_S * fs)):
        return np.zeros(0, dtype=np.int64)
    with np.errstate(all="ignore"):
        return _detect(_fill_nonfinite(x), fs)


def _detect(x: np.ndarray, fs: float) -> np.ndarray:
    n = x.shape[0]
    y = _lowpass(x, fs)
    w = max(2, int(round(_SSF_WINDOW_S * fs)))
    lock = max(1, int(round(_LOCKOUT_S * fs)))
    timeout = int(round(_TIMEOUT_S * fs))
    dec = _DECAY_PER_S / fs
    ssf = _ssf(y, w)
    ssf[:w] = 0.0  # incomplete sums at the start (and the filter edge) never trigger
    end = n - w
    base = 3.0 * float(np.mean(ssf[: min(n, int(8 * fs))]))
    t = w + 1
    last = t
    onsets: list[int] = []
    while t < end:
        seg_end = min(end, max(t, last + timeout))
        k = _first_crossing(ssf, t, seg_end, base / 3.0 + _THR_OFFSET_MMHG)
        if k < 0:
            lo = max(t, seg_end)
            if lo >= end:
                break
            steps = np.arange(lo, end) - (last + timeout)
            bases = np.maximum(base - steps * dec, 0.0)
            k = _first_crossing(ssf, lo, end, bases / 3.0 + _THR_OFFSET_MMHG)
            if k < 0:
                break
            base = float(bases[k - lo])
        mx = float(ssf[k : k + w + 1].max())
        mn = float(ssf[k - w : k + 1].min())
        if mx > mn + _MIN_RISE_MMHG:
            tt = np.arange(k - w, k + 1)
            dssf = ssf[tt] - ssf[tt - 1]
            below = np.flatnonzero(dssf < 0.01 * mx)
            onset = int(tt[below[-1]]) if below.size else int(tt[0])
            if not onsets or onset > onsets[-1]:
                onsets.append(onset)
            base += 0.1 * (mx - base)
            last = k
            t = k + lock
        else:
            t = k + 1
    return np.asarray(onsets, dtype=np.int64)
