"""Bench part 2: cost per window of each stage of the loop, on real records, one core.

Stages, each timed on its own over the same windows:
- ``decode``: ``bp.waveforms.v1`` bytes -> chunk (JSON, base64, checks), per window = per chunk x
  (hop / chunk length), since one window is emitted per hop;
- ``window``: ``Windower.update`` (causal anti-alias + resampling to 125 Hz, cutting), per window;
- ``filters``: the step's gates, input quality and the arterial label filter, per window, with the input
  measures batched ahead as the replay and the worker do (``filters_one_by_one_ms``: without);
- ``infer``: the population encoder (features + CNN) in batches of 64, per window; ``infer_single``
  is the same one window at a time (what the step does today), ``head`` the per-patient TTT head;
- ``ttt_update_per_label``: ``TTTEstimator.learn_one`` per accepted label (p50 and p99), with the
  unlabeled windows between labels fed through ``learn_unlabeled`` untimed.

Times are CPU time of the calling thread (``time.thread_time``; torch and BLAS are limited to that one
thread), so other load on a shared machine inflates them little.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bpstream.filters import ChunkError, QualityThresholds, Window, Windower

from ._bench_replay import one_core
from bpstream.stream.records import Recording, iter_chunks
from bpstream.stream.core import Pipeline, PipelineConfig, measure_labels, measure_windows

__all__ = ["StageResult", "stage_costs", "collect_windows"]

# CPU time of this thread: the machine is shared, and torch/BLAS run on this thread (one_core)
_clock = time.thread_time


@dataclass
class StageResult:
    ms: dict[str, float | None]
    extras: dict[str, float | int | str | None]


def _ms_per(total_s: float, n: int) -> float | None:
    return round(1e3 * total_s / n, 4) if n else None


def collect_windows(recordings: Sequence[Recording], chunk_s: float, max_windows: int) -> tuple[list, list, float, int]:
    """Window records (timing the windower); return windows, each window's record name, window time, count."""
    windows: list[Window] = []
    names: list[str] = []
    spent = 0.0
    stride = max(1, len(recordings) // 8)  # spread over the set: 8 records or so
    for rec in list(recordings[::stride]) + [r for i, r in enumerate(recordings) if i % stride]:
        wd = Windower()
        chunks = list(iter_chunks(rec, chunk_s))
        t0 = _clock()
        before = len(windows)
        for chunk in chunks:
            try:
                windows.extend(wd.update(chunk))
            except ChunkError:
                continue
        spent += _clock() - t0
        names.extend([rec.name] * (len(windows) - before))
        if len(windows) >= max_windows:
            break
    return windows, names, spent, len(windows)


def _decode_cost(recording: Recording, chunk_s: float, n: int) -> tuple[float | None, str]:
    from ._bench_decode import _messages, decode_cost

    msgs = _messages(recording, chunk_s, n)
    return decode_cost(msgs), f"float32, {len(msgs[0])} bytes per {chunk_s:g} s chunk"


def stage_costs(recordings: Sequence[Recording], chunk_s: float = 1.0, hop_s: float = 2.0, max_windows: int = 640,
                ttt_labels: int = 200, label_every: int = 5, batch: int = 64) -> StageResult:
    """Time every stage on windows of ``recordings`` (one core)."""
    ms: dict[str, float | None] = {}
    ex: dict[str, float | int | str | None] = {"chunk_s": chunk_s, "hop_s": hop_s, "batch": batch}
    with one_core():
        per_chunk, note = _decode_cost(recordings[0], chunk_s, 300)
        ms["decode"] = None if per_chunk is None else round(1e3 * per_chunk * hop_s / chunk_s, 4)
        ex["decode_note"] = note
        windows, names, spent, n = collect_windows(recordings, chunk_s, max_windows)
        ms["window"] = _ms_per(spent, n)
        ex["windows"] = n
        # filters: the step's gates, fresh per record (one patient each) as in the step; first as the
        # replay and the worker run them (input and arterial measures batched, Pipeline.step_many), then one by one
        pipeline = Pipeline(PipelineConfig())
        basis = (pipeline.config.fs_hz, QualityThresholds())
        for batched in (True, False):
            usable: list[Window] = []
            labels = []
            gates, current = None, None
            t0 = _clock()
            inputs = measure_windows(windows, *basis) if batched else [None] * len(windows)
            arterial = measure_labels(windows) if batched else [None] * len(windows)
            for w, name, m, lm in zip(windows, names, inputs, arterial):
                if name != current:
                    gates, current = pipeline.new_state().gates, name
                q = gates.input(w, (basis, m) if batched else None)
                ref = gates.label(w, q, lm) if w.abp is not None else None
                if q.usable:
                    usable.append(w)
                    labels.append(ref if ref is not None and ref.usable else None)
            spent = _clock() - t0
            if batched:
                ms["filters"] = _ms_per(spent, len(windows))
            else:
                ex["filters_one_by_one_ms"] = _ms_per(spent, len(windows))
        ex.update(_measure_batch_costs(windows, batch))
        ex["usable_windows"] = len(usable)
        ex["labels_passed"] = sum(1 for x in labels if x is not None)
        model_windows = usable if len(usable) >= 16 else windows  # too few usable: time on all windows
        if model_windows is not usable:
            labels = [None] * len(windows)
            ex["model_windows_note"] = "fewer than 16 windows passed the input filter: model timed on all windows"
        if sum(1 for x in labels if x is not None) < 10:  # the update's cost does not depend on the label's quality
            labels = [x if x is not None else _stand_in_label(w) for x, w in zip(labels, model_windows)]
            ex["labels_note"] = "too few labels passed the filter: stand-in labels from the ABP percentiles"
        ms.update(_model_costs(model_windows, labels, batch, ttt_labels, label_every, ex))
    return StageResult(ms, ex)


def _measure_batch_costs(windows: list[Window], batch: int) -> dict:
    """The stateless part of the input filter (``measure_input``) one window at a time vs in batches:
    what micro-batching windows across patients would save (the running-template decision stays per
    patient)."""
    from bpstream.filters import DEFAULT_THRESHOLDS, measure_input

    ecg = np.stack([w.ecg for w in windows])
    ppg = np.stack([w.ppg for w in windows])
    m = min(len(windows), 128)
    t0 = _clock()
    for i in range(m):
        measure_input(ecg[i : i + 1], ppg[i : i + 1], 125.0, DEFAULT_THRESHOLDS)
    single = _ms_per(_clock() - t0, m)
    t0, n = _clock(), 0
    for a in range(0, len(windows) - batch + 1, batch):
        measure_input(ecg[a : a + batch], ppg[a : a + batch], 125.0, DEFAULT_THRESHOLDS)
        n += batch
    return {"measure_input_single_ms": single, f"measure_input_batch{batch}_ms": _ms_per(_clock() - t0, n)}


def _stand_in_label(w: Window):
    from bpstream.filters import Reference

    if w.abp is None or not np.isfinite(w.abp).all():
        return Reference(120.0, 60.0, 80.0, usable=True, t_s=w.t_end_s)
    s, d = float(np.percentile(w.abp, 95)), float(np.percentile(w.abp, 5))
    return Reference(s, d, float(np.mean(w.abp)), usable=True, t_s=w.t_end_s)


def _model_costs(windows: list[Window], labels: list, batch: int, ttt_labels: int, label_every: int, ex: dict) -> dict:
    from bpstream.models import make_estimator

    from ._bench_replay import population_or_stand_in
    from bpstream.stream.config import Settings

    pop, ex["weights"] = population_or_stand_in()
    out: dict[str, float | None] = {}
    ecg = np.stack([w.ecg for w in windows]).astype(np.float32)
    ppg = np.stack([w.ppg for w in windows]).astype(np.float32)
    reps = max(1, -(-256 // len(windows)))
    ecg, ppg = np.tile(ecg, (reps, 1)), np.tile(ppg, (reps, 1))
    pop.encode_arrays(ecg[:batch], ppg[:batch])  # warm-up
    t0, n = _clock(), 0
    for a in range(0, len(ecg) - batch + 1, batch):
        pop.encode_arrays(ecg[a : a + batch], ppg[a : a + batch])
        n += batch
    out["infer"] = _ms_per(_clock() - t0, n)
    t0, m = _clock(), min(128, len(ecg))
    for i in range(m):
        pop.encode_arrays(ecg[i : i + 1], ppg[i : i + 1])
    ex["infer_single_ms"] = _ms_per(_clock() - t0, m)
    # the TTT estimator over a stream: labels every ``label_every`` usable windows
    learner = ex["learner"] = Settings().methods[0]  # the published estimator (keys named ttt_ as before)
    est = make_estimator(learner, population=pop)
    times, head_s, head_n = [], 0.0, 0
    i = 0
    while len(times) < ttt_labels and i < 20 * len(windows):
        w = windows[i % len(windows)]
        shift = (i // len(windows)) * 1e4  # later passes are later in time
        w = Window(w.t_start_s + shift, w.t_end_s + shift, w.fs_hz, w.ecg, w.ppg, w.abp, w.segment)
        label = labels[i % len(labels)]
        i += 1
        if label is not None and i % label_every == 0:
            from dataclasses import replace

            label = replace(label, t_s=w.t_end_s)
            t0 = _clock()
            est.learn_one(w, label)
            times.append(_clock() - t0)
        else:
            if times:
                t0 = _clock()
                est.predict_one(w)
                head_s += _clock() - t0
                head_n += 1
            est.learn_unlabeled(w)
    if times:
        arr = 1e3 * np.asarray(times)
        out["ttt_update_per_label"] = round(float(np.percentile(arr, 99)), 3)
        ex["ttt_update_ms_p50"] = round(float(np.percentile(arr, 50)), 3)
        ex["ttt_update_ms_p99"] = round(float(np.percentile(arr, 99)), 3)
        ex["ttt_labels"] = len(times)
    else:
        out["ttt_update_per_label"] = None
    ex["predict_one_ttt_ms"] = _ms_per(head_s, head_n)
    return out
