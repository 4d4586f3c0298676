"""Causal, chunk-invariant resampling of one channel to the model rate.

An anti-alias Bessel low-pass (``sosfilt`` with carried state, little overshoot on pressure
upstrokes) followed by linear interpolation on the output grid. Output sample ``k`` of a segment
sits at ``k / fs_out`` seconds after the segment's first input sample and is computed from input
samples at or before it, so results never depend on how the input was cut into chunks.
"""

from __future__ import annotations

from ._stateful import stateful

import math

import numpy as np
from scipy import signal

from ._beats import _sosfilt_zi

__all__ = ["CausalResampler"]

_SOS_CACHE: dict[tuple[float, float], np.ndarray] = {}

try:  # the C routine behind scipy.signal.sosfilt; its per-call argument handling costs more than the filter
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_core  # on a 2-s chunk (checked equal in the tests)
except ImportError:  # pragma: no cover - another scipy layout: the public function
    _sosfilt_core = None


def sosfilt_carry(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.sosfilt(sos, x, zi=zi)`` for 1-D float64 ``x``: (output, final state), same numbers."""
    if _sosfilt_core is None or sos.dtype != np.float64 or not sos.flags.c_contiguous:
        return signal.sosfilt(sos, x, zi=zi)
    y = np.array(x, dtype=np.float64, order="C").reshape(1, -1)
    z = np.array(zi, dtype=np.float64, order="C").reshape(1, sos.shape[0], 2)
    _sosfilt_core(sos, y, z)
    return y[0], z[0]


def antialias_sos(fs_in_hz: float, fs_out_hz: float) -> np.ndarray | None:
    if fs_in_hz <= fs_out_hz:
        return None
    key = (fs_in_hz, fs_out_hz)
    if key not in _SOS_CACHE:
        cutoff = 0.4 * fs_out_hz
        _SOS_CACHE[key] = signal.bessel(6, cutoff, btype="low", output="sos", norm="mag", fs=fs_in_hz)
    return _SOS_CACHE[key]


@stateful("filters.resampler", version=1)
class CausalResampler:
    """Resample one channel from ``fs_in_hz`` to ``fs_out_hz``, chunk by chunk.

    Learned state (ends in ``_``): filter state, last filtered sample, input and output counts.
    Non-finite samples come out as NaN and reset the filter: it restarts, settled on the next finite
    sample, so a NaN gap spoils only the windows that overlap it (the quality filters reject those).
    """

    def __init__(self, fs_in_hz: float, fs_out_hz: float = 125.0):
        self.fs_in_hz = float(fs_in_hz)
        self.fs_out_hz = float(fs_out_hz)
        self.zi_: np.ndarray | None = None
        self.last_: float = 0.0
        self.n_in_: int = 0
        self.n_out_: int = 0

    def update(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples; return the output samples that are now complete (float64)."""
        x = np.asarray(x, dtype=np.float64)
        m = x.shape[0]
        if m == 0:
            return np.empty(0)
        if self.fs_in_hz == self.fs_out_hz:
            self.n_in_ += m
            self.n_out_ += m
            return x.copy()
        sos = antialias_sos(self.fs_in_hz, self.fs_out_hz)
        y = self._filter(sos, x) if sos is not None else x
        # output k sits at input position k * ratio; it is complete once that position is <= last index
        ratio = self.fs_in_hz / self.fs_out_hz
        first_idx = self.n_in_ - 1  # index of self.last_ (or -1 at segment start)
        last_idx = self.n_in_ + m - 1
        k_end = math.floor(last_idx / ratio + 1e-9) + 1  # exclusive
        ks = np.arange(self.n_out_, k_end)
        if self.n_in_ == 0:
            ext = y
            base = 0
        else:
            ext = np.concatenate(([self.last_], y))
            base = first_idx
        step = int(round(ratio))
        if ks.size and abs(ratio - step) < 1e-12:  # an integer ratio: every output sits on an input sample
            out = ext[ks * step - base]  # (the general path below gives these very samples: frac is 0)
        elif ks.size:
            pos = ks * ratio
            i0 = np.floor(pos + 1e-9).astype(np.int64)
            frac = pos - i0
            frac[np.abs(frac) < 1e-9] = 0.0
            j0 = i0 - base
            j1 = np.minimum(j0 + 1, ext.shape[0] - 1)
            v0 = ext[j0]
            v1 = ext[j1]
            out = np.where(frac == 0.0, v0, v0 * (1.0 - frac) + v1 * frac)
        else:
            out = np.empty(0)
        self.last_ = float(y[-1])
        self.n_in_ += m
        self.n_out_ = int(k_end) if ks.size else self.n_out_
        return out

    def _filter(self, sos: np.ndarray, x: np.ndarray) -> np.ndarray:
        finite = np.isfinite(x)
        if finite.all() and self.zi_ is not None:
            y, self.zi_ = sosfilt_carry(sos, x, self.zi_)
            return y
        # split into runs of finite / non-finite samples; restart the filter after each non-finite run
        y = np.full(x.shape[0], np.nan)
        edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
        for a, b in zip(np.r_[0, edges], np.r_[edges, x.shape[0]]):
            if not finite[a]:
                self.zi_ = None
                continue
            if self.zi_ is None:
                self.zi_ = _sosfilt_zi(sos) * x[a]
            y[a:b], self.zi_ = sosfilt_carry(sos, x[a:b], self.zi_)
        return y
