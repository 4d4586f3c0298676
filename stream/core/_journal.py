"""Recent windows and estimator snapshots, so a calibration that arrives late learns as if on time.

A reading is paired with a window by stream content alone (``_step``: the first window whose input
passed the filters and that ends at or after ``measured_at``, within ``pair_tolerance_s``). When the
command arrives after that window was processed, the estimators have gone on learning without it
(self-supervised steps, other labels). To give the very state an on-time arrival gives, the step keeps

- the journal: every recent window (ECG and PPG float32, exactly as processed; windows of a segment
  overlap, so each stores only the samples the previous one did not have), whether its input passed,
  and the labels learned at it (command id, label);
- snapshots: every ``snapshot_every`` windows, each estimator's bytes (``to_bytes``) and the calibration
  bookkeeping, taken after that window's predictions and before its learning; the newest two are kept,
  and the journal starts at the older one.

A late reading then rewinds to the snapshot at or before its window and replays the learning of the
journal from there with the reading added at its window. Predictions never change an estimator
(``predict_one`` is side-effect free: the step's prequential contract), so replaying the learning
calls gives the same state. A reading whose window is older than the journal is stale. Everything
here is plain data (lists, dicts, arrays, bytes, ``Reference``) for the state codec.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from bpstream.filters import Reference, Window
from bpstream.models import Estimator

__all__ = ["record", "snapshot_due", "take_snapshot", "target", "rewind", "window_of"]


def snapshot_due(state, every: int) -> bool:
    return state.n_windows % max(1, every) == 0


def take_snapshot(state) -> dict[str, Any]:
    return {"w": int(state.n_windows), "estimators": {m: e.to_bytes() for m, e in state.estimators.items()},
            "calibrations": int(state.calibrations), "last_calibration_t_s": state.last_calibration_t_s}


def record(state, window: Window, usable: bool, labels: list[tuple[str | None, Reference]], hop_n: int,
           snapshot: dict | None) -> None:
    """Add the window just processed (and the snapshot taken before its learning) to the journal."""
    if snapshot is not None:
        state.snapshots = (state.snapshots + [snapshot])[-2:]
    entry = {"w": int(state.n_windows), "t_start_s": float(window.t_start_s), "t_end_s": float(window.t_end_s),
             "segment": int(window.segment), "usable": bool(usable), "labels": list(labels), "full": True,
             "ecg": np.asarray(window.ecg, np.float32).copy(), "ppg": np.asarray(window.ppg, np.float32).copy()}
    prev = state.journal[-1] if state.journal else None
    if prev is not None and prev["segment"] == entry["segment"] \
            and round((entry["t_start_s"] - prev["t_start_s"]) * window.fs_hz) == hop_n:
        entry.update(full=False, ecg=entry["ecg"][-hop_n:].copy(), ppg=entry["ppg"][-hop_n:].copy())
    state.journal.append(entry)
    _trim(state, window.fs_hz)


def _samples(journal: list[dict], i: int) -> tuple[np.ndarray, np.ndarray]:
    """ECG and PPG of journal entry ``i``, rebuilt from the nearest full entry before it."""
    j = i
    while not journal[j]["full"]:
        j -= 1
    n = len(journal[j]["ecg"])
    ecg = np.concatenate([journal[k]["ecg"] for k in range(j, i + 1)])[-n:]
    ppg = np.concatenate([journal[k]["ppg"] for k in range(j, i + 1)])[-n:]
    return ecg, ppg


def window_of(journal: list[dict], i: int, fs_hz: float) -> Window:
    e = journal[i]
    ecg, ppg = _samples(journal, i)
    return Window(t_start_s=e["t_start_s"], t_end_s=e["t_end_s"], fs_hz=fs_hz, ecg=ecg, ppg=ppg, abp=None,
                  segment=e["segment"])


def _trim(state, fs_hz: float) -> None:
    """Drop the entries before the older snapshot (the first kept one becomes a full window)."""
    if not state.snapshots:
        return
    first_w = state.snapshots[0]["w"]
    k = 0
    while k < len(state.journal) and state.journal[k]["w"] < first_w:
        k += 1
    if k == 0:
        return
    if k < len(state.journal) and not state.journal[k]["full"]:
        ecg, ppg = _samples(state.journal, k)
        state.journal[k] = {**state.journal[k], "full": True, "ecg": ecg, "ppg": ppg}
    state.journal_floor_s = max(e["t_end_s"] for e in state.journal[:k])
    state.journal = state.journal[k:]


def target(state, t_s: float, tolerance_s: float) -> tuple[str, int | None]:
    """Where a reading measured at ``t_s`` stands against the journal: ``("pair", i)``, ``("no_window",
    i)`` (entry ``i`` is the first window past the tolerance), ``("stale", None)`` or ``("wait", None)``.
    The same decisions, window by window, as a reading that arrived on time (``_step``)."""
    if state.journal_floor_s is not None and t_s <= state.journal_floor_s:
        return "stale", None
    for i, e in enumerate(state.journal):
        if e["t_end_s"] < t_s:
            continue
        if e["usable"] and e["t_end_s"] - t_s <= tolerance_s:
            return "pair", i
        if e["t_end_s"] - t_s > tolerance_s:
            return "no_window", i
    return "wait", None


def rewind(state, i: int, command_id: str, label: Reference, fresh: Callable[[], Mapping[str, Estimator]],
           fs_hz: float) -> None:
    """Learn ``label`` at journal entry ``i`` as if it had come on time: from the snapshot at or before
    that window, replay the journal's learning with the label added; retake the later snapshots."""
    w_target = state.journal[i]["w"]
    snap = max((s for s in state.snapshots if s["w"] <= w_target), key=lambda s: s["w"])
    estimators = dict(fresh())
    for m, est in estimators.items():
        if m in snap["estimators"]:
            est.load_bytes(snap["estimators"][m])
    calibrations, last_t = snap["calibrations"], snap["last_calibration_t_s"]
    state.journal[i] = {**state.journal[i], "labels": state.journal[i]["labels"] + [(command_id, label)]}
    snapshots = [s for s in state.snapshots if s["w"] <= w_target]
    for k, e in enumerate(state.journal):
        if e["w"] < snap["w"]:
            continue
        if e["w"] > w_target and any(s["w"] == e["w"] for s in state.snapshots):
            snapshots.append({"w": e["w"], "estimators": {m: x.to_bytes() for m, x in estimators.items()},
                              "calibrations": calibrations, "last_calibration_t_s": last_t})
        window = None
        if e["labels"]:
            window = window_of(state.journal, k, fs_hz)
            for _, lab in e["labels"]:
                for est in estimators.values():
                    est.learn_one(window, lab)
                calibrations += 1
                last_t = lab.t_s if lab.t_s is not None else e["t_end_s"]
        elif e["usable"]:
            window = window_of(state.journal, k, fs_hz)
            for est in estimators.values():
                est.learn_unlabeled(window)
    state.estimators = estimators
    state.calibrations, state.last_calibration_t_s = calibrations, last_t
    state.snapshots = snapshots
