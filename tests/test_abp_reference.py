"""Arterial reference: slope-sum onsets, per-beat pressures, window label with the jSQI limits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.signal import find_peaks, resample_poly

from bpstream.filters import Beats, Reason, Reference, abp_beats, abp_onsets, abp_reference

_spec = importlib.util.spec_from_file_location("_bp_inject", Path(__file__).with_name("_inject.py"))
inj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inj)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "physionet2015"


def _abp(name: str) -> tuple[np.ndarray, float]:
    wfdb = pytest.importorskip("wfdb")
    if not (DATA / f"{name}.hea").exists():
        pytest.skip(f"record {name} not in {DATA}")
    rec = wfdb.rdrecord(str(DATA / name))
    return rec.p_signal[:, rec.sig_name.index("ABP")].astype(np.float64), float(rec.fs)


def _nearest(sorted_idx: np.ndarray, q: np.ndarray) -> np.ndarray:
    j = np.clip(np.searchsorted(sorted_idx, q), 1, len(sorted_idx) - 1)
    left, right = sorted_idx[j - 1], sorted_idx[j]
    return np.where(np.abs(right - q) < np.abs(left - q), right, left)


@pytest.mark.parametrize("name", ["a555l", "f362s"])
def test_beats_match_independent_peaks_on_real_records(name):
    """Beat by beat against scipy.find_peaks on the raw ABP (an independent systolic-peak method)."""
    x, fs = _abp(name)
    b = abp_beats(x, fs)
    assert len(b) > 250
    peaks, _ = find_peaks(x, distance=int(0.3 * fs), prominence=20)
    # precision: each detected beat's systolic peak is an independent peak (150 ms) with SBP within 2 mmHg
    near = _nearest(peaks, b.systolic)
    ok = (np.abs(near - b.systolic) <= 0.15 * fs) & (np.abs(x[near] - b.sbp_mmhg) <= 2.0)
    assert ok.mean() >= 0.95, ok.mean()
    # sensitivity: each independent peak inside the detected span is found
    inside = peaks[(peaks > b.onset[0]) & (peaks < b.onset[-1] + b.period_s[-1] * fs)]
    found = np.abs(_nearest(np.sort(b.systolic), inside) - inside) <= 0.15 * fs
    assert found.mean() >= 0.95, found.mean()
    # diastolic: the minimum between consecutive independent peaks, within 2 mmHg
    lo = np.array([x[a:c].min() for a, c in zip(peaks[:-1], peaks[1:])])
    j = np.clip(np.searchsorted(peaks, b.systolic) - 1, 0, len(lo) - 1)
    dbp_ok = np.abs(lo[j] - b.dbp_mmhg) <= 2.0
    assert dbp_ok.mean() >= 0.95, dbp_ok.mean()
    # MAP is the area mean over each whole beat
    k = len(b) // 2
    a, c = b.onset[k], b.onset[k + 1]
    assert b.map_mmhg[k] == pytest.approx(x[a:c].mean())
    assert b.good.mean() >= 0.9


@pytest.mark.parametrize("name, sbp, dbp", [("a555l", 179.0, 85.0), ("f362s", 116.0, 67.0)])
def test_window_reference_at_125hz(name, sbp, dbp):
    x, fs = _abp(name)
    x125 = resample_poly(x, 1, int(fs // 125))
    refs = [abp_reference(x125[i : i + 1250], 125.0) for i in range(0, 1250 * 20, 250)]  # first 200 s
    assert all(isinstance(r, Reference) for r in refs)
    usable = [r for r in refs if r.usable]
    assert len(usable) >= 0.95 * len(refs)
    assert np.median([r.sbp_mmhg for r in usable]) == pytest.approx(sbp, abs=4)
    assert np.median([r.dbp_mmhg for r in usable]) == pytest.approx(dbp, abs=4)
    for r in usable:
        assert r.dbp_mmhg < r.map_mmhg < r.sbp_mmhg
        assert r.n_beats >= 5 and r.good_beat_fraction >= 0.8
        assert 30 < r.hr_bpm < 200


@pytest.mark.parametrize("fs", [125.0, 250.0, 500.0])
@pytest.mark.parametrize("hr", [45.0, 75.0, 140.0, 190.0])
def test_onsets_on_synthetic_beats(fs, hr):
    x = inj.synthetic_abp(10.0, fs, 120, 70, hr, phase_s=0.37)
    on = abp_onsets(x, fs)
    period = 60.0 / hr
    assert abs(len(on) - 10.0 / period) <= 2
    assert np.allclose(np.diff(on) / fs, period, atol=0.02)


def test_map_is_area_mean_not_formula():
    x = inj.synthetic_abp(10.0, 125.0, 120, 60, 70)
    b = abp_beats(x, 125.0)
    for k in range(len(b)):
        assert b.map_mmhg[k] == pytest.approx(x[b.onset[k] : b.onset[k] + int(round(b.period_s[k] * 125))].mean())
    ref = abp_reference(x, 125.0)
    assert abs(ref.map_mmhg - (ref.sbp_mmhg + 2 * ref.dbp_mmhg) / 3) > 2.0


def test_hypotension_is_kept():
    x = inj.synthetic_abp(10.0, 125.0, 68, 38, 95)  # SBP < 80 is a real ICU state, not an artifact
    ref = abp_reference(x, 125.0)
    assert ref.usable, ref.reasons
    assert ref.sbp_mmhg == pytest.approx(68, abs=1.5)
    assert ref.dbp_mmhg == pytest.approx(38, abs=1.5)


@pytest.mark.parametrize(
    "sbp, dbp, hr, why",
    [
        (330, 150, 75, "sbp > 300"),
        (60, 12, 75, "dbp < 20"),
        (270, 195, 75, "map > 200"),
        (43, 20.5, 75, "map < 30"),
        (95, 80, 75, "pp < 20"),
        (120, 70, 215, "hr > 200"),
    ],
)
def test_jsqi_physiological_limits_reject(sbp, dbp, hr, why):
    ref = abp_reference(inj.synthetic_abp(10.0, 125.0, sbp, dbp, hr), 125.0)
    assert not ref.usable, why
    assert Reason.ABP_BEATS_IMPLAUSIBLE in ref.reasons or Reason.ABP_TOO_FEW_BEATS in ref.reasons


def test_limits_at_the_edge_accepted():
    ref = abp_reference(inj.synthetic_abp(10.0, 125.0, 70, 45, 190), 125.0)  # PP 25, HR 190
    assert ref.usable, ref.reasons


def test_too_few_good_beats_and_fraction():
    x = inj.synthetic_abp(10.0, 125.0, 120, 70, 75)
    # 3 of ~12 beats with a pulse pressure collapse below 20 mmHg -> good fraction < 0.8
    y = x.copy()
    y[: 125 * 3] = 90 + (x[: 125 * 3] - 70) * 0.25
    ref = abp_reference(y, 125.0)
    assert not ref.usable
    assert Reason.ABP_BEATS_IMPLAUSIBLE in ref.reasons
    assert ref.good_beat_fraction < 0.8
    # bradycardia at 25 bpm: only ~3 complete beats in 10 s -> too few beats
    ref = abp_reference(inj.synthetic_abp(10.0, 125.0, 120, 70, 25), 125.0)
    assert not ref.usable and Reason.ABP_TOO_FEW_BEATS in ref.reasons


def test_bad_inputs_give_reasons():
    fs = 125.0
    x = inj.synthetic_abp(10.0, fs)
    assert abp_reference(None, fs).reasons == (Reason.ABP_MISSING,)
    assert abp_reference(np.array([]), fs).reasons == (Reason.ABP_MISSING,)
    r = abp_reference(inj.inject_nan(x, fs, 4.0, 0.3), fs)
    assert not r.usable and r.reasons == (Reason.ABP_NAN,)
    r = abp_reference(np.full(1250, 80.0), fs)
    assert not r.usable and r.reasons == (Reason.ABP_TOO_FEW_BEATS,)
    assert r.sbp_mmhg is None
    r = abp_reference(x[:100], fs)
    assert not r.usable and Reason.ABP_TOO_FEW_BEATS in r.reasons


def test_nan_beats_marked_bad():
    fs = 125.0
    x = inj.inject_nan(inj.synthetic_abp(10.0, fs), fs, 4.0, 0.3)
    b = abp_beats(x, fs)
    assert isinstance(b, Beats) and len(b) >= 8
    assert (~b.good).sum() >= 1


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.integers(0, 3000),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    fs=st.sampled_from([0.0, 1.0, 50.0, 125.0, 250.0, float("nan")]),
)
def test_never_raises_same_types(x, fs):
    r = abp_reference(x, fs)
    assert isinstance(r, Reference)
    assert isinstance(r.usable, bool) and isinstance(r.reasons, tuple)
    assert all(isinstance(q, Reason) for q in r.reasons)
    assert r.usable or r.reasons
    b = abp_beats(x, fs)
    assert isinstance(b, Beats)
    on = abp_onsets(x, fs)
    assert on.dtype == np.int64 and on.ndim == 1


@settings(max_examples=60, deadline=None)
@given(
    sbp=st.floats(60, 250),
    pp=st.floats(25, 120),
    hr=st.floats(40, 180),
    phase=st.floats(0, 2),
    noise=st.floats(0, 2),
)
def test_synthetic_labels_recovered(sbp, pp, hr, phase, noise):
    dbp = sbp - pp
    if dbp < 22 + 4 * noise:  # clear of the hard DBP limit
        return
    x = inj.synthetic_abp(10.0, 125.0, sbp, dbp, hr, phase_s=phase, noise_mmhg=noise)
    if np.mean(x) > 195:  # clear of the MAP limit: the waveform's area mean, not (SBP + 2 DBP) / 3
        return  # (e.g. 237/174 at 83 bpm has an area MAP of 200.05 and is rightly rejected)
    ref = abp_reference(x, 125.0)
    assert ref.usable, ref.reasons
    assert ref.sbp_mmhg == pytest.approx(sbp, abs=2 + 3 * noise)
    assert ref.dbp_mmhg == pytest.approx(dbp, abs=2 + 3 * noise)
    assert ref.hr_bpm == pytest.approx(hr, rel=0.03)
