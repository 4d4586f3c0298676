"""The seek-before-resume guard (stream/kafka/_seek_first.py) on a consumer that records the order of calls.

The race it closes needs a broker and a rebalance (tests/test_kafka_failover.py); here: input
partitions are resumed only once the seek that follows has finished, other partitions at once.
"""

from __future__ import annotations

import asyncio
from collections import namedtuple

from bpstream.stream.kafka._seek_first import install, needed

TP = namedtuple("TP", "topic partition")
INPUTS = ("w.bp.waveforms.v1", "w.bp.commands.v1")


class RecordingConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.active: set = set()

    def resume_partitions(self, tps) -> None:
        self.calls.append(("resume", frozenset(tps)))
        self.active |= set(tps)

    async def perform_seek(self) -> None:
        self.calls.append(("seek start", frozenset(self.active)))
        await asyncio.sleep(0)
        self.calls.append(("seek end", frozenset(self.active)))


def test_input_partitions_resume_only_after_the_seek():
    c = RecordingConsumer()
    install(c, INPUTS)
    install(c, INPUTS)  # idempotent: one wrapper, not two
    wave, cmd, leader = TP(INPUTS[0], 1), TP(INPUTS[1], 1), TP("app-__assignor-__leader", 0)
    changelog = TP("app-patients-changelog", 1)

    c.resume_partitions({changelog})
    assert c.calls == [("resume", frozenset({changelog}))]  # changelogs: at once

    c.resume_partitions({wave, cmd, leader})  # what recovery does just before it seeks
    assert c.calls[-1] == ("resume", frozenset({leader}))
    assert wave not in c.active and cmd not in c.active

    asyncio.run(c.perform_seek())
    assert [k for k, _ in c.calls[-3:]] == ["seek start", "seek end", "resume"]
    assert wave not in c.calls[-2][1]  # not fetching while the seek runs
    assert c.calls[-1][1] == frozenset({wave, cmd})
    assert {wave, cmd} <= c.active

    n = len(c.calls)
    asyncio.run(c.perform_seek())  # nothing held: a plain seek
    assert [k for k, _ in c.calls[n:]] == ["seek start", "seek end"]


def test_held_partitions_are_resumed_even_when_the_seek_fails():
    c = RecordingConsumer()

    async def failing_seek() -> None:
        raise TimeoutError("broker gone")

    c.perform_seek = failing_seek
    install(c, INPUTS)
    wave = TP(INPUTS[0], 2)
    c.resume_partitions({wave})
    try:
        asyncio.run(c.perform_seek())
    except TimeoutError:
        pass
    else:
        raise AssertionError("the seek's error must propagate")
    assert wave in c.active


def test_the_installed_faust_still_resumes_before_seeking():
    """Canary: the guard is only installed while faust has the order it corrects. If this fails after a
    faust-streaming upgrade, read Recovery.on_recovery_completed / _resume_streams again: if the new faust
    seeks first, the guard is no longer needed (and is not installed); update this test and the README."""
    assert needed()


def test_the_worker_app_installs_the_guard_on_assignment():
    from bpstream.stream.config._settings import Settings
    from bpstream.stream.kafka.app import create_app

    service = create_app(Settings())
    signal = service.app.on_partitions_assigned
    names = [getattr(r, "__name__", "") for r in signal.iter_receivers(service.app)]
    assert "_seek_before_resume" in names


def test_a_held_resume_is_applied_when_no_seek_follows():
    """faust's recovery can return between its resume and its seek (the group rebalanced again): the held
    input partitions are resumed after the bound instead of staying paused for good."""
    c = RecordingConsumer()
    install(c, INPUTS, release_after_s=0.05)
    wave = TP(INPUTS[0], 3)

    async def recovery_that_returns_early() -> bool:
        c.resume_partitions({wave})
        held_at_once = wave not in c.active
        await asyncio.sleep(0.2)  # no perform_seek
        return held_at_once

    assert asyncio.run(recovery_that_returns_early())
    assert wave in c.active and c.calls[-1] == ("resume", frozenset({wave}))
