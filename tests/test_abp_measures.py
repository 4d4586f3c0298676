"""The label filter's stateless half measured in batches (``measure_abp``) gives the same labels as
window by window, and each batched piece equals its one-window form."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from bpstream.filters import LabelFilter, Window, abp_beats, abp_onsets, measure_abp
from bpstream.filters._abp import beats_batch, beats_from_onsets
from bpstream.filters._abp_events import EVENT_THRESHOLDS, event_measures, offset_steps
from bpstream.filters._abp_onsets import abp_onsets_batch

from ._data import record

_spec = importlib.util.spec_from_file_location("_inject", Path(__file__).with_name("_inject.py"))
inj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inj)

FS = 125.0
N = 1250


def _signals(name: str = "f362s") -> dict[str, np.ndarray]:
    """A real record at 125 Hz with line events injected (flush, offset step, zeroing) and a NaN gap."""
    from scipy.signal import resample_poly

    from bpstream.stream.records._records import read_record

    rec = read_record(record(name), roles=("ecg", "ppg", "abp"), required=("ecg", "ppg", "abp"))
    seg = max(rec.segments, key=lambda s: s.duration_s)
    sig = {r: resample_poly(np.nan_to_num(np.asarray(seg.signals[r], dtype=np.float64)), 1, 2)[: int(300 * FS)]
           for r in ("ecg", "ppg", "abp")}
    x = inj.inject_flush(sig["abp"], FS, 60.0, 2.0)
    x = inj.inject_offset(x, FS, 150.0, 25.0)
    x = inj.inject_zeroing(x, FS, 220.0, 4.0)
    x[int(250 * FS) : int(251 * FS)] = np.nan
    sig["abp"] = x
    return sig


def _same(a, b) -> bool:
    """Exact equality of measures: arrays bit for bit (NaN equal to NaN), tuples and dataclasses field by field."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


def _windows(sig: dict) -> list[Window]:
    n = len(sig["abp"])
    return [Window(t_start_s=i / FS, t_end_s=(i + N) / FS, fs_hz=FS,
                   ecg=sig["ecg"][i : i + N].astype(np.float32), ppg=sig["ppg"][i : i + N].astype(np.float32),
                   abp=sig["abp"][i : i + N].astype(np.float32))
            for i in range(0, n - N + 1, int(2 * FS))]


def test_batched_label_filter_gives_the_same_labels_as_window_by_window():
    windows = _windows(_signals())
    hr = [None if i % 7 == 3 else 80.0 for i in range(len(windows))]  # the ECG check fires on some
    ppg = [i % 5 != 0 for i in range(len(windows))]  # and the PPG is "bad" on some
    one = LabelFilter(FS)
    slow = [one.update(w, ecg_hr_bpm=h, ppg=p) for w, h, p in zip(windows, hr, ppg)]
    measures = measure_abp(np.stack([w.abp for w in windows]), FS, np.stack([w.ppg for w in windows]))
    batched = LabelFilter(FS)
    fast = [batched.update(w, ecg_hr_bpm=h, ppg=p, measures=m) for w, h, p, m in zip(windows, hr, ppg, measures)]
    assert [repr(r) for r in fast] == [repr(r) for r in slow]
    assert batched.to_bytes() == one.to_bytes()
    # the run went through what the measures feed: events, NaN rows, correlations, usable labels
    reasons = {r for ref in slow for r in ref.reasons}
    assert {"abp_flush", "abp_offset_step", "abp_zeroing", "abp_nan"} <= {r.value for r in reasons}
    assert any("ppg_corr" in r.extras for r in slow) and sum(r.usable for r in slow) > 20
    assert sum(m is None for m in measures) == sum("abp_nan" in {x.value for x in r.reasons} for r in slow)


