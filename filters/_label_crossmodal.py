"""Cross-modal label checks: the arterial waveform must agree with the PPG and with the ECG heart rate."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

__all__ = [
    "CROSSMODAL_THRESHOLDS",
    "Spectra",
    "crossmodal_spectra",
    "correlation_from_spectra",
    "ppg_abp_correlation",
    "hr_agrees",
]

CROSSMODAL_THRESHOLDS = {
    "min_corr": 0.9,  # PPG-ABP correlation at the best lag ...
    "max_lag_s": 1.0,  # ... within +-1 s
    "band_lo_hz": 0.5,  # both band-limited to [0.5 Hz, 1.6 x heart rate]: the pulse, not its shape
    "band_hi_hr_ratio": 1.6,
    "hr_tol_bpm": 5.0,  # ABP heart rate vs ECG heart rate
}


def ppg_abp_correlation(
    ppg, abp, fs_hz: float, *, hr_bpm: float | None = None, max_lag_s: float | None = None
) -> float:
    """Largest normalised cross-correlation of PPG and ABP over lags within +-``max_lag_s``.

    Both signals are band-limited in the frequency domain to [0.5 Hz, 1.6 x HR] (HR from the ABP beats;
    [0.5, 3] Hz without it): the PPG is a low-passed, delayed image of the arterial pulse, so their
    waveform details differ while the pulse train must match. NaN when it cannot be computed.
    """
    a = np.asarray(abp, dtype=np.float64).reshape(-1)
    b = np.asarray(ppg, dtype=np.float64).reshape(-1)
    fs_hz = float(fs_hz)
    n = min(a.shape[0], b.shape[0])
    if not fs_hz > 0 or n < 8 or not (np.isfinite(a[:n]).all() and np.isfinite(b[:n]).all()):
        return float("nan")
    return correlation_from_spectra(crossmodal_spectra(a[None, :n], b[None, :n], fs_hz, max_lag_s)[0], hr_bpm)


class Spectra(NamedTuple):
    """What the correlation needs of an ABP and a PPG window (mean removed, zero-padded for lags up
    to ``lag`` samples): both spectra and both power spectra."""

    abp: np.ndarray
    ppg: np.ndarray
    power_abp: np.ndarray
    power_ppg: np.ndarray
    nfft: int
    lag: int
    fs_hz: float


def crossmodal_spectra(abp: np.ndarray, ppg: np.ndarray, fs_hz: float,
                       max_lag_s: float | None = None) -> list[Spectra | None]:
    """The FFTs :func:`ppg_abp_correlation` needs, for each row of two batches (n_windows, n_samples)
    of equal shape, in one call; None for a row that cannot be correlated (non-finite samples)."""
    a = np.asarray(abp, dtype=np.float64)
    b = np.asarray(ppg, dtype=np.float64)
    fs_hz = float(fs_hz)
    n = a.shape[1]
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if not fs_hz > 0 or n < 8 or not ok.any():
        return [None] * a.shape[0]
    lag = int(round((CROSSMODAL_THRESHOLDS["max_lag_s"] if max_lag_s is None else max_lag_s) * fs_hz))
    lag = min(lag, n - 1)
    nfft = 1 << int(np.ceil(np.log2(n + lag + 1)))
    with np.errstate(all="ignore"):
        A = np.fft.rfft(a - a.mean(axis=1, keepdims=True), nfft, axis=1)
        B = np.fft.rfft(b - b.mean(axis=1, keepdims=True), nfft, axis=1)
        pa, pb = A.real**2 + A.imag**2, B.real**2 + B.imag**2
    return [Spectra(A[i], B[i], pa[i], pb[i], nfft, lag, fs_hz) if ok[i] else None for i in range(a.shape[0])]


@lru_cache(maxsize=8)
def _freqs(nfft: int, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies of an ``nfft``-point real FFT and the Parseval weights of its one-sided spectrum."""
    f = np.fft.rfftfreq(nfft, 1.0 / fs_hz)
    w = np.full(f.shape[0], 2.0)
    w[0] = 1.0
    if nfft % 2 == 0:
        w[-1] = 1.0
    f.flags.writeable = False
    w.flags.writeable = False
    return f, w


def correlation_from_spectra(s: Spectra | None, hr_bpm: float | None = None) -> float:
    """:func:`ppg_abp_correlation` from precomputed :func:`crossmodal_spectra`."""
    if s is None:
        return float("nan")
    C = CROSSMODAL_THRESHOLDS
    nfft, lag = s.nfft, s.lag
    f, w = _freqs(nfft, s.fs_hz)
    with np.errstate(all="ignore"):
        hi = C["band_hi_hr_ratio"] * hr_bpm / 60.0 if hr_bpm and np.isfinite(hr_bpm) else 3.0
        band = (f >= C["band_lo_hz"]) & (f <= max(hi, C["band_lo_hz"] + 0.5))
        ea = float(w @ (s.power_abp * band)) / nfft  # both band-limited to ``band``
        eb = float(w @ (s.power_ppg * band)) / nfft
        if not (0 < ea < np.inf and 0 < eb < np.inf):
            return float("nan")
        # c[k] = sum a[i] b[i + k], both band-limited (the product per window: a batched complex
        # product can round differently in the last bit, the vector loop meeting other elements)
        c = np.fft.irfft((s.ppg * band) * np.conj(s.abp * band), nfft)
        c = np.concatenate((c[-lag:], c[: lag + 1])) if lag > 0 else c[:1]
        r = float(np.max(c) / np.sqrt(ea) / np.sqrt(eb))
    return r if np.isfinite(r) else float("nan")


def hr_agrees(
    abp_hr_bpm: float | None, ecg_hr_bpm: float | None, tol_bpm: float | None = None
) -> bool | None:
    """True/False when both heart rates are known and finite; None when the check cannot be made."""
    if abp_hr_bpm is None or ecg_hr_bpm is None:
        return None
    if not (np.isfinite(abp_hr_bpm) and np.isfinite(ecg_hr_bpm)):
        return None
    tol = CROSSMODAL_THRESHOLDS["hr_tol_bpm"] if tol_bpm is None else tol_bpm
    return bool(abs(float(abp_hr_bpm) - float(ecg_hr_bpm)) <= tol)
