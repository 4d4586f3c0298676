"""Vectorized beat handling over batches of windows: peak picking, per-window RR statistics,
HR-normalized beat templates. Shared by the ECG and PPG quality modules (pure numpy/scipy).

Beats (``PeakSet``) of a batch are held "flat": ``rows`` (window index) and ``cols`` (sample index), sorted by
row then column, so per-window statistics are segment reductions, never Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal
from scipy.ndimage import maximum_filter1d, uniform_filter1d

__all__ = ["PeakSet", "RRStats", "causal_sos", "filt", "pick_peaks", "rr_stats", "beat_matrix", "template_corr", "match_count"]


@lru_cache(maxsize=64)
def causal_sos(kind: str, low_hz: float, high_hz: float, order: int, fs_hz: float) -> np.ndarray:
    """Butterworth second-order sections ('bandpass', 'highpass' or 'lowpass'), cached per rate."""
    nyq = fs_hz / 2.0
    hi = min(high_hz, 0.9 * nyq)
    if kind == "bandpass":
        lo = min(low_hz, 0.5 * hi)
        return signal.butter(order, [lo, hi], btype="bandpass", output="sos", fs=fs_hz)
    if kind == "highpass":
        return signal.butter(order, min(low_hz, 0.9 * nyq), btype="highpass", output="sos", fs=fs_hz)
    return signal.butter(order, hi, btype="lowpass", output="sos", fs=fs_hz)


_ZI_CACHE: dict[bytes, np.ndarray] = {}


def _sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """``signal.sosfilt_zi(sos)``, cached by the sections' bytes (it solves a linear system per call)."""
    key = np.ascontiguousarray(sos, dtype=np.float64).tobytes()
    zi = _ZI_CACHE.get(key)
    if zi is None:
        if len(_ZI_CACHE) >= 256:
            _ZI_CACHE.clear()
        zi = _ZI_CACHE[key] = signal.sosfilt_zi(sos)
        zi.setflags(write=False)
    return zi


