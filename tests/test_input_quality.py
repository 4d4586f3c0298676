"""Input (ECG + PPG) quality on real records and injected artifacts (each test fails without its
detector). Simulated signals, neurokit2 as oracle, streaming state and property tests:
test_input_quality_contracts.py."""

from __future__ import annotations

import numpy as np

from ._input_data import FS, clean_window, frac_with, has, inj, record_windows
from bpstream.filters import InputFilter, InputQuality, Reason, input_quality


# ---------------------------------------------------------------- real records
def test_clean_records_mostly_accepted():
    for name in ("a555l", "f362s"):
        e, p, _ = record_windows(name)
        q = InputFilter(fs_hz=FS).update(e, p)
        assert q.usable.mean() >= 0.85, (name, q.reason_counts())
        assert np.all(np.abs(q.ecg_hr_bpm[q.usable] - q.ppg_hr_bpm[q.usable]) <= 5.0)


def test_b330s_ecg_saturation_and_lead_off_rejected_ppg_kept():
    e, p, _ = record_windows("b330s")
    q = input_quality(e, p, fs_hz=FS)
    assert q.ecg_usable.mean() <= 0.05
    assert not q.usable.any()
    assert frac_with(q, Reason.ECG_CLIPPED) >= 0.6  # rails at +-5 mV
    assert frac_with(q, Reason.ECG_FLAT) > 0  # blanked (lead-off) stretches
    assert q.ppg_usable.mean() >= 0.9
    assert np.all(np.isnan(q.ecg_hr_bpm))


def test_b330s_quality_rules_catch_saturation_without_the_integrity_gate():
    """The ECG quality rules alone (integrity disabled) still reject b330s."""
    from bpstream.filters._input_quality import QualityThresholds

    e, p, _ = record_windows("b330s")
    lax = QualityThresholds(clip_max_fraction=1.0, flat_max_fraction=1.0)
    q = input_quality(e, p, fs_hz=FS, thresholds=lax)
    assert q.ecg_usable.mean() <= 0.1
    for r in (Reason.ECG_DETECTOR_DISAGREE, Reason.ECG_TEMPLATE, Reason.ECG_BASELINE_WANDER, Reason.ECG_GAP):
        assert frac_with(q, r) > 0.1, r


def test_v370s_ppg_motion_artifact():
    e, p, t = record_windows("v370s")
    q = InputFilter(fs_hz=FS).update(e, p)
    calm, moving = t + 10 <= 180, t >= 190
    assert q.ppg_usable[calm].mean() >= 0.9
    assert q.ppg_usable[moving].mean() <= 0.3
    motion = [frac_with(q, r, np.flatnonzero(moving)) for r in (Reason.PPG_RR_IRREGULAR, Reason.PPG_TEMPLATE, Reason.PPG_SKEWNESS)]
    assert motion[0] >= 0.5 and motion[1] > 0 and motion[2] > 0, motion


def test_real_nan_gaps_and_flat_ppg():
    e, p, _ = record_windows("v222s")  # ECG II has NaN stretches
    q = input_quality(e, p, fs_hz=FS)
    bad = ~np.isfinite(e).all(axis=1)
    assert bad.any()
    assert all(has(q, Reason.ECG_NAN, i) for i in np.flatnonzero(bad))
    assert not q.ecg_usable[bad].any()
    e, p, t = record_windows("b387l")  # PPG flat after about 150 s
    q = input_quality(e, p, fs_hz=FS)
    assert frac_with(q, Reason.PPG_FLAT, np.flatnonzero(t >= 160)) >= 0.9
    assert not q.ppg_usable[t >= 160].any()


def test_every_input_detector_fires_on_real_records():
    """Each reason (bar the two no-signal ones and two rare PPG ones, injected below) occurs on real
    ICU data: removing any detector makes this fail."""
    from bpstream.filters._input_quality import ALL_REASONS

    seen: set[Reason] = set()
    for name in ("b330s", "v370s", "v222s", "b387l", "a345l", "a123l", "v743l"):
        e, p, _ = record_windows(name)
        seen.update(r for rs in InputFilter(fs_hz=FS).update(e, p).reasons for r in rs)
    rare = {Reason.ECG_MISSING, Reason.PPG_MISSING, Reason.PPG_GAP, Reason.PPG_HR_IMPLAUSIBLE}
    assert set(ALL_REASONS) - rare <= seen, set(ALL_REASONS) - rare - seen


