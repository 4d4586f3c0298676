"""Cross-modal label checks: the arterial waveform must agree with the PPG and with the ECG heart rate."""

from __future__ import annotations

import numpy as np

__all__ = ["CROSSMODAL_THRESHOLDS", "ppg_abp_correlation", "hr_agrees"]

CROSSMODAL_THRESHOLDS = {
    "min_corr": 0.9,  # PPG-ABP correlation at the best lag ...
    "max_lag_s": 1.0,  # ... within +-1 s
    "band_lo_hz": 0.5,  # both band-limited to [0.5 Hz, 1.6 x heart rate]: the pulse, not its shape
    "band_hi_hr_ratio": 1.6,
    "hr_tol_bpm": 5.0,  # ABP heart rate vs ECG heart rate
}


def ppg_abp_correlation(
    ppg, abp, sampling_rate: float, *, hr_bpm: float | None = None, max_lag_s: float | None = None
) -> float:
    """Largest normalised cross-correlation of PPG and ABP over lags within +-``max_lag_s``.

    Both signals are band-limited in the frequency domain to [0.5 Hz, 1.6 x HR] (HR from the ABP beats;
    [0.5, 3] Hz without it): the PPG is a low-passed, delayed image of the arterial pulse, so their
    waveform details differ while the pulse train must match. NaN when it cannot be computed.
    """
    a = np.asarray(abp, dtype=np.float64).reshape(-1)
    b = np.asarray(ppg, dtype=np.float64).reshape(-1)
    fs = float(sampling_rate)
    n = min(a.shape[0], b.shape[0])
    if not fs > 0 or n < 8 or not (np.isfinite(a[:n]).all() and np.isfinite(b[:n]).all()):
        return float("nan")
    with np.errstate(all="ignore"):
        return _corr(a[:n], b[:n], fs, hr_bpm, max_lag_s)


def _corr(a: np.ndarray, b: np.ndarray, fs: float, hr_bpm, max_lag_s) -> float:
    C = CROSSMODAL_THRESHOLDS
    n = a.shape[0]
    a, b = a - a.mean(), b - b.mean()
    lag = int(round((C["max_lag_s"] if max_lag_s is None else max_lag_s) * fs))
    lag = min(lag, n - 1)
    nfft = 1 << int(np.ceil(np.log2(n + lag + 1)))
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    hi = C["band_hi_hr_ratio"] * hr_bpm / 60.0 if hr_bpm and np.isfinite(hr_bpm) else 3.0
    band = (f >= C["band_lo_hz"]) & (f <= max(hi, C["band_lo_hz"] + 0.5))
    A = np.fft.rfft(a, nfft) * band
    B = np.fft.rfft(b, nfft) * band
    w = np.full(f.shape[0], 2.0)  # Parseval weights of a one-sided spectrum
    w[0] = 1.0
    if nfft % 2 == 0:
        w[-1] = 1.0
    ea = float(w @ (A.real**2 + A.imag**2)) / nfft
    eb = float(w @ (B.real**2 + B.imag**2)) / nfft
    if not (0 < ea < np.inf and 0 < eb < np.inf):
        return float("nan")
    c = np.fft.irfft(B * np.conj(A), nfft)  # c[k] = sum a[i] b[i + k], both band-limited
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