def sosfiltfilt_rows(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``signal.sosfiltfilt(sos, x, axis=-1)`` (default odd padding) with the initial state cached:
    the same steps and numbers, without a linear solve per call. For offline (whole-window) use only."""
    n_sections = sos.shape[0]
    ntaps = 2 * n_sections + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    edge = 3 * ntaps
    if x.shape[-1] <= edge:
        return signal.sosfiltfilt(sos, x, axis=-1)  # scipy's own error for too-short input
    ext = np.concatenate(
        (2 * x[..., :1] - x[..., edge:0:-1], x, 2 * x[..., -1:] - x[..., -2 : -(edge + 2) : -1]), axis=-1
    )
    zi = _sosfilt_zi(sos).reshape([n_sections] + [1] * (x.ndim - 1) + [2])
    y, _ = signal.sosfilt(sos, ext, axis=-1, zi=zi * ext[..., :1])
    y, _ = signal.sosfilt(sos, y[..., ::-1], axis=-1, zi=zi * y[..., -1:])
    return y[..., ::-1][..., edge:-edge]


def filt(sos: np.ndarray, x: np.ndarray, pad_n: int = 0) -> np.ndarray:
    """Causal ``sosfilt`` along the last axis, started in steady state on each row's first sample.

    ``pad_n`` > 0 first runs the filter over an odd reflection of the window's first ``pad_n``
    samples (as filtfilt pads), so the high-pass start-up transient is spent before sample 0; the
    output still depends only on samples of the same complete window, in causal order after that."""
    t = x.shape[-1]
    if t == 0:
        return x.copy()
    pad_n = min(int(pad_n), t - 1)
    if pad_n > 0:
        head = 2.0 * x[..., :1] - x[..., pad_n:0:-1]
        x = np.concatenate((head, x), axis=-1)
    zi = _sosfilt_zi(sos)  # (n_sections, 2)
    zi = zi[:, None, :] * x[..., 0][None, :, None]
    y, _ = signal.sosfilt(sos, x, axis=-1, zi=zi)
    return y[..., pad_n:] if pad_n > 0 else y


@dataclass(frozen=True)
class PeakSet:
    """Beat positions of a batch: ``rows`` (window), ``cols`` (sample), sorted; ``n`` windows."""

    rows: np.ndarray
    cols: np.ndarray
    n: int
    n_samples: int

    def counts(self) -> np.ndarray:
        return np.bincount(self.rows, minlength=self.n)


def pick_peaks(feature: np.ndarray, threshold: np.ndarray, refractory_n: int) -> PeakSet:
    """Local maxima of ``feature`` (n, T) above a per-row ``threshold`` that are the largest value
    within +-``refractory_n`` samples (plateaus keep their first sample)."""
    n, t = feature.shape
    if t == 0:
        e = np.zeros(0, dtype=np.int64)
        return PeakSet(e, e.copy(), n, t)
    size = 2 * max(int(refractory_n), 1) + 1
    mx = maximum_filter1d(feature, size=size, axis=1, mode="nearest")
    is_pk = (feature >= mx) & (feature > threshold[:, None])
    # first sample of a plateau only
    is_pk[:, 1:] &= feature[:, 1:] != feature[:, :-1]
    is_pk[:, 0] = False
    is_pk[:, -1] = False
    rows, cols = np.nonzero(is_pk)
    return PeakSet(rows.astype(np.int64), cols.astype(np.int64), n, t)


def refine(beats: PeakSet, x: np.ndarray, lo_n: int, hi_n: int) -> PeakSet:
    """Move each beat to the argmax of ``x`` in [col - lo_n, col + hi_n]; drop duplicates."""
    if beats.rows.size == 0:
        return beats
    off = np.arange(-lo_n, hi_n + 1)
    idx = np.clip(beats.cols[:, None] + off[None, :], 0, beats.n_samples - 1)
    best = idx[np.arange(idx.shape[0]), np.argmax(x[beats.rows[:, None], idx], axis=1)]
    key = beats.rows * (beats.n_samples + 1) + best
    key = np.unique(key)
    return PeakSet(key // (beats.n_samples + 1), key % (beats.n_samples + 1), beats.n, beats.n_samples)


def _seg_reduce(ufunc: np.ufunc, values: np.ndarray, groups: np.ndarray, n: int, empty: float) -> np.ndarray:
    out = np.full(n, empty, dtype=np.float64)
    if values.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    out[groups[starts]] = ufunc.reduceat(values, starts)
    return out


@dataclass(frozen=True)
class RRStats:
    """Per-window beat statistics (seconds, bpm); NaN where not computable."""

    n_beats: np.ndarray
    hr_bpm: np.ndarray  # 60 / mean RR
    rr_ratio: np.ndarray  # max RR / min RR
    max_gap_s: np.ndarray  # longest stretch without a beat, window edges included
    median_rr_s: np.ndarray


def rr_stats(beats: PeakSet, fs_hz: float) -> RRStats:
    n, t = beats.n, beats.n_samples
    counts = beats.counts()
    same = beats.rows[1:] == beats.rows[:-1]
    rr = (beats.cols[1:] - beats.cols[:-1])[same] / fs_hz
    g = beats.rows[1:][same]
    n_rr = np.bincount(g, minlength=n)
    with np.errstate(all="ignore"):
        mean_rr = np.bincount(g, weights=rr, minlength=n) / n_rr
        rr_max = _seg_reduce(np.maximum, rr, g, n, np.nan)
        rr_min = _seg_reduce(np.minimum, rr, g, n, np.nan)
        hr = 60.0 / mean_rr
        ratio = rr_max / rr_min
    # median RR per window: sort RR within each window (rows are contiguous)
    med = np.full(n, np.nan)
    if rr.size:
        order = np.lexsort((rr, g))
        rs, gs = rr[order], g[order]
        starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
        cnt = np.diff(np.r_[starts, rs.size])
        lo = starts + (cnt - 1) // 2
        hi = starts + cnt // 2
        med[gs[starts]] = 0.5 * (rs[lo] + rs[hi])
    first = _seg_reduce(np.minimum, beats.cols.astype(float), beats.rows, n, np.nan)
    last = _seg_reduce(np.maximum, beats.cols.astype(float), beats.rows, n, np.nan)
    edge = np.fmax(first, (t - 1) - last) / fs_hz
    gap = np.where(counts > 0, np.fmax(np.nan_to_num(rr_max, nan=0.0), edge), t / fs_hz)
    return RRStats(counts.astype(np.int64), np.where(n_rr > 0, hr, np.nan), np.where(n_rr > 0, ratio, np.nan), gap, med)


def beat_matrix(x: np.ndarray, beats: PeakSet, median_rr_n: np.ndarray, n_points: int, before: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Each beat as ``n_points`` samples of ``x`` spanning one median RR of its window, starting
    ``before`` RR ahead of the beat (linear interpolation). PeakSet whose span leaves the window are
    dropped. Returns (matrix (n_kept, n_points), row of each kept beat)."""
    if beats.rows.size == 0:
        return np.zeros((0, n_points)), np.zeros(0, dtype=np.int64)
    span = median_rr_n[beats.rows]
    start = beats.cols - before * span
    stop = start + span
    keep = np.isfinite(span) & (span >= 2) & (start >= 0) & (stop <= beats.n_samples - 1)
    rows = beats.rows[keep]
    if rows.size == 0:
        return np.zeros((0, n_points)), rows
    pos = start[keep, None] + span[keep, None] * np.linspace(0.0, 1.0, n_points)[None, :]
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, beats.n_samples - 2)
    fr = pos - i0
    r = rows[:, None]
    m = x[r, i0] * (1.0 - fr) + x[r, i0 + 1] * fr
    return m, rows