def test_empty_windows_are_missing():
    q = input_quality(np.zeros((2, 0)), np.zeros((2, 0)), fs_hz=FS)
    assert all(Reason.ECG_MISSING in rs and Reason.PPG_MISSING in rs for rs in q.reasons)


# ---------------------------------------------------------------- injected artifacts (ECG)
def _ecg_with(artifact) -> InputQuality:
    x, y = clean_window()
    return input_quality(artifact(x), y, fs_hz=FS)


def test_clean_window_passes():
    x, y = clean_window()
    q = input_quality(x, y, fs_hz=FS)
    assert q.usable[0] and q.reasons[0] == () and q.ecg_score[0] == 1.0 and q.ppg_score[0] == 1.0


def test_injected_nan_gap():
    assert has(_ecg_with(lambda x: inj.inject_nan(x, FS, 4.0, 0.3)), Reason.ECG_NAN)
    x, y = clean_window()
    assert has(input_quality(x, inj.inject_nan(y, FS, 4.0, 0.02), fs_hz=FS), Reason.PPG_NAN)


def test_injected_flat():
    q = _ecg_with(lambda x: inj.inject_flat(x, FS, 3.0, 0.8))
    assert has(q, Reason.ECG_FLAT) and q.ecg_score[0] == 0.0
    x, y = clean_window()
    assert has(input_quality(x, inj.inject_flat(y, FS, 3.0, 0.8), fs_hz=FS), Reason.PPG_FLAT)


def test_flat_runs_shorter_than_threshold_pass():
    # 0.1 s flat pieces (below 0.12 s) covering 8 % of the window: not a flat run
    def short_flats(x):
        for t0 in np.arange(0.5, 9.5, 1.25):
            x = inj.inject_flat(x, FS, t0 + 0.6, 0.096)
        return x

    assert not has(_ecg_with(short_flats), Reason.ECG_FLAT)


def _saturate(x, rail, drift=0.02):
    """Amplifier saturation: a baseline surge drives the signal onto a rail that drifts slowly."""
    tt = np.arange(x.size) / FS
    y = x + 3 * rail * np.clip(np.sin(2 * np.pi * 0.45 * tt), 0, None)
    over = y > rail
    return np.where(over, rail + drift * np.sin(2 * np.pi * 0.7 * tt), y)


def test_injected_clipping():
    q = _ecg_with(lambda x: _saturate(x, 1.2))
    assert has(q, Reason.ECG_CLIPPED)
    x, y = clean_window()
    clipped = inj.inject_clip(y, FS, hi=np.percentile(y, 88))
    assert has(input_quality(x, clipped, fs_hz=FS), Reason.PPG_CLIPPED)


def test_injected_low_amplitude_and_low_perfusion():
    assert has(_ecg_with(lambda x: 0.03 * x), Reason.ECG_LOW_AMPLITUDE)
    x, y = clean_window()
    assert has(input_quality(x, 0.003 * y, fs_hz=FS), Reason.PPG_LOW_PERFUSION)


def test_injected_spikes_make_detectors_disagree():
    def spikes(x):
        idx = np.random.default_rng(0).choice(np.arange(20, x.size - 20), 8, replace=False)
        y = x.copy()
        y[idx] += 3.0
        return y

    q = _ecg_with(spikes)
    assert has(q, Reason.ECG_DETECTOR_DISAGREE) and q.measures.ecg.bsqi[0] < 0.9


def test_injected_baseline_wander():
    tt = np.arange(1250) / FS
    q = _ecg_with(lambda x: x + 1.5 * np.sin(2 * np.pi * 0.3 * tt))
    assert has(q, Reason.ECG_BASELINE_WANDER)
    # 2 Hz (outside the 0-1 Hz band) of the same size is no baseline wander
    assert not has(_ecg_with(lambda x: x + 0.3 * np.sin(2 * np.pi * 2.0 * tt)), Reason.ECG_BASELINE_WANDER)


