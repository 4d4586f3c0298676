"""Seek before resuming: a guard against a faust-streaming recovery race that skips input offsets.

After a rebalance, faust's recovery (``Recovery.on_recovery_completed`` in faust-streaming 0.15.3)
resumes the input partitions *before* it seeks them to their committed offsets, while the flow is
still running from the changelog phase. The fetcher then reads the new partitions from wherever they
stood; records of that read still being handed on after the seek move faust's read offset past the
committed offset, so the re-read from the committed offset is dropped as already seen, and the records
between were in the stream queues that ``flow_control.resume()`` clears: a run of input offsets is
never processed, and the partition's commit sticks at the hole (tests/test_kafka_failover.py: runs of
19-53 offsets per partition in 4 of 16 runs; faust-streaming issues #216 and #221 are the same family).
The order faust intends (faust-streaming PR #217) is seek first, then resume.

``install(consumer, topics)`` restores that order on the app's consumer: a resume of input partitions
is held until the next ``perform_seek`` has finished (faust calls one right after each such resume),
then applied. Changelog partitions are resumed at once, as before. ``needed()`` checks that the
installed faust still resumes before seeking; where it does not (a faust with the order fixed, or
code this guard does not know), holding a resume could wait for a seek that never comes, so the
worker does not install it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Iterable

__all__ = ["install", "needed"]


@functools.lru_cache(maxsize=1)
def needed() -> bool:
    """True when faust's recovery resumes the input partitions before it seeks them (0.15.x); read once."""
    import inspect

    try:
        from faust.tables.recovery import Recovery

        sources = [inspect.getsource(Recovery.on_recovery_completed), inspect.getsource(Recovery._resume_streams)]
    except (ImportError, AttributeError, OSError, TypeError):
        return False
    for src in sources:
        resume, seek = src.find("resume_partitions("), src.find("perform_seek()")
        if resume < 0 or seek < 0 or resume > seek:
            return False
    return True


def install(consumer: Any, input_topics: Iterable[str], release_after_s: float = 10.0) -> None:
    """Wrap ``consumer.resume_partitions`` and ``consumer.perform_seek`` (idempotent). A held resume is applied
    after the next seek, or after ``release_after_s`` if no seek has come by then (faust's recovery can return
    between the two, e.g. when the group rebalances again: the partitions must not stay paused)."""
    if getattr(consumer, "_bpstream_seek_first", False):
        return
    topics = frozenset(input_topics)
    held: set = set()
    resume, seek = consumer.resume_partitions, consumer.perform_seek

    holds = [0]  # which hold a fallback timer belongs to: an old timer never releases a newer hold

    def release(hold: int | None = None) -> None:
        if hold is not None and hold != holds[0]:
            return
        if held:
            tps = set(held)
            held.clear()
            resume(tps)

    def resume_partitions(tps: Iterable[Any]) -> None:
        tps = set(tps)
        inputs = {tp for tp in tps if tp.topic in topics}
        held.update(inputs)
        if tps - inputs:
            resume(tps - inputs)
        if inputs:  # a seek that never comes (faust's recovery returned early) must not pause them for good
            holds[0] += 1
            try:
                asyncio.get_running_loop().call_later(release_after_s, release, holds[0])
            except RuntimeError:  # not called on an event loop (faust always is): held until the next seek
                pass

    async def perform_seek() -> None:
        try:
            await seek()
        finally:
            release()

    consumer.resume_partitions = resume_partitions
    consumer.perform_seek = perform_seek
    consumer._bpstream_seek_first = True
