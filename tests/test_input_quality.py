"""Input (ECG + PPG) quality: real records, injected artifacts, simulated signals, neurokit2 as oracle,
streaming state, and property tests (never raises, always the same types)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpstream.filters import InputFilter, InputQuality, Reason, Windower, input_quality

_spec = importlib.util.spec_from_file_location("_bp_inject_iq", Path(__file__).with_name("_inject.py"))
inj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inj)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2015"
FS = 125.0


@functools.lru_cache(maxsize=None)
def record_windows(name: str, hop_s: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ecg, ppg, t_start_s) windows of a real record through the project's reader and windower."""
    from bpstream.stream._records import iter_chunks, read_record

    if not (DATA / f"{name}.hea").exists():
        pytest.fail(f"shared data missing: {DATA / name}.hea")
    w = Windower(window_s=10.0, hop_s=hop_s, fs_hz=FS)
    out = [win for chunk in iter_chunks(read_record(DATA / name)) for win in w.update(chunk)]
    return np.stack([x.ecg for x in out]), np.stack([x.ppg for x in out]), np.array([x.t_start_s for x in out])


def clean_window(k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    e, p, _ = record_windows("a555l")
    return e[k].astype(np.float64), p[k].astype(np.float64)


def has(q: InputQuality, reason: Reason, i: int = 0) -> bool:
    return reason in q.reasons[i]


def frac_with(q: InputQuality, reason: Reason, rows=slice(None)) -> float:
    idx = np.arange(len(q))[rows]
    return float(np.mean([reason in q.reasons[i] for i in idx]))


# ---------------------------------------------------------------- real records
def test_clean_records_mostly_accepted():
    for name in ("a555l", "f362s"):
        e, p, _ = record_windows(name)
        q = InputFilter(sampling_rate=FS).update(e, p)
        assert q.usable.mean() >= 0.85, (name, q.reason_counts())
        assert np.all(np.abs(q.ecg_hr_bpm[q.usable] - q.ppg_hr_bpm[q.usable]) <= 5.0)


def test_b330s_ecg_saturation_and_lead_off_rejected_ppg_kept():
    e, p, _ = record_windows("b330s")
    q = input_quality(e, p, sampling_rate=FS)
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
    q = input_quality(e, p, sampling_rate=FS, thresholds=lax)
    assert q.ecg_usable.mean() <= 0.1
    for r in (Reason.ECG_DETECTOR_DISAGREE, Reason.ECG_TEMPLATE, Reason.ECG_BASELINE_WANDER, Reason.ECG_GAP):
        assert frac_with(q, r) > 0.1, r


def test_v370s_ppg_motion_artifact():
    e, p, t = record_windows("v370s")
    q = InputFilter(sampling_rate=FS).update(e, p)
    calm, moving = t + 10 <= 180, t >= 190
    assert q.ppg_usable[calm].mean() >= 0.9
    assert q.ppg_usable[moving].mean() <= 0.3
    motion = [frac_with(q, r, np.flatnonzero(moving)) for r in (Reason.PPG_RR_IRREGULAR, Reason.PPG_TEMPLATE, Reason.PPG_SKEWNESS)]
    assert motion[0] >= 0.5 and motion[1] > 0 and motion[2] > 0, motion


def test_real_nan_gaps_and_flat_ppg():
    e, p, _ = record_windows("v222s")  # ECG II has NaN stretches
    q = input_quality(e, p, sampling_rate=FS)
    bad = ~np.isfinite(e).all(axis=1)
    assert bad.any()
    assert all(has(q, Reason.ECG_NAN, i) for i in np.flatnonzero(bad))
    assert not q.ecg_usable[bad].any()
    e, p, t = record_windows("b387l")  # PPG flat after about 150 s
    q = input_quality(e, p, sampling_rate=FS)
    assert frac_with(q, Reason.PPG_FLAT, np.flatnonzero(t >= 160)) >= 0.9
    assert not q.ppg_usable[t >= 160].any()


def test_every_input_detector_fires_on_real_records():
    """Each reason (bar the two no-signal ones and two rare PPG ones, injected below) occurs on real
    ICU data: removing any detector makes this fail."""
    from bpstream.filters._input_quality import ALL_REASONS

    seen: set[Reason] = set()
    for name in ("b330s", "v370s", "v222s", "b387l", "a345l", "a123l", "v743l"):
        e, p, _ = record_windows(name)
        seen.update(r for rs in InputFilter(sampling_rate=FS).update(e, p).reasons for r in rs)
    rare = {Reason.ECG_MISSING, Reason.PPG_MISSING, Reason.PPG_GAP, Reason.PPG_HR_IMPLAUSIBLE}
    assert set(ALL_REASONS) - rare <= seen, set(ALL_REASONS) - rare - seen


def test_empty_windows_are_missing():
    q = input_quality(np.zeros((2, 0)), np.zeros((2, 0)), sampling_rate=FS)
    assert all(Reason.ECG_MISSING in rs and Reason.PPG_MISSING in rs for rs in q.reasons)


# ---------------------------------------------------------------- injected artifacts (ECG)
def _ecg_with(artifact) -> InputQuality:
    x, y = clean_window()
    return input_quality(artifact(x), y, sampling_rate=FS)


def test_clean_window_passes():
    x, y = clean_window()
    q = input_quality(x, y, sampling_rate=FS)
    assert q.usable[0] and q.reasons[0] == () and q.ecg_score[0] == 1.0 and q.ppg_score[0] == 1.0


def test_injected_nan_gap():
    assert has(_ecg_with(lambda x: inj.inject_nan(x, FS, 4.0, 0.3)), Reason.ECG_NAN)
    x, y = clean_window()
    assert has(input_quality(x, inj.inject_nan(y, FS, 4.0, 0.02), sampling_rate=FS), Reason.PPG_NAN)


def test_injected_flat():
    q = _ecg_with(lambda x: inj.inject_flat(x, FS, 3.0, 0.8))
    assert has(q, Reason.ECG_FLAT) and q.ecg_score[0] == 0.0
    x, y = clean_window()
    assert has(input_quality(x, inj.inject_flat(y, FS, 3.0, 0.8), sampling_rate=FS), Reason.PPG_FLAT)


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
    assert has(input_quality(x, clipped, sampling_rate=FS), Reason.PPG_CLIPPED)


def test_injected_low_amplitude_and_low_perfusion():
    assert has(_ecg_with(lambda x: 0.03 * x), Reason.ECG_LOW_AMPLITUDE)
    x, y = clean_window()
    assert has(input_quality(x, 0.003 * y, sampling_rate=FS), Reason.PPG_LOW_PERFUSION)


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
    assert has(input_quality(x, _replace(y, 3.0, 4.0, 0.005 * np.ptp(y)), sampling_rate=FS), Reason.PPG_GAP)


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
    q = input_quality(x, -y, sampling_rate=FS)
    assert has(q, Reason.PPG_SKEWNESS) and q.measures.ppg.skewness[0] < 0


def test_running_template_rejects_a_new_morphology():
    e, p, _ = record_windows("a555l")
    f = InputFilter(sampling_rate=FS)
    assert f.update(e[:10], p[:10]).usable.mean() >= 0.8
    y = p[12].astype(np.float64)
    other = y - 0.9 * np.roll(y, 15)  # every beat reshaped alike (a sharper, differentiated pulse)
    # on its own (Orphanidou's own template) the reshaped window looks fine ...
    assert not has(input_quality(e[12], other, sampling_rate=FS), Reason.PPG_TEMPLATE)
    # ... against the patient's running template it does not
    q = f.update(e[12], other)
    assert has(q, Reason.PPG_TEMPLATE) and q.ppg_template_corr[0] < 0.86


def test_running_amplitude_rejects_a_perfusion_collapse():
    e, p, _ = record_windows("a555l")
    f = InputFilter(sampling_rate=FS)
    f.update(e[:10], p[:10])
    weak = 0.1 * p[12].astype(np.float64)  # 10 % of the usual pulse, far above the absolute floor
    assert not has(input_quality(e[12], weak, sampling_rate=FS), Reason.PPG_LOW_PERFUSION)
    assert has(f.update(e[12], weak), Reason.PPG_LOW_PERFUSION)


def test_hr_disagreement_between_ecg_and_ppg():
    e, p, _ = record_windows("a555l")
    fast = p[3, ::2].astype(np.float64)  # PPG played at double speed ...
    fast = np.concatenate([fast, fast])  # ... over the same 10 s: twice the pulse rate
    q = input_quality(e[3], fast, sampling_rate=FS)
    assert q.ecg_usable[0] and q.ppg_usable[0]
    assert has(q, Reason.HR_ECG_PPG_DISAGREE) and not q.usable[0]


# ---------------------------------------------------------------- simulated signals, neurokit2 oracle
nk = pytest.importorskip("neurokit2")


@pytest.mark.parametrize("hr", [80, 120])
def test_simulated_ecg_and_ppg(hr):
    ecg = nk.ecg_simulate(duration=10, sampling_rate=int(FS), heart_rate=hr, noise=0.01, random_state=1)
    ppg = nk.ppg_simulate(duration=10, sampling_rate=int(FS), heart_rate=hr, random_state=1)
    q = input_quality(ecg, ppg, sampling_rate=FS)
    assert q.ecg_usable[0] and q.ppg_usable[0], q.reasons[0]
    assert abs(q.ecg_hr_bpm[0] - hr) < 3
    # the simulator's PPG rate wanders off the requested one; neurokit2's own peaks are the oracle
    peaks = nk.ppg_findpeaks(ppg, sampling_rate=int(FS))["PPG_Peaks"]
    assert abs(q.ppg_hr_bpm[0] - 60.0 / np.mean(np.diff(peaks) / FS)) < 3


@pytest.mark.parametrize("hr", [30, 220])
def test_simulated_implausible_rates(hr):
    ecg = nk.ecg_simulate(duration=10, sampling_rate=int(FS), heart_rate=hr, noise=0.01, random_state=1)
    ppg = nk.ppg_simulate(duration=10, sampling_rate=int(FS), heart_rate=hr, random_state=1)
    q = input_quality(ecg, ppg, sampling_rate=FS)
    assert has(q, Reason.ECG_HR_IMPLAUSIBLE) and has(q, Reason.PPG_HR_IMPLAUSIBLE)
    assert not q.usable[0]


def test_ecg_peaks_agree_with_neurokit2_on_real_windows():
    from bpstream.filters._ecg_quality import ecg_peaks

    e, _, _ = record_windows("f362s")
    tol = int(0.05 * FS)
    hits = total = 0
    for k in range(2, 8):
        _, info = nk.ecg_peaks(nk.ecg_clean(e[k].astype(np.float64), sampling_rate=int(FS)), sampling_rate=int(FS))
        ref = np.asarray(info["ECG_R_Peaks"])
        ref = ref[(ref > FS) & (ref < e.shape[1] - 5)]  # ours skips the window's start-up second only by design
        a, _ = ecg_peaks(e[k : k + 1].astype(np.float64), FS)
        hits += sum(np.min(np.abs(a.cols - r)) <= tol for r in ref)
        total += ref.size
    assert hits / total >= 0.95


def test_ppg_rate_agrees_with_neurokit2_on_real_windows():
    e, p, _ = record_windows("a555l")
    q = input_quality(e[2:8], p[2:8], sampling_rate=FS)
    for k in range(6):
        peaks = nk.ppg_findpeaks(nk.ppg_clean(p[2 + k].astype(np.float64), sampling_rate=int(FS)), sampling_rate=int(FS))["PPG_Peaks"]
        hr_nk = 60.0 / np.mean(np.diff(peaks) / FS)
        assert abs(q.measures.ppg.hr_bpm[k] - hr_nk) < 3.0


# ---------------------------------------------------------------- streaming state
def test_batch_equals_one_by_one_and_state_round_trip():
    e, p, _ = record_windows("v370s")
    a = InputFilter(sampling_rate=FS).update(e, p)
    f = InputFilter(sampling_rate=FS)
    singles = []
    for i in range(len(e)):
        if i == 12:  # restart from serialized state halfway
            f = InputFilter.from_bytes(f.to_bytes(), sampling_rate=FS)
        singles.append(f.update(e[i], p[i]))
    assert [s.reasons[0] for s in singles] == list(a.reasons)
    assert np.array_equal(np.array([s.usable[0] for s in singles]), a.usable)
    assert len(f.to_bytes()) < 4096
    assert all(k.endswith("_") for k in f.state_dict())


def test_mismatched_batches_are_a_clear_error():
    with pytest.raises(ValueError, match="windows"):
        input_quality(np.zeros((2, 100)), np.zeros((3, 100)))


# ---------------------------------------------------------------- properties
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _check_types(q: InputQuality, n: int) -> None:
    assert isinstance(q, InputQuality) and len(q) == n
    for name in ("ecg_score", "ppg_score", "ecg_hr_bpm", "ppg_hr_bpm", "ppg_template_corr"):
        a = getattr(q, name)
        assert isinstance(a, np.ndarray) and a.shape == (n,) and a.dtype == np.float64
    for name in ("ecg_usable", "ppg_usable", "usable"):
        a = getattr(q, name)
        assert isinstance(a, np.ndarray) and a.shape == (n,) and a.dtype == bool
    assert np.all((q.ecg_score >= 0) & (q.ecg_score <= 1)) and np.all((q.ppg_score >= 0) & (q.ppg_score <= 1))
    assert isinstance(q.reasons, tuple) and len(q.reasons) == n
    assert all(isinstance(r, Reason) for rs in q.reasons for r in rs)
    assert np.all(q.usable <= (q.ecg_usable & q.ppg_usable))
    assert all(q.usable[i] == (len(q.reasons[i]) == 0) for i in range(n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 3),
    t=st.sampled_from([0, 1, 2, 3, 17, 200, 1250]),
    kind=st.sampled_from(["random", "nan", "inf", "const", "huge", "mixed"]),
    seed=st.integers(0, 2**16),
    fill=floats,
)
def test_never_raises_and_same_types(n, t, kind, seed, fill):
    rng = np.random.default_rng(seed)
    base = {
        "random": lambda: rng.normal(0, 1, (n, t)),
        "nan": lambda: np.full((n, t), np.nan),
        "inf": lambda: np.full((n, t), np.inf),
        "const": lambda: np.full((n, t), fill if np.isfinite(fill) else 1.0),
        "huge": lambda: rng.normal(0, 1e300, (n, t)),
        "mixed": lambda: np.where(rng.random((n, t)) < 0.1, fill, rng.normal(0, 1, (n, t))),
    }[kind]
    ecg, ppg = base(), base()
    with np.errstate(all="raise"):  # no floating-point warnings leak either
        _check_types(input_quality(ecg, ppg, sampling_rate=FS), n)
        _check_types(InputFilter(sampling_rate=FS).update(ecg, ppg), n)


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, st.integers(0, 400), elements=floats))
def test_one_dimensional_any_values(x):
    with np.errstate(all="raise"):
        _check_types(input_quality(x, x[::-1], sampling_rate=FS), 1)