def test_a_row_measures_the_same_in_any_batch():
    windows = _windows(_signals("a555l"))[:40]
    abp = np.stack([w.abp for w in windows]).astype(np.float64)
    ppg = np.stack([w.ppg for w in windows]).astype(np.float64)
    abp[5, 100:120] = np.nan  # a non-finite row: None, and no effect on the others
    whole = measure_abp(abp, FS, ppg)
    assert whole[5] is None
    for i in range(len(windows)):
        alone = measure_abp(abp[i : i + 1], FS, ppg[i : i + 1])[0]
        assert _same(alone, whole[i]), i
        if alone is not None:  # and equal to the one-window functions they batch
            assert _same(alone.beats, abp_beats(abp[i], FS))
            assert _same(alone.events, event_measures(abp[i : i + 1], FS)[0])
    without_ppg = measure_abp(abp[:3], FS)
    assert all(m.spectra is None for m in without_ppg)


def test_batched_onsets_equal_one_window_onsets():
    windows = _windows(_signals("v370s"))[:30]
    x = np.stack([w.abp for w in windows]).astype(np.float64)
    x[3] = 80.0  # flat: no beats
    x[4, 200:260] = np.nan  # interpolated for detection
    batch = abp_onsets_batch(x, FS)
    for i in range(x.shape[0]):
        assert np.array_equal(batch[i], abp_onsets(x[i], FS)), i
    assert batch[3].size == 0 and sum(b.size for b in batch) > 200
    beats = beats_batch(x, batch, FS)  # beat pressures over the flattened batch, row by row the same
    for i in range(x.shape[0]):
        assert _same(beats[i], beats_from_onsets(x[i], batch[i], FS)), i


def _offset_steps_naive(sbp, dbp, mean):
    """The offset-step rule written out beat by beat (medians by np.median), for comparison."""
    T, h, n = EVENT_THRESHOLDS, 8, len(mean)
    hits = []
    for k in range(h, n - h):
        pre, post = slice(k - h, k), slice(k + 1, k + 1 + h)
        step = np.median(mean[post]) - np.median(mean[pre])
        ds, dd = np.median(sbp[post]) - np.median(sbp[pre]), np.median(dbp[post]) - np.median(dbp[pre])
        jump = 0.5 * (mean[k + 2] + mean[k + 1]) - 0.5 * (mean[k - 1] + mean[k - 2])
        mad_pre = np.median(np.abs(mean[pre] - np.median(mean[pre])))
        mad_post = np.median(np.abs(mean[post] - np.median(mean[post])))
        if (abs(step) >= T["step_min_mmhg"] and abs(ds - step) <= T["step_tol_mmhg"]
                and abs(dd - step) <= T["step_tol_mmhg"] and abs(ds - dd) <= T["step_pp_ratio"] * abs(step)
                and jump * np.sign(step) >= 0.75 * abs(step) and mad_pre <= abs(step) / 4
                and mad_post <= abs(step) / 4):
            hits.append(k)
    # one step, one index: a hit within 3 beats of the previous hit belongs to its cluster
    return [k for i, k in enumerate(hits) if i == 0 or k - hits[i - 1] > 3]


def test_offset_steps_equal_the_beat_by_beat_rule():
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(600):
        n = int(rng.integers(12, 40))
        m = rng.normal(90, 3) + rng.normal(0, rng.choice([0.5, 2.0, 6.0]), n)
        m[int(rng.integers(0, n)) :] += rng.choice([0.0, 20.0, -25.0, 12.0])
        s, d = m + 40 + rng.normal(0, 1.5, n), m - 20 + rng.normal(0, 1.5, n)
        got = offset_steps(s, d, m).tolist()
        want = _offset_steps_naive(s, d, m)
        assert got == want, (got, want)
        found += bool(got)
    assert found > 50  # the rule fired on many of them, so both paths were compared where it matters


def test_labels_measured_in_a_batch_give_the_same_labels():
    from bpstream.stream.core import measure_labels
    from bpstream.stream.core._step import Pipeline, PipelineConfig

    windows = _windows(_signals())[:30]
    pipeline = Pipeline(PipelineConfig())
    measured = measure_labels(windows)
    assert [m is not None for m in measured] == [bool(np.isfinite(w.abp).all()) for w in windows]
    batched, plain = pipeline.new_state().gates, pipeline.new_state().gates
    for w, m in zip(windows, measured):
        q = plain.input(w)
        assert repr(batched.label(w, q, m)) == repr(plain.label(w, q))
    assert batched.label_filter_.to_bytes() == plain.label_filter_.to_bytes()
