"""Batching for the step: ``Pipeline.step_many`` cuts a batch's windows once, measures them together,
then decides them patient by patient.

The input filter's measurements (``measure_input``: integrity, QRS detectors, bSQI, PPG SQIs, beat
templates) and the label filter's stateless half (``measure_abp``) are vectorized over windows and
cost several times less per window in batches of 64 than one at a time; only the decisions after them
are per patient (running template, amplitude, beat buffer). So a run of chunk messages (the worker's
micro-batch across patients, or a block of a record in ``validate``) goes in three passes:

1. in message order, each chunk is put in its patient's order (``_order.admit``) and cut by the
   patient's own windower (the windows are cut once, on the real state);
2. every window of the run is measured in batches (this module), and each patient's windows of the run go
   through its input gate as a batch, in its stream order (the gate's state depends on nothing else);
3. in message order, each window goes through the gates (with its measures), the estimators and the
   calibration logic of its patient.

Pass 3 touches only the patient whose window it is, in that patient's order, and a window's measures do
not depend on the other windows of its batch, so the outputs are exactly those of ``Pipeline.step``
message by message (tests/test_step_many.py). Commands (calibrate, reset, discharge) and flushes read
what pass 3 leaves, so each one ends a run and is stepped alone.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Hashable, MutableMapping, Sequence

import numpy as np

from bpstream.filters import QualityThresholds, Window

from ._gates import LabelMode
from ._messages import ChunkMessage, Message, Output

__all__ = ["measure_windows", "measure_labels", "take_row", "take_rows", "step_many"]

BATCH = 64  # windows per vectorized call (the measured knee of the cost per window)


@functools.lru_cache(maxsize=None)
def _field_names(tp: type) -> tuple[str, ...] | None:
    """The field names of a dataclass type, None for other types (looked up once per type)."""
    return tuple(f.name for f in dataclasses.fields(tp)) if dataclasses.is_dataclass(tp) else None


def take_row(obj, i: int, n: int):
    """Window ``i`` of a batch result (dataclasses of per-window arrays), as a batch of one."""
    return take_rows(obj, slice(i, i + 1), n)


def take_rows(obj, rows: np.ndarray | slice, n: int):
    """Windows ``rows`` (ascending indices, or a slice) of a batch result of ``n`` windows, as a batch of them."""
    if isinstance(obj, np.ndarray):
        return obj[rows] if obj.ndim >= 1 and obj.shape[0] == n else obj
    names = _field_names(type(obj))
    if names is not None:
        return type(obj)(**{name: take_rows(getattr(obj, name), rows, n) for name in names})
    return obj


def _measure_parts(windows: Sequence[Window], fs_hz: float, thresholds: QualityThresholds,
                   batch: int = BATCH) -> list[tuple[list[int], Any]]:
    """``(window indices, their InputMeasures as one batch)`` per batch of windows of one shape."""
    from bpstream.filters import measure_input

    parts = []
    for a in range(0, len(windows), batch):
        by_shape: dict[tuple, list[int]] = {}
        for i in range(a, min(a + batch, len(windows))):
            by_shape.setdefault((np.shape(windows[i].ecg), np.shape(windows[i].ppg)), []).append(i)
        for part in by_shape.values():
            parts.append((part, measure_input(np.stack([windows[i].ecg for i in part]),
                                              np.stack([windows[i].ppg for i in part]), fs_hz, thresholds)))
    return parts


def measure_windows(windows: Sequence[Window], fs_hz: float, thresholds: QualityThresholds,
                    batch: int = BATCH) -> list:
    """The input measures of each window alone (``InputMeasures``), measured in batches of windows of
    one shape."""
    out: list = [None] * len(windows)
    for part, m in _measure_parts(windows, fs_hz, thresholds, batch):
        for j, i in enumerate(part):
            out[i] = take_row(m, j, len(part))
    return out


def _input_verdicts(cut: list, windows: Sequence[Window], basis: tuple) -> list:
    """Each window's input verdict. A patient's windows of the run go through its input gate in stream order
    as batches (consecutive windows measured in one part), before pass 3: the gate's state is touched by
    nothing else, and a batch gives the verdicts the windows give one by one (tests/test_step_many.py)."""
    parts = _measure_parts(windows, *basis)
    where = {i: (p, j) for p, (idx, _) in enumerate(parts) for j, i in enumerate(idx)}
    mine: dict[int, tuple[Any, list[int]]] = {}  # id(state) -> (state, its window indices in order)
    k = 0
    for _, state, ws in cut:
        ks = mine.setdefault(id(state), (state, []))[1]
        ks.extend(range(k, k + len(ws)))
        k += len(ws)
    out: list = [None] * len(windows)
    for state, ks in mine.values():
        a = 0
        while a < len(ks):
            p, b = where[ks[a]][0], a
            while b < len(ks) and where[ks[b]][0] == p:
                b += 1
            idx, m = parts[p]
            rows = take_rows(m, np.array([where[x][1] for x in ks[a:b]]), len(idx))
            for x, v in zip(ks[a:b], state.gates.inputs([windows[x] for x in ks[a:b]], (basis, rows))):
                out[x] = v
            a = b
    return out


def measure_labels(windows: Sequence[Window], batch: int = BATCH) -> list:
    """``(fs_hz, AbpMeasures)`` of each window with an arterial waveform (the stateless half of the label
    filter, ``bpstream.filters.measure_abp``), batched by rate and shape; None for the others."""
    from bpstream.filters import measure_abp

    groups: dict[tuple, list[int]] = {}
    for i, w in enumerate(windows):
        if w.abp is None or not (w.fs_hz and np.isfinite(w.fs_hz)):
            continue
        ppg_ok = w.ppg is not None and np.shape(w.ppg) == np.shape(w.abp)
        groups.setdefault((float(w.fs_hz), np.shape(w.abp), ppg_ok), []).append(i)
    out: list = [None] * len(windows)
    for (fs_hz, _, ppg_ok), idx in groups.items():
        for a in range(0, len(idx), batch):
            part = idx[a : a + batch]
            abp = np.stack([np.asarray(windows[i].abp, dtype=np.float64) for i in part])
            ppg = np.stack([np.asarray(windows[i].ppg, dtype=np.float64) for i in part]) if ppg_ok else None
            for i, m in zip(part, measure_abp(abp, fs_hz, ppg)):
                if m is not None:
                    out[i] = (fs_hz, m)
    return out


def step_many(pipeline: Any, states: MutableMapping[Hashable, Any],
              messages: Sequence[tuple[Hashable, Message]]) -> list[list[Output]]:
    """See ``Pipeline.step_many`` (``pipeline``: a Pipeline; ``states``: PatientState or None by key;
    typed loosely so that this module needs nothing from ``_step``)."""
    results: list[list[Output]] = [[] for _ in messages]
    i = 0
    while i < len(messages):
        j = i
        while j < len(messages) and isinstance(messages[j][1], ChunkMessage):
            j += 1
        if j == i:  # a command or a flush: alone, on what the run before it left
            key, message = messages[i]
            states[key], results[i] = pipeline.step(states.get(key), message)
            i += 1
            continue
        _run(pipeline, states, messages, range(i, j), results)
        i = j
    return results


def _run(pipeline: Any, states, messages, span: range, results: list[list[Output]]) -> None:
    """A run of chunk messages: cut (pass 1), measure (pass 2), decide (pass 3)."""
    c = pipeline.config
    for i in span:  # refuse before anything changes, as the step does
        pipeline.check(messages[i][1])
    cut: list[tuple[int, Any, list[Window]]] = []
    for i in span:
        key, message = messages[i]
        state = states.get(key)
        if state is None:
            state = states[key] = pipeline.new_state()
        results[i], windows = pipeline.cut(state, message)
        cut.append((i, state, windows))
    windows = [w for _, _, ws in cut for w in ws]
    if not windows:
        return
    basis = (c.fs_hz, QualityThresholds())  # what every patient's InputFilter measures with
    verdicts = _input_verdicts(cut, windows, basis)
    labels = measure_labels(windows) if LabelMode(c.label_filter) is LabelMode.FULL else [None] * len(windows)
    k = 0
    for i, state, ws in cut:
        for w in ws:
            results[i].extend(pipeline.decide(state, w, labels=labels[k], verdict=verdicts[k]))
            k += 1
