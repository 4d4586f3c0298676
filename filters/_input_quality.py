"""Input (ECG + PPG) quality per window: one batched function and one return type.

``input_quality(ecg, ppg, fs_hz=125.0)`` takes arrays shaped (n_windows, n_samples) (or one
window as a 1-D array), ECG in mV and PPG in the monitor's raw units, and returns an
``InputQuality`` of per-window arrays. It never raises on NaN, inf, constant, empty or very short
input; such windows are rejected with a reason. The per-patient streaming wrapper with a running
PPG template is ``InputFilter`` (``_input_filter.py``).

Rules (a window of a channel is usable only if every rule passes; reasons are ``Reason`` members):

- integrity, on the raw window: any NaN/inf (``*_NAN``); flat runs >= 0.12 s covering > 5 % of the
  window (``*_FLAT``); plateaus at the window's extremes covering > 1.5 % (``*_CLIPPED``);
  robust amplitude below an absolute floor: ECG < 0.1 mV p-p (``ECG_LOW_AMPLITUDE``), PPG beat
  amplitude below ``ppg_min_amplitude`` raw units or below ``ppg_rel_amplitude`` of the patient's
  running amplitude (``PPG_LOW_PERFUSION``);
- ECG: bSQI >= 0.9; Orphanidou: HR 40-180 bpm, longest gap < 3 s, RR max/min < 2.2, template
  correlation >= 0.66; kurtosis > 5; basSQI >= 0.5;
- PPG: skewness > 0; Orphanidou with template correlation >= 0.86 (own template, and the running
  template when one is given);
- cross-signal: when both channels pass, |HR_ECG - HR_PPG| <= 5 bpm, else ``HR_ECG_PPG_DISAGREE``.

Score per channel: 0 when an integrity rule fails, else the fraction of its quality rules passed
(ECG 7, PPG 5); ``*_usable`` is ``score == 1``. HRs are NaN unless the channel is usable.
"""

from __future__ import annotations

from ._stateful import stateful

from dataclasses import dataclass, replace

import numpy as np

from ._beats import zscore_rows
from ._ecg_quality import EcgQuality, ecg_quality
from ._integrity import Integrity, as_windows, integrity_and_clean
from ._ppg_quality import PpgQuality, ppg_quality, template_correlation
from ._types import Reason

__all__ = ["QualityThresholds", "InputQuality", "input_quality", "measure_input", "decide_input", "usable_except_template", "InputMeasures"]


@stateful("filters.quality_thresholds", version=1)
@dataclass(frozen=True)
class QualityThresholds:
    """Every threshold of the input gate, with its source. Units in names."""

    flat_min_s: float = 0.12
    flat_max_fraction: float = 0.05
    clip_max_fraction: float = 0.015
    ecg_min_amplitude_mv: float = 0.1
    ppg_min_amplitude: float = 0.02  # raw PPG units (PhysioNet PLETH "NU": about 25 ADC steps)
    ppg_rel_amplitude: float = 0.2  # of the patient's running beat amplitude (InputFilter only)
    bsqi_min: float = 0.9  # Li, Clark & Clifford 2008
    hr_min_bpm: float = 40.0  # Orphanidou et al. 2015
    hr_max_bpm: float = 180.0
    max_gap_s: float = 3.0
    rr_ratio_max: float = 2.2
    ecg_template_min: float = 0.66
    ecg_kurtosis_min: float = 5.0  # kSQI, Li & Clifford 2008 (Pearson kurtosis)
    # basSQI: below 0.5 more ECG power lies in 0-1 Hz than in 1-40 Hz. Zhao & Zhang 2018 call < 0.9
    # 'unqualified' but only veto on several SQIs together; as a sole veto 0.9 rejected 40 % of
    # otherwise clean PhysioNet 2015 windows (narrow QRS, tall T waves, HR near 60 bpm)
    bas_sqi_min: float = 0.5
    ppg_skewness_min: float = 0.0  # Elgendi 2016
    ppg_template_min: float = 0.86  # Orphanidou et al. 2015
    hr_agree_bpm: float = 5.0