def zscore_rows(m: np.ndarray) -> np.ndarray:
    mu = m.mean(axis=-1, keepdims=True)
    sd = m.std(axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        return np.where(sd > 1e-12, (m - mu) / np.where(sd > 1e-12, sd, 1.0), 0.0)


def window_templates(m: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean z-scored beat per window (n, n_points) and the number of beats behind it."""
    z = zscore_rows(m)
    cnt = np.bincount(rows, minlength=n)
    tmpl = np.zeros((n, m.shape[1]))
    np.add.at(tmpl, rows, z)
    with np.errstate(all="ignore"):
        tmpl = np.where(cnt[:, None] > 0, tmpl / np.maximum(cnt, 1)[:, None], 0.0)
    return tmpl, cnt


def template_corr(m: np.ndarray, rows: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Mean Pearson correlation of each window's beats with ``templates[row]``; NaN without beats."""
    n = templates.shape[0]
    if rows.size == 0:
        return np.full(n, np.nan)
    zb = zscore_rows(m)
    zt = zscore_rows(templates)
    c = (zb * zt[rows]).mean(axis=1)
    cnt = np.bincount(rows, minlength=n)
    with np.errstate(all="ignore"):
        return np.where(cnt > 0, np.bincount(rows, weights=c, minlength=n) / cnt, np.nan)


def match_count(a: PeakSet, b: PeakSet, tol_n: int) -> np.ndarray:
    """Per window, the number of beats of ``a`` with a beat of ``b`` within +-``tol_n`` samples."""
    n, t = a.n, a.n_samples
    if t == 0 or a.rows.size == 0 or b.rows.size == 0:
        return np.zeros(n, dtype=np.int64)
    mb = np.zeros((n, t), dtype=np.uint8)
    mb[b.rows, b.cols] = 1
    near = maximum_filter1d(mb, size=2 * tol_n + 1, axis=1, mode="constant")
    hit = near[a.rows, a.cols] > 0
    return np.bincount(a.rows[hit], minlength=n)


def moving_mean(x: np.ndarray, width_n: int) -> np.ndarray:
    """Trailing (causal) moving average over ``width_n`` samples along the last axis."""
    w = max(int(width_n), 1)
    return uniform_filter1d(x, size=w, axis=-1, mode="nearest", origin=(w - 1) // 2)
