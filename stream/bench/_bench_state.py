"""Bench: the largest patient state a worker writes (its table value), measured after every message, not only
at the end of a record: in order, and with one chunk lost, so that the reorder buffer fills with the chunks
held behind the gap until it gives the gap up. A worker does not write a state while it holds chunks (they stay
unacknowledged input, replayed after a failover; kafka/_state_writes), unless a command or new calibration
comes, or the group rebalances, or the worker stops: the largest such state, held chunks included, is reported
beside. Also the time one state encoding takes (the worker encodes a patient's state once per batch it appears
in)."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from bpstream.stream.core import Pipeline, PipelineConfig, Schedule, state_to_bytes
from bpstream.stream.records import Recording, record_messages

__all__ = ["state_peaks"]


def state_peaks(recordings: Sequence[Recording], methods: Sequence[str], calibration: str = "once",
                factories=None, chunk_s: float = 1.0, lose_at_s: float = 60.0) -> dict:
    """Max serialized state over every step of each record, in order and with the chunk at ``lose_at_s``
    never sent; ``chunk_s``: the service's 1-s chunks. Returns bytes and the median encoding time (ms)."""
    config = PipelineConfig(methods=tuple(methods), arterial_schedule=Schedule.parse(calibration))
    peaks = {"in_order": 0, "one_chunk_lost": 0, "held": 0}
    encode_ms: list[float] = []
    for rec in recordings:
        messages = record_messages(Pipeline(config, factories or {}), rec, chunk_s)
        i = next((k for k, m in enumerate(messages) if m.chunk.t_start_s >= lose_at_s), len(messages))
        for case, sent in (("in_order", messages), ("one_chunk_lost", messages[:i] + messages[i + 1:])):
            pipeline = Pipeline(config, factories or {})
            state = None
            for message in sent:
                calibrations = state.calibrations if state is not None else 0
                state, _ = pipeline.step(state, message)
                t0 = time.perf_counter()
                n = len(state_to_bytes(state))
                encode_ms.append(1e3 * (time.perf_counter() - t0))
                if not state.held or state.calibrations != calibrations:  # written after this message
                    peaks[case] = max(peaks[case], n)
                else:  # written only if a command comes, or at a rebalance or stop
                    peaks["held"] = max(peaks["held"], n)
    return {"records": len(recordings), "chunk_s": chunk_s, "lost_chunk_at_s": lose_at_s,
            "max_bytes_in_order": peaks["in_order"], "max_bytes_one_chunk_lost": peaks["one_chunk_lost"],
            "max_bytes_with_chunks_held": peaks["held"],
            "encode_ms_median": round(float(np.median(encode_ms)), 4) if encode_ms else None}