DEFAULT_THRESHOLDS = QualityThresholds()

ECG_INTEGRITY = (Reason.ECG_MISSING, Reason.ECG_NAN, Reason.ECG_FLAT, Reason.ECG_CLIPPED, Reason.ECG_LOW_AMPLITUDE)
ECG_RULES = (
    Reason.ECG_DETECTOR_DISAGREE,
    Reason.ECG_HR_IMPLAUSIBLE,
    Reason.ECG_GAP,
    Reason.ECG_RR_IRREGULAR,
    Reason.ECG_TEMPLATE,
    Reason.ECG_KURTOSIS,
    Reason.ECG_BASELINE_WANDER,
)
PPG_INTEGRITY = (Reason.PPG_MISSING, Reason.PPG_NAN, Reason.PPG_FLAT, Reason.PPG_CLIPPED, Reason.PPG_LOW_PERFUSION)
PPG_RULES = (Reason.PPG_SKEWNESS, Reason.PPG_HR_IMPLAUSIBLE, Reason.PPG_GAP, Reason.PPG_RR_IRREGULAR, Reason.PPG_TEMPLATE)
ALL_REASONS = ECG_INTEGRITY + ECG_RULES + PPG_INTEGRITY + PPG_RULES + (Reason.HR_ECG_PPG_DISAGREE,)


@dataclass(frozen=True)
class InputMeasures:
    """Everything measured on a batch, before any threshold."""

    ecg_integrity: Integrity
    ppg_integrity: Integrity
    ecg: EcgQuality
    ppg: PpgQuality
    ecg_n_samples: int
    ppg_n_samples: int
    # derived at measure time, at ``thresholds``: the rule failures that need no patient state
    # (``_static_flags``, STATIC_COLUMNS) and "usable but for the template and relative-perfusion rules"
    thresholds: QualityThresholds | None = None
    static_flags: np.ndarray | None = None
    usable_base: np.ndarray | None = None
    ppg_template_z: np.ndarray | None = None  # each window's PPG mean beat, z-scored (the running template's input)

    def __len__(self) -> int:
        return int(self.ecg.hr_bpm.shape[0])


@dataclass(frozen=True)
class InputQuality:
    """Input quality of a batch of windows: per-window arrays (length n_windows) and reasons.

    ``ecg_hr_bpm``/``ppg_hr_bpm`` are NaN unless that channel is usable. ``ppg_template_corr`` is
    the correlation the PPG template rule used (running template when there was one).
    ``measures`` keeps the raw measurements (bSQI, kurtosis, basSQI, skewness, ...)."""

    ecg_score: np.ndarray
    ppg_score: np.ndarray
    ecg_usable: np.ndarray
    ppg_usable: np.ndarray
    usable: np.ndarray
    ecg_hr_bpm: np.ndarray
    ppg_hr_bpm: np.ndarray
    ppg_template_corr: np.ndarray
    reasons: tuple[tuple[Reason, ...], ...]
    measures: InputMeasures

    def __len__(self) -> int:
        return int(self.usable.shape[0])

    def reason_counts(self) -> dict[Reason, int]:
        out: dict[Reason, int] = {}
        for rs in self.reasons:
            for r in rs:
                out[r] = out.get(r, 0) + 1
        return out


