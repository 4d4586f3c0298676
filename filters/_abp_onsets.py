"""Beat onsets of an arterial pressure waveform: a slope-sum detector in the style of Zong et al. 2003 (wabp).

A pure function of one block of samples (a window or a whole record): no state is carried between calls,
so the zero-phase (centred FIR) low-pass inside the block never looks past the block.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as _ndi
from scipy import signal as _sig

__all__ = ["abp_onsets", "abp_onsets_batch", "as_1d"]

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
def _lowpass_taps(fs_hz: float) -> np.ndarray:
    """Linear-phase FIR low-pass (Hamming), about 90 ms long: zero phase when centred."""
    half = max(2, int(round(0.045 * fs_hz)))
    return _sig.firwin(2 * half + 1, _LOWPASS_HZ, fs=fs_hz).astype(np.float64)


def _lowpass(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """The 16 Hz low-pass along the last axis of ``x`` (one window or a batch of rows)."""
    if fs_hz <= 2.5 * _LOWPASS_HZ:
        return x
    h = _lowpass_taps(fs_hz)
    if x.shape[-1] <= h.shape[0]:
        return x
    # centred FIR, edges extended with the end samples (symmetric taps: convolution = correlation)
    return _ndi.convolve1d(x, h, axis=-1, mode="nearest")


def _ssf(y: np.ndarray, w: int) -> np.ndarray:
    """Slope sum function along the last axis: sum of the positive first differences over the last
    ``w`` samples."""
    du = np.diff(y, axis=-1, prepend=y[..., :1])
    np.maximum(du, 0.0, out=du)
    c = np.cumsum(du, axis=-1)
    out = c.copy()
    out[..., w:] -= c[..., :-w]
    return out


def _first_crossing(ssf: np.ndarray, lo: int, hi: int, thr) -> int:
    """First k in [lo, hi) with ssf[k] > thr[k] >= ssf[k-1] (upward crossing); -1 if none."""
    if hi <= lo:
        return -1
    seg = ssf[lo - 1 : hi]
    hit = (seg[1:] > thr) & (seg[:-1] <= thr)
    k = int(hit.argmax())
    return lo + k if hit[k] else -1


def abp_onsets(abp, fs_hz: float = 125.0) -> np.ndarray:
    """Beat onset sample indices of an arterial pressure waveform (mmHg), slope-sum detector.

    Low-pass (16 Hz), slope sum over 128 ms, threshold ``base/3 + 5 mmHg`` with ``base`` starting at
    three times the mean slope sum and tracking each detected pulse's slope-sum peak, decaying after
    2.5 s without a beat; a candidate needs an upward crossing and a slope-sum rise of >= 10 mmHg;
    the onset is where the slope sum starts to rise, searched back 128 ms from the crossing; 256 ms
    refractory period. Non-finite samples are interpolated for detection. Returns int64 indices.
    """
    x = as_1d(abp)
    return abp_onsets_batch(x[None, :], fs_hz)[0]


def abp_onsets_batch(abp: np.ndarray, fs_hz: float = 125.0) -> list[np.ndarray]:
    """:func:`abp_onsets` of each row of ``abp`` (n_windows, n_samples); the filtering is batched,
    only the beat-by-beat threshold tracking runs per row. Row ``i`` equals ``abp_onsets(abp[i])``."""
    x = np.asarray(abp, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"abp_onsets_batch: expected (n_windows, n_samples), got shape {x.shape}")
    fs_hz = float(fs_hz) if np.isfinite(fs_hz) and fs_hz > 0 else 0.0
    n = x.shape[1]
    if fs_hz <= 0 or n < max(8, int(_MIN_SAMPLES_S * fs_hz)):
        return [np.zeros(0, dtype=np.int64) for _ in range(x.shape[0])]
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            x = x.copy()
            for i in np.flatnonzero(bad):
                x[i] = _fill_nonfinite(x[i])
        w = max(2, int(round(_SSF_WINDOW_S * fs_hz)))
        ssf = _ssf(_lowpass(x, fs_hz), w)
        ssf[:, :w] = 0.0  # incomplete sums at the start (and the filter edge) never trigger
        base = 3.0 * np.mean(ssf[:, : min(n, int(8 * fs_hz))], axis=1)
        # rolling max of ssf[k : k + w + 1] and min of ssf[k - w : k + 1], read at k + (w + 1) // 2
        # and k - w + (w + 1) // 2 (a centred filter of size w + 1 covers [c - (w+1)//2, c - (w+1)//2 + w])
        fwd = _ndi.maximum_filter1d(ssf, w + 1, axis=1, mode="nearest")
        back = _ndi.minimum_filter1d(ssf, w + 1, axis=1, mode="nearest")
        d = np.diff(ssf, axis=1)  # d[j] = ssf[j + 1] - ssf[j]
        if x.shape[0] >= _LOCKSTEP_MIN_ROWS:
            return _detect_rows(ssf, fwd, back, d, base, fs_hz, w)
        return [_detect(ssf[i], fwd[i], back[i], d[i], float(base[i]), fs_hz, w) for i in range(x.shape[0])]


def _detect(ssf: np.ndarray, fwd: np.ndarray, back: np.ndarray, d: np.ndarray, base: float, fs_hz: float,
            w: int) -> np.ndarray:
    n = ssf.shape[0]
    lock = max(1, int(round(_LOCKOUT_S * fs_hz)))
    timeout = int(round(_TIMEOUT_S * fs_hz))
    dec = _DECAY_PER_S / fs_hz
    half = (w + 1) // 2
    end = n - w
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
        mx = float(fwd[k + half])  # max of ssf[k : k + w + 1]
        mn = float(back[k - w + half])  # min of ssf[k - w : k + 1]
        if mx > mn + _MIN_RISE_MMHG:
            # the slope sum starts to rise: last sample in [k - w, k] whose increase is below 1 % of the peak
            below = (d[k - w - 1 : k] < 0.01 * mx).nonzero()[0]
            onset = k - w + int(below[-1]) if below.size else k - w
            if not onsets or onset > onsets[-1]:
                onsets.append(onset)
            base += 0.1 * (mx - base)
            last = k
            t = k + lock
        else:
            t = k + 1
    return np.asarray(onsets, dtype=np.int64)


_LOCKSTEP_MIN_ROWS = 4  # below this, the row-by-row loop is cheaper
_NEAR = 96  # lockstep search: first this many samples after the refractory period (most beats), then the rest


def _detect_rows(ssf: np.ndarray, fwd: np.ndarray, back: np.ndarray, d: np.ndarray, base0: np.ndarray, fs_hz: float,
                 w: int) -> list[np.ndarray]:
    """:func:`_detect` for every row at once: one beat of every row per step, the threshold search and
    the onset search vectorized over rows (the rare timeout search stays per row). Same onsets."""
    n_rows, n = ssf.shape
    lock = max(1, int(round(_LOCKOUT_S * fs_hz)))
    timeout = int(round(_TIMEOUT_S * fs_hz))
    dec = _DECAY_PER_S / fs_hz
    half = (w + 1) // 2
    end = n - w
    t = np.full(n_rows, w + 1, dtype=np.int64)
    last = t.copy()
    base = np.array(base0, dtype=np.float64)
    onsets: list[list[int]] = [[] for _ in range(n_rows)]
    span = np.arange(w + 1)
    active = np.flatnonzero(t < end)
    while active.size:
        ta, la = t[active], last[active]
        seg_end = np.minimum(end, np.maximum(ta, la + timeout))
        k = _crossings(ssf, active, ta, seg_end, base[active] / 3.0 + _THR_OFFSET_MMHG)
        for j in np.flatnonzero(k < 0):  # no beat before the timeout: lower the threshold (per row)
            r = int(active[j])
            lo = max(int(ta[j]), int(seg_end[j]))
            if lo >= end:
                k[j] = -2
                continue
            steps = np.arange(lo, end) - (int(la[j]) + timeout)
            bases = np.maximum(float(base[r]) - steps * dec, 0.0)
            kk = _first_crossing(ssf[r], lo, end, bases / 3.0 + _THR_OFFSET_MMHG)
            if kk < 0:
                k[j] = -2
                continue
            k[j] = kk
            base[r] = float(bases[kk - lo])
        t[active[k == -2]] = end  # this row is done
        sel = k >= 0
        r, kk = active[sel], k[sel]
        mx = fwd[r, kk + half]  # max of ssf[k : k + w + 1]
        mn = back[r, kk - w + half]  # min of ssf[k - w : k + 1]
        acc = mx > mn + _MIN_RISE_MMHG
        t[r[~acc]] = kk[~acc] + 1
        ra, ka, mxa = r[acc], kk[acc], mx[acc]
        if ra.size:
            # onset: last sample in [k - w, k] whose slope-sum increase is below 1 % of the peak
            below = d[ra[:, None], (ka - w - 1)[:, None] + span] < (0.01 * mxa)[:, None]
            rev = below[:, ::-1]
            jj = rev.argmax(axis=1)
            has = rev[np.arange(ra.size), jj]
            onset = np.where(has, ka - jj, ka - w)  # k - w + (w - jj)
            for row, on in zip(ra.tolist(), onset.tolist()):
                lst = onsets[row]
                if not lst or on > lst[-1]:
                    lst.append(on)
            base[ra] = base[ra] + 0.1 * (mxa - base[ra])
            last[ra] = ka
            t[ra] = ka + lock
        active = active[t[active] < end]
    return [np.asarray(o, dtype=np.int64) for o in onsets]


def _crossings(ssf: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Per row r = rows[i]: the first k in [lo[i], hi[i]) with ssf[r, k] > thr[i] >= ssf[r, k - 1]; -1 if none.
    A first pass looks at the first ``_NEAR`` samples of every row; a second at the rest, for the rows
    not found in the first."""
    out = np.full(rows.size, -1, dtype=np.int64)
    for a, b in ((lo, np.minimum(hi, lo + _NEAR)), (lo + _NEAR, hi)):
        todo = np.flatnonzero((out < 0) & (b > a))
        if not todo.size:
            continue
        start, length = a[todo], b[todo] - a[todo]
        m = int(length.max())
        cols = np.arange(m)
        idx = np.minimum(start[:, None] - 1 + np.arange(m + 1), ssf.shape[1] - 1)
        seg = ssf[rows[todo][:, None], idx]  # ssf[k - 1], ssf[k] for k in [start, start + m)
        th = thr[todo][:, None]
        hit = (seg[:, 1:] > th) & (seg[:, :-1] <= th) & (cols < length[:, None])
        j = hit.argmax(axis=1)
        found = hit[np.arange(todo.size), j]
        out[todo[found]] = start[found] + j[found]
    return out
