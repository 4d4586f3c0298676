"""The streaming windower: chunk-boundary invariance, resampling, gaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from bpstream.filters import Chunk, Windower
from bpstream.stream.records._records import iter_chunks, read_record

from ._data import MIMIC, record


def _stream(fs_hz: float, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * fs_hz)
    t = np.arange(n) / fs_hz
    return {
        "ecg": np.sin(2 * np.pi * 1.2 * t) + 0.05 * rng.standard_normal(n),
        "ppg": np.cos(2 * np.pi * 1.2 * t) + 0.05 * rng.standard_normal(n),
        "abp": 90 + 30 * np.sin(2 * np.pi * 1.2 * t),
    }


def _windows(sig: dict[str, np.ndarray], fs: float, cuts: list[int], t0: float = 0.0):
    w = Windower()
    out = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(sig["ecg"]))), len(sig["ecg"])]
    for a, b in zip(bounds[:-1], bounds[1:]):
        chunk = Chunk(t_start_s=t0 + a / fs, fs_hz={k: fs for k in sig}, signals={k: v[a:b] for k, v in sig.items()})
        out.extend(w.update(chunk))
    return out


@settings(max_examples=40, deadline=None)
@given(
    fs=st.sampled_from([125.0, 250.0, 360.0, 500.0, 100.0]),
    cuts=st.lists(st.integers(min_value=1, max_value=30 * 500), max_size=40),
)
def test_windows_do_not_depend_on_chunk_boundaries(fs, cuts):
    sig = _stream(fs, 30.0)
    reference = _windows(sig, fs, [])
    got = _windows(sig, fs, cuts)
    # 10-s windows every 2 s over 30 s; upsampling needs one input sample past the last window's end
    assert len(got) == len(reference) == (10 if fs < 125 else 11)
    for a, b in zip(reference, got):
        assert a.t_start_s == b.t_start_s and a.t_end_s == b.t_end_s
        np.testing.assert_array_equal(a.ecg, b.ecg)
        np.testing.assert_array_equal(a.ppg, b.ppg)
        np.testing.assert_array_equal(a.abp, b.abp)


def test_geometry_and_model_rate():
    ws = _windows(_stream(250.0, 20.0), 250.0, [])
    assert [w.t_start_s for w in ws] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert all(w.n_samples == 1250 and w.fs_hz == 125.0 and w.ecg.dtype == np.float32 for w in ws)


def test_gap_resets_instead_of_stitching():
    fs = 250.0
    sig = _stream(fs, 40.0)
    first = {k: v[: int(20 * fs)] for k, v in sig.items()}
    second = {k: v[int(20 * fs):] for k, v in sig.items()}
    w = Windower()
    out = w.update(Chunk(0.0, {k: fs for k in sig}, first))
    out += w.update(Chunk(25.0, {k: fs for k in sig}, second))  # 5-s hole
    segs = {w_.segment for w_ in out}
    assert len(segs) == 2
    after = [x for x in out if x.segment == max(segs)]
    assert after[0].t_start_s == 25.0  # a new window needs 10 s of new data
    assert all(x.t_start_s >= 25.0 for x in after)


def test_resampling_from_250_hz_matches_offline_polyphase_on_a555l():
    rec = read_record(record("a555l"))
    seg = rec.segments[0]
    w = Windower()
    ws = [x for c in iter_chunks(rec, 1.3) for x in w.update(c)]
    offline = signal.resample_poly(seg.signals["abp"], 1, 2)  # zero-phase, offline reference
    win = ws[20]
    a = int(round(win.t_start_s * 125))
    ref = offline[a : a + 1250]
    # the causal Bessel filter delays by a few ms; align by the best lag within 20 ms
    best = max(range(0, 4), key=lambda k: np.corrcoef(win.abp[k:], ref[: 1250 - k])[0, 1])
    assert np.corrcoef(win.abp[best:], ref[: 1250 - best])[0, 1] > 0.999
    assert abs(np.median(win.abp) - np.median(ref)) < 1.0  # mmHg


def test_125_hz_mimic_record_passes_through_and_resets_between_segments():
    seg_dir = MIMIC / "mimic3_p000878"
    rec = read_record(seg_dir / "3269321_0002", required=("ecg", "ppg"))
    assert rec.segments[0].fs_hz == {"ecg": 125.0, "ppg": 125.0}
    w = Windower()
    ws = [x for c in iter_chunks(rec, 2.0) for x in w.update(c)]
    assert len(ws) == 1 + (14 - 10) // 2  # 1750 samples = 14 s
    np.testing.assert_allclose(ws[0].ppg, rec.segments[0].signals["ppg"][:1250].astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=40 * 250), max_size=30))
def test_a_nan_gap_spoils_only_the_windows_that_overlap_it(cuts):
    fs = 250.0
    sig = _stream(fs, 40.0)
    sig["ecg"] = sig["ecg"].copy()
    sig["ecg"][int(5 * fs): int(6 * fs)] = np.nan  # a 1-s dropout
    reference = _windows(sig, fs, [])
    got = _windows(sig, fs, cuts)
    assert len(got) == len(reference)
    for a, b in zip(reference, got):
        np.testing.assert_array_equal(a.ecg, b.ecg)
    bad = [w for w in reference if not np.isfinite(w.ecg).all()]
    assert bad and all(w.t_start_s < 6.1 for w in bad)  # later windows are clean again
    assert np.isfinite(reference[-1].ecg).all()


def test_resampler_filter_and_integer_ratio_path_match_the_plain_computation():
    """The resampler calls scipy's sosfilt core directly and, at an integer rate ratio, picks samples
    instead of interpolating; both must give exactly what ``signal.sosfilt`` and picking give."""
    from bpstream.filters import CausalResampler
    from bpstream.filters._resample import antialias_sos, sosfilt_carry

    rng = np.random.default_rng(3)
    sos = antialias_sos(250.0, 125.0)
    x = np.cumsum(rng.normal(size=3000)) + 80.0
    zi = signal.sosfilt_zi(sos) * 1.7
    y, zf = sosfilt_carry(sos, x[:777], zi)
    y0, zf0 = signal.sosfilt(sos, x[:777], zi=zi)
    assert np.array_equal(y, y0) and np.array_equal(zf, zf0)
    r = CausalResampler(250.0, 125.0)
    out = np.concatenate([r.update(x[a : a + 333]) for a in range(0, x.size, 333)])
    full = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])[0]
    assert np.array_equal(out, full[::2])


def test_cached_zero_phase_filter_equals_scipy_sosfiltfilt():
    from bpstream.filters._beats import sosfiltfilt_rows

    rng = np.random.default_rng(5)
    for sos in (signal.butter(2, [8.0, 30.0], btype="bandpass", fs=125.0, output="sos"),
                signal.butter(3, 10.0, fs=125.0, output="sos")):
        for shape in ((4, 1250), (1250,), (1, 200)):
            x = rng.normal(size=shape).cumsum(axis=-1)
            assert np.array_equal(sosfiltfilt_rows(sos, x), signal.sosfiltfilt(sos, x, axis=-1))