def measure_input(ecg: object, ppg: object, fs_hz: float = 125.0, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> InputMeasures:
    """Measure a batch; ``ecg`` and ``ppg`` must hold the same number of windows."""
    e, p = as_windows(ecg), as_windows(ppg)
    if e.shape[0] != p.shape[0]:
        raise ValueError(f"ecg has {e.shape[0]} windows but ppg has {p.shape[0]}")
    fs_hz = float(fs_hz)
    if not np.isfinite(fs_hz) or fs_hz <= 0:
        raise ValueError(f"fs_hz must be a positive number, got {fs_hz!r}")
    with np.errstate(all="ignore"):  # NaN/inf/subnormal input is judged, never warned about
        ie, e_ok = integrity_and_clean(e, fs_hz, flat_min_s=thresholds.flat_min_s)
        ip, p_ok = integrity_and_clean(p, fs_hz, flat_min_s=thresholds.flat_min_s)
        eq = ecg_quality(e_ok, fs_hz)
        pq = ppg_quality(p_ok, fs_hz)
    m = InputMeasures(ie, ip, eq, pq, e.shape[1], p.shape[1])
    m = replace(m, thresholds=thresholds, static_flags=_static_flags(m, thresholds))
    return replace(m, usable_base=usable_except_template(m, thresholds), ppg_template_z=zscore_rows(pq.template))


def _lt(a: np.ndarray, b: float) -> np.ndarray:
    """Fails "a >= b": True where a < b or a is NaN."""
    return ~(a >= b)


def _gt(a: np.ndarray, b: float) -> np.ndarray:
    """Fails "a <= b": True where a > b or a is NaN."""
    return ~(a <= b)


def _static_flags(m: InputMeasures, th: QualityThresholds) -> np.ndarray:
    """(n, 21) failures that need no patient state: ECG integrity (5), ECG rules (7), PPG integrity
    with the absolute amplitude floor only (5), PPG rules without the template rule (4)."""
    n = len(m)
    ie, ip, eq, pq = m.ecg_integrity, m.ppg_integrity, m.ecg, m.ppg
    with np.errstate(invalid="ignore"):
        return np.stack(
            [
                np.full(n, m.ecg_n_samples == 0),
                ie.nonfinite_fraction > 0,
                ie.flat_fraction > th.flat_max_fraction,
                ie.clipped_fraction > th.clip_max_fraction,
                ~(ie.amplitude >= th.ecg_min_amplitude_mv),
                _lt(eq.bsqi, th.bsqi_min),
                _lt(eq.hr_bpm, th.hr_min_bpm) | _gt(eq.hr_bpm, th.hr_max_bpm),
                ~(eq.max_gap_s < th.max_gap_s),
                ~(eq.rr_ratio < th.rr_ratio_max),
                _lt(eq.template_corr, th.ecg_template_min),
                ~(eq.kurtosis > th.ecg_kurtosis_min),
                _lt(eq.bas_sqi, th.bas_sqi_min),
                np.full(n, m.ppg_n_samples == 0),
                ip.nonfinite_fraction > 0,
                ip.flat_fraction > th.flat_max_fraction,
                ip.clipped_fraction > th.clip_max_fraction,
                _lt(pq.amplitude, th.ppg_min_amplitude),
                ~(pq.skewness > th.ppg_skewness_min),
                _lt(pq.hr_bpm, th.hr_min_bpm) | _gt(pq.hr_bpm, th.hr_max_bpm),
                ~(pq.max_gap_s < th.max_gap_s),
                ~(pq.rr_ratio < th.rr_ratio_max),
            ],
            axis=1,
        )


def _flags(m: InputMeasures, th: QualityThresholds, tc: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, ...]:
    """Failure matrices (ecg integrity, ecg rules, ppg integrity, ppg rules) and per-channel verdicts."""
    eq, pq = m.ecg, m.ppg
    s = m.static_flags if m.static_flags is not None and m.thresholds == th else _static_flags(m, th)
    with np.errstate(invalid="ignore"):
        rel_low = np.isfinite(ref) & (pq.amplitude < th.ppg_rel_amplitude * ref)
    e_int = s[:, 0:5]
    e_rules = s[:, 5:12].copy()  # (the static flags may be a shared memo: never modify them in place)
    p_int = s[:, 12:17].copy()
    p_int[:, 4] |= rel_low
    p_rules = np.concatenate((s[:, 17:21], _lt(tc, th.ppg_template_min)[:, None]), axis=1)
    e_bad_int = e_int.any(axis=1)
    p_bad_int = p_int.any(axis=1)
    # a channel that fails integrity reports only its integrity reasons
    e_rules &= ~e_bad_int[:, None]
    p_rules &= ~p_bad_int[:, None]
    ecg_ok = ~e_bad_int & ~e_rules.any(axis=1)
    ppg_ok = ~p_bad_int & ~p_rules.any(axis=1)
    with np.errstate(invalid="ignore"):
        disagree = ecg_ok & ppg_ok & ~(np.abs(eq.hr_bpm - pq.hr_bpm) <= th.hr_agree_bpm)
    return e_int, e_rules, p_int, p_rules, ecg_ok, ppg_ok, disagree


def usable_except_template(m: InputMeasures, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """Per window: would it be usable if the PPG template and relative-perfusion rules passed?"""
    if m.usable_base is not None and m.thresholds == thresholds:
        return m.usable_base
    n = len(m)
    *_, ecg_ok, ppg_ok, disagree = _flags(m, thresholds, np.ones(n), np.full(n, np.nan))
    return ecg_ok & ppg_ok & ~disagree


def decide_input(
    m: InputMeasures,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    ppg_tcorr: np.ndarray | None = None,
    ppg_reference_amplitude: np.ndarray | None = None,
) -> InputQuality:
    """Apply the thresholds to measures. ``ppg_tcorr`` overrides the own-template correlation;
    ``ppg_reference_amplitude`` (per window, NaN = none) enables the relative perfusion floor."""
    n = len(m)
    tc = m.ppg.own_template_corr if ppg_tcorr is None else np.asarray(ppg_tcorr, dtype=np.float64)
    ref = np.full(n, np.nan) if ppg_reference_amplitude is None else np.asarray(ppg_reference_amplitude, dtype=np.float64)
    e_int, e_rules, p_int, p_rules, ecg_ok, ppg_ok, disagree = _flags(m, thresholds, tc, ref)
    ecg_score = np.where(e_int.any(axis=1), 0.0, 1.0 - e_rules.mean(axis=1))
    ppg_score = np.where(p_int.any(axis=1), 0.0, 1.0 - p_rules.mean(axis=1))
    flags = np.concatenate([e_int, e_rules, p_int, p_rules, disagree[:, None]], axis=1)
    rows, cols = np.nonzero(flags)
    per_row: list[list[Reason]] = [[] for _ in range(n)]
    for r, c in zip(rows.tolist(), cols.tolist()):
        per_row[r].append(ALL_REASONS[c])
    return InputQuality(
        ecg_score=ecg_score,
        ppg_score=ppg_score,
        ecg_usable=ecg_ok,
        ppg_usable=ppg_ok,
        usable=ecg_ok & ppg_ok & ~disagree,
        ecg_hr_bpm=np.where(ecg_ok, m.ecg.hr_bpm, np.nan),
        ppg_hr_bpm=np.where(ppg_ok, m.ppg.hr_bpm, np.nan),
        ppg_template_corr=np.asarray(tc, dtype=np.float64),
        reasons=tuple(tuple(r) for r in per_row),
        measures=m,
    )


def input_quality(
    ecg: object,
    ppg: object,
    fs_hz: float = 125.0,
    *,
    ppg_template: np.ndarray | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> InputQuality:
    """Stateless input quality of windows (n_windows, n_samples) or one window (n_samples,).

    ``ppg_template`` (TEMPLATE_POINTS values, or one row per window) is a reference beat; the PPG
    template rule then needs both the own-template and this correlation >= 0.86."""
    m = measure_input(ecg, ppg, fs_hz, thresholds)
    tc = None
    if ppg_template is not None:
        with np.errstate(all="ignore"):
            run = template_correlation(m.ppg.template, np.asarray(ppg_template, dtype=np.float64))
        tc = np.fmin(m.ppg.own_template_corr, run)
    return decide_input(m, thresholds, ppg_tcorr=tc)