def test_injected_low_kurtosis():
    tt = np.arange(1250) / FS
    q = _ecg_with(lambda x: x + 0.8 * np.sin(2 * np.pi * 2.5 * tt))
    assert has(q, Reason.ECG_KURTOSIS) and q.measures.ecg.kurtosis[0] < 5


def _replace(x, t0_s, dur_s, sd, seed=1):
    y = x.copy()
    a, b = int(t0_s * FS), int((t0_s + dur_s) * FS)
    y[a:b] = np.median(x) + np.random.default_rng(seed).normal(0, sd, b - a)
    return y


def test_injected_gap_without_beats():
    q = _ecg_with(lambda x: _replace(x, 3.0, 4.0, 0.03))
    assert has(q, Reason.ECG_GAP) and q.measures.ecg.max_gap_s[0] >= 3.0
    x, y = clean_window()
    assert has(input_quality(x, _replace(y, 3.0, 4.0, 0.005 * np.ptp(y)), fs_hz=FS), Reason.PPG_GAP)


def _premature_beat(x):
    """Copy the first R peak's QRS 0.33 s after another beat: RR max/min > 2.2."""
    from bpstream.filters._ecg_quality import ecg_peaks

    a, _ = ecg_peaks(x[None, :], FS)
    r = a.cols
    y = x.copy()
    h = int(0.06 * FS)
    src, dst = r[1], r[4] + int(0.33 * FS)
    y[dst - h : dst + h] = x[src - h : src + h] - x[src - h] + x[dst - h]
    return y


def test_injected_premature_beat_rr_irregular():
    q = _ecg_with(_premature_beat)
    assert has(q, Reason.ECG_RR_IRREGULAR) and q.measures.ecg.rr_ratio[0] >= 2.2


def test_injected_inverted_beats_break_template():
    from bpstream.filters._ecg_quality import ecg_peaks

    def invert_half(x):
        a, _ = ecg_peaks(x[None, :], FS)
        y = x.copy()
        h = int(0.3 * FS)
        for c in a.cols[::2]:
            s = slice(max(c - h, 0), c + h)
            y[s] = 2 * np.median(x) - y[s]
        return y

    q = _ecg_with(invert_half)
    assert has(q, Reason.ECG_TEMPLATE) and q.measures.ecg.template_corr[0] < 0.66


# ---------------------------------------------------------------- injected artifacts (PPG, cross)
def test_inverted_ppg_negative_skewness():
    x, y = clean_window()
    q = input_quality(x, -y, fs_hz=FS)
    assert has(q, Reason.PPG_SKEWNESS) and q.measures.ppg.skewness[0] < 0


def test_running_template_rejects_a_new_morphology():
    e, p, _ = record_windows("a555l")
    f = InputFilter(fs_hz=FS)
    assert f.update(e[:10], p[:10]).usable.mean() >= 0.8
    y = p[12].astype(np.float64)
    other = y - 0.9 * np.roll(y, 15)  # every beat reshaped alike (a sharper, differentiated pulse)
    # on its own (Orphanidou's own template) the reshaped window looks fine ...
    assert not has(input_quality(e[12], other, fs_hz=FS), Reason.PPG_TEMPLATE)
    # ... against the patient's running template it does not
    q = f.update(e[12], other)
    assert has(q, Reason.PPG_TEMPLATE) and q.ppg_template_corr[0] < 0.86


def test_running_amplitude_rejects_a_perfusion_collapse():
    e, p, _ = record_windows("a555l")
    f = InputFilter(fs_hz=FS)
    f.update(e[:10], p[:10])
    weak = 0.1 * p[12].astype(np.float64)  # 10 % of the usual pulse, far above the absolute floor
    assert not has(input_quality(e[12], weak, fs_hz=FS), Reason.PPG_LOW_PERFUSION)
    assert has(f.update(e[12], weak), Reason.PPG_LOW_PERFUSION)


def test_hr_disagreement_between_ecg_and_ppg():
    e, p, _ = record_windows("a555l")
    fast = p[3, ::2].astype(np.float64)  # PPG played at double speed ...
    fast = np.concatenate([fast, fast])  # ... over the same 10 s: twice the pulse rate
    q = input_quality(e[3], fast, fs_hz=FS)
    assert q.ecg_usable[0] and q.ppg_usable[0]
    assert has(q, Reason.HR_ECG_PPG_DISAGREE) and not q.usable[0]
