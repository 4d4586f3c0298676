"""Drive records through the pure per-patient step in-process (what ``validate`` and ``demo`` run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from bpstream.filters import ChunkError
from bpstream.models import Estimator

from ._messages import ChunkMessage, Event, Output, WindowResult
from ._records import Recording, iter_chunks, read_record
from ._report import ScoreSheet
from ._step import Pipeline, PipelineConfig

__all__ = ["RecordRun", "replay_record", "score_results", "FactoryResolver"]

# record name -> {method: factory}; lets each record be scored by a model that never saw its fold
FactoryResolver = Callable[[str], Mapping[str, Callable[[], Estimator]]]


@dataclass
class RecordRun:
    record: str
    windows: list[WindowResult]
    events: list[Event]
    bad_chunks: int = 0


def iter_outputs(pipeline: Pipeline, recording: Recording, chunk_s: float = 2.0, premeasure: bool = True) -> Iterator[Output]:
    """The step over a record's chunks. ``premeasure``: measure the record's windows in batches first
    (same outputs, several times cheaper input gate; see ``_premeasure``)."""
    chunks = list(iter_chunks(recording, chunk_s))
    if premeasure:
        from ._premeasure import premeasure_chunks

        premeasure_chunks(pipeline, chunks)
    state = None
    try:
        for seq, chunk in enumerate(chunks):
            try:
                state, outputs = pipeline.step(state, ChunkMessage(seq, chunk))
            except ChunkError:
                continue
            yield from outputs
    finally:
        pipeline.clear_premeasured()


def replay_record(path: str | Path, config: PipelineConfig, factories: Mapping[str, Callable[[], Estimator]] | None = None,
                  chunk_s: float = 2.0) -> RecordRun:
    """Replay one record through a fresh patient state; return every window result and event."""
    recording = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    pipeline = Pipeline(config, factories)
    run = RecordRun(recording.name, [], [])
    for out in iter_outputs(pipeline, recording, chunk_s):
        (run.windows if isinstance(out, WindowResult) else run.events).append(out)
    return run


def score_results(sheet: ScoreSheet, run: RecordRun) -> None:
    """Add a record's windows to a score sheet.

    Scored: every window after the first calibration whose input passed the filters and whose
    arterial reference is usable; every method is scored on that same set. Rejections are counted
    over all windows (input first: a window whose input fails is not judged on its label).
    """
    sheet.add_record(run.record)
    calibrated = False
    for w in run.windows:
        if not w.input_usable:
            for reason in w.input_reasons[:1] or ("unknown",):
                sheet.add_rejected("input", reason)
        elif w.reference is not None and not w.reference.usable:
            for reason in w.reference.reasons[:1] or ("unknown",):
                sheet.add_rejected("label", reason)
        if calibrated and w.input_usable and w.reference is not None and w.reference.usable:
            for method, est in w.estimates.items():
                sheet.add_estimate(run.record, w.t_end_s, method, est, w.reference)
        if w.labels:
            calibrated = True
