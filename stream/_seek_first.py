"""Seek before resuming: a guard against a faust-streaming recovery race that skips input offsets.

After a rebalance, faust's recovery (``Recovery.on_recovery_completed`` in faust-streaming 0.15.3)
resumes the input partitions *before* it seeks them to their committed offsets, while the flow is
still running from the changelog phase. The fetcher then reads the new partitions from wherever they
stood; records of that read still being handed on after the seek move faust's read offset past the
committed offset, so the re-read from the committed offset is dropped as already seen, and the records
between were in the stream queues that ``flow_control.resume()`` clears: a run of input offsets is
never processed (tests/test_kafka_failover.py saw 20 chunks per partition lost in about one run in
four, faust-streaming issues #216 and #221 describe the same family). The order faust intends
(faust-streaming PR #217) is seek first, then resume.

``install(app, topics)`` restores that order on the app's consumer: a resume of input partitions is
held until the next ``perform_seek`` has finished (faust calls one right after each such resume), then
applied. Changelog partitions are resumed at once, as before.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["install"]


def install(consumer: Any, input_topics: Iterable[str]) -> None:
    """Wrap ``consumer.resume_partitions`` and ``consumer.perform_seek`` (idempotent)."""
    if getattr(consumer, "_bpstream_seek_first", False):
        return
    topics = frozenset(input_topics)
    held: set = set()
    resume, seek = consumer.resume_partitions, consumer.perform_seek

    def resume_partitions(tps: Iterable[Any]) -> None:
        tps = set(tps)
        inputs = {tp for tp in tps if tp.topic in topics}
        held.update(inputs)
        if tps - inputs:
            resume(tps - inputs)

    async def perform_seek() -> None:
        try:
            await seek()
        finally:
            if held:
                tps = set(held)
                held.clear()
                resume(tps)

    consumer.resume_partitions = resume_partitions
    consumer.perform_seek = perform_seek
    consumer._bpstream_seek_first = True
