"""``bpstream bench filters``: cost per 10-s window of the whole filter stack, beside neurokit2.

Input: real records at their own rate (250 Hz for PhysioNet 2015), cut into 10-s windows every 2 s
before the clock starts. Timed, per record (one patient) as one batch, on one core:

1. causal anti-alias + resampling of ECG, PPG and ABP to 125 Hz (the windower's Bessel low-pass,
   batched over the windows);
2. ``InputFilter.update`` on the batch (integrity, ECG and PPG quality, running PPG template);
3. the arterial label filter: its stateless half (``measure_abp``: beat onsets and pressures, event
   detector signals, ABP and PPG spectra) on the batch, then its stateful half per window
   (``LabelFilter.update``), given the ECG heart rate the input filter found. The worker and
   ``validate`` run it the same way (``Pipeline.step_many``, ``stream/core/_batch.py``).

neurokit2's full quality path runs on a subset of the same windows at 250 Hz in the same process:
``nk.ecg_process`` (cleaning, R peaks, rate, averageQRS quality) + ``nk.ecg_quality(zhao2018)`` +
``nk.ppg_process`` (cleaning, peaks, rate, templatematch quality). Windows on which neurokit2 raises
are counted in ``neurokit2_errors`` (their time still counts).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from bpstream.stream.core import BpstreamError

__all__ = ["run_bench", "add_arguments", "DEFAULT_RECORDS"]

DEFAULT_RECORDS = ("a555l", "f362s", "b330s", "v370s", "a123l", "v222s")
WINDOW_S, HOP_S, FS_OUT = 10.0, 2.0, 125.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filters-nk-windows", type=int, default=24, help="windows timed with neurokit2 (default 24)")
    p.add_argument("--filters-repeats", type=int, default=3, help="repeats of our stack; the median is reported")


def _windows(path: Path) -> dict[str, np.ndarray] | None:
    from bpstream.stream.records import read_record

    rec = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg", "abp"))
    seg = max(rec.segments, key=lambda s: s.duration_s)
    fs_hz = float(seg.fs_hz["ecg"])
    if any(float(seg.fs_hz[r]) != fs_hz for r in ("ppg", "abp")):
        return None
    n, h = int(round(WINDOW_S * fs_hz)), int(round(HOP_S * fs_hz))
    total = len(seg.signals["ecg"])
    starts = np.arange(0, total - n + 1, h)
    if starts.size == 0:
        return None
    idx = starts[:, None] + np.arange(n)[None, :]
    out = {r: np.asarray(seg.signals[r], dtype=np.float64)[idx] for r in ("ecg", "ppg", "abp")}
    out["t_start_s"] = starts / fs_hz + seg.t_start_s
    out["fs_hz"] = np.array(fs_hz)
    return out


def resample_batch(x: np.ndarray, fs_in: float, fs_out: float = FS_OUT) -> np.ndarray:
    """The windower's causal resampler applied to whole windows at once: the same Bessel
    anti-alias low-pass (started on each window's first sample), then linear interpolation."""
    from scipy import signal

    from bpstream.filters import antialias_sos

    sos = antialias_sos(fs_in, fs_out)
    if sos is not None:
        zi = signal.sosfilt_zi(sos)[:, None, :] * x[:, 0][None, :, None]
        x, _ = signal.sosfilt(sos, x, axis=1, zi=zi)
    ratio = fs_in / fs_out
    n_out = int(round(x.shape[1] / ratio))
    pos = np.arange(n_out) * ratio
    i0 = np.floor(pos + 1e-9).astype(np.int64)
    fr = pos - i0
    if np.all(np.abs(fr) < 1e-9):
        return np.ascontiguousarray(x[:, i0])
    i1 = np.minimum(i0 + 1, x.shape[1] - 1)
    return x[:, i0] * (1.0 - fr) + x[:, i1] * fr


def _label_filter_factory():
    try:
        from bpstream.filters import LabelFilter  # type: ignore[attr-defined]
    except ImportError:
        LabelFilter = None
    if LabelFilter is not None:
        return "LabelFilter", LabelFilter
    return "abp_reference", None


def _our_stack(w: dict[str, np.ndarray]) -> tuple[float, float, float, int]:
    """(resample_s, input_s, label_s, n_usable) for one record's batch."""
    from bpstream.filters import InputFilter, Window, abp_reference, measure_abp

    fs_hz = float(w["fs_hz"])
    t0 = time.process_time()
    ecg = resample_batch(w["ecg"], fs_hz)
    ppg = resample_batch(w["ppg"], fs_hz)
    abp = resample_batch(w["abp"], fs_hz)
    t1 = time.process_time()
    q = InputFilter(fs_hz=FS_OUT).update(ecg, ppg)
    t2 = time.process_time()
    kind, label_cls = _label_filter_factory()
    lf = label_cls(fs_hz=FS_OUT) if label_cls is not None else None
    n = ecg.shape[0]
    measures = measure_abp(abp, FS_OUT, ppg) if lf is not None else [None] * n
    for i in range(n):
        ts = float(w["t_start_s"][i])
        if lf is not None:
            win = Window(t_start_s=ts, t_end_s=ts + WINDOW_S, fs_hz=FS_OUT, ecg=ecg[i], ppg=ppg[i], abp=abp[i])
            hr = q.ecg_hr_bpm[i]
            lf.update(win, ecg_hr_bpm=float(hr) if np.isfinite(hr) else None, ppg=bool(q.ppg_usable[i]),
                      measures=measures[i])
        else:
            abp_reference(abp[i], fs_hz=FS_OUT, t_s=ts + WINDOW_S)
    t3 = time.process_time()
    return t1 - t0, t2 - t1, t3 - t2, int(q.usable.sum())


def _neurokit2(w: dict[str, np.ndarray], idx: np.ndarray) -> tuple[float, int]:
    import neurokit2 as nk

    fs_hz = int(w["fs_hz"])
    errors = 0
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in idx:
            try:
                nk.ecg_process(w["ecg"][i], sampling_rate=fs_hz)
                nk.ecg_quality(w["ecg"][i], sampling_rate=fs_hz, method="zhao2018")
                nk.ppg_process(w["ppg"][i], sampling_rate=fs_hz)
            except Exception:  # neurokit2 raises on flat input, too few beats, NaN ...
                errors += 1
    return time.process_time() - t0, errors


def run_bench(args: argparse.Namespace) -> dict:
    import importlib.util

    from bpstream.stream.records import list_records

    from ._bench_replay import one_core
    from ._machine import data_dir

    if importlib.util.find_spec("neurokit2") is None:  # the comparison this bench makes
        raise BpstreamError("bpstream bench filters compares against neurokit2: pip install 'bpstream[bench]'")
    data = data_dir(args)
    names = args.records.split(",") if getattr(args, "records", None) else list(DEFAULT_RECORDS)
    batches = [b for b in (_windows(p) for p in list_records([data], names)) if b is not None]
    if not batches:
        raise BpstreamError("bench filters: no record with ECG, PPG and ABP at one rate")
    n_win = sum(b["ecg"].shape[0] for b in batches)
    repeats = max(1, int(getattr(args, "filters_repeats", 3)))
    nk_n = max(1, int(getattr(args, "filters_nk_windows", 24)))
    with one_core():
        _our_stack(batches[0])  # warm-up: filter design caches, imports
        runs = []
        for _ in range(repeats):
            parts = np.zeros(3)
            usable = 0
            for b in batches:
                r, i, lab, u = _our_stack(b)
                parts += (r, i, lab)
                usable += u
            runs.append(parts)
        parts = np.median(np.array(runs), axis=0)
        # neurokit2 on windows spread over every record
        per = max(1, nk_n // len(batches))
        nk_s, nk_err, nk_count = 0.0, 0, 0
        _neurokit2(batches[0], np.array([0]))  # warm-up (imports, numba-free but lazy modules)
        for b in batches:
            idx = np.linspace(0, b["ecg"].shape[0] - 1, per).round().astype(int)
            s, e = _neurokit2(b, idx)
            nk_s += s
            nk_err += e
            nk_count += idx.size
    ms = 1e3 * parts / n_win
    return {
        "filters": {
            "ms_per_window": round(float(ms.sum()), 4),
            "neurokit2_ms_per_window": round(1e3 * nk_s / nk_count, 2),
            "ms_per_window_resample": round(float(ms[0]), 4),
            "ms_per_window_input_quality": round(float(ms[1]), 4),
            "ms_per_window_label": round(float(ms[2]), 4),
            "label_filter": _label_filter_factory()[0],
            "windows": n_win,
            "usable_fraction": round(usable / n_win, 3),
            "neurokit2_windows": nk_count,
            "neurokit2_errors": nk_err,
            "records": [str(p.name) for p in list_records([data], names)],
            "input_hz": float(batches[0]["fs_hz"]),
            "window_s": WINDOW_S,
            "hop_s": HOP_S,
            "threads": 1,
        }
    }
