"""Drive records through the pure per-patient step in-process (what ``validate`` and ``demo`` run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from bpstream.models import Estimator

from bpstream.stream.core import Event, WindowResult
from bpstream.stream.records import iter_outputs, read_record
from ._report import ScoreSheet
from bpstream.stream.core import Pipeline, PipelineConfig

__all__ = ["RecordRun", "replay_record", "score_results", "FactoryResolver", "LastCalibration"]

# record name -> {method: factory}; lets each record be scored by a model that never saw its fold
FactoryResolver = Callable[[str], Mapping[str, Callable[[], Estimator]]]


@dataclass
class RecordRun:
    record: str
    windows: list[WindowResult]
    events: list[Event]


def replay_record(path: str | Path, config: PipelineConfig, factories: Mapping[str, Callable[[], Estimator]] | None = None,
                  chunk_s: float = 2.0) -> RecordRun:
    """Replay one record through a fresh patient state; return every window result and event."""
    recording = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    pipeline = Pipeline(config, factories)
    run = RecordRun(recording.name, [], [])
    for out in iter_outputs(pipeline, recording, chunk_s):
        if isinstance(out, WindowResult):
            run.windows.append(out)
        elif isinstance(out, Event):
            run.events.append(out)
    return run


def score_results(sheet: ScoreSheet, run: RecordRun) -> None:
    """Add a record's windows to a score sheet.

    Scored: every window after the first calibration whose input passed the filters and whose
    arterial reference is usable; every method is scored on that same set. Rejections are counted
    over all windows (input first: a window whose input fails is not judged on its label). Each row
    carries the last calibration accepted before its estimate (a label learned at a window counts
    from the next window on: the estimate was made first), per quantity.
    """
    sheet.add_record(run.record)
    calibration = LastCalibration()
    for w in run.windows:
        if not w.input_usable:
            for reason in w.input_reasons[:1] or ("unknown",):
                sheet.add_rejected("input", reason)
        elif w.reference is not None and not w.reference.usable:
            for reason in w.reference.reasons[:1] or ("unknown",):
                sheet.add_rejected("label", reason)
        if calibration.count and w.input_usable and w.reference is not None and w.reference.usable:
            for method, est in w.estimates.items():
                sheet.add_estimate(run.record, w.t_end_s, method, est, w.reference, calibration,
                                   w.calibration_age_s)
            sheet.add_flag(run.record, w.t_end_s, bool(getattr(w, "calibration_suggested", False)),
                           calibration, w.reference)
        for label in w.labels:
            calibration.update(label)


@dataclass
class LastCalibration:
    """The newest accepted calibration value of each quantity (a quantity a label lacks keeps its value)."""

    sbp_mmhg: float | None = None
    dbp_mmhg: float | None = None
    map_mmhg: float | None = None
    count: int = 0

    def update(self, label) -> None:
        for name in ("sbp_mmhg", "dbp_mmhg", "map_mmhg"):
            v = getattr(label, name, None)
            if v is not None:
                setattr(self, name, float(v))
        self.count += 1
