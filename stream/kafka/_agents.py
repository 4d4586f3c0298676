"""The worker's agent: decode, call the pure step, send. Nothing else happens here.

One agent reads waveforms and commands (one channel over both topics, concurrency 1), so every
patient's state has exactly one writer and a calibration cannot race a chunk. Messages are taken in
micro-batches (``stream.take_events``); each batch goes to a worker thread in ONE executor call that
decodes the patient states, runs ``Pipeline.step_many`` over the batch (windows cut once, measured
together) and encodes each patient's new state once, so torch and numpy never block the event loop.
Back on the loop, the outputs are sent and the new states written to the table (changelog), in
message order (a patient's state on its last message of the batch).

State written when it matters (``Processor``: every ``state_every_chunks`` changes, at once for commands
and new calibrations): a message whose change is not written yet stays unacknowledged (``incref``) until
its patient's state is, so the committed input offsets never pass what the changelog covers. A timer writes
states whose oldest unwritten change is ``state_max_age_s`` old, and every unwritten state while the group
rebalances (faust waits for unacknowledged messages before it gives partitions up, and commits then).

Idempotency (at-least-once delivery repeats messages): the step ignores a chunk whose per-patient
sequence number is not newer than the last one applied and a command whose id it has seen; the
agent publishes that as a ``duplicate_ignored`` event and leaves the state unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from ._processor import Item, Processor, Result, Sink

__all__ = ["Processor", "Item", "Result", "Sink", "register_agents"]

log = logging.getLogger("bpstream.worker")


def _worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _set_current_event(event: Any) -> None:
    """Point faust's current-event context at ``event`` before touching the table.

    Tables pick the changelog partition (and the RocksDB partition store) from the current event;
    inside ``take_events`` batches that context is not set for us, and faust has no public setter.
    """
    from faust.streams import _current_event

    _current_event.set(weakref.ref(event))


class _Held:
    """Commands waiting for their partition's waveforms to catch up (event-time merge of two topics)."""

    def __init__(self, hold_s: float):
        self.hold_s = hold_s
        self.events: list[tuple[float, Any]] = []  # (wall deadline, event)

    def add(self, event: Any) -> None:
        event.message.incref()  # keeps its offset uncommitted until we ack it after processing
        self.events.append((time.monotonic() + self.hold_s, event))

    def release(self, partition: int | None = None, timestamp: float | None = None, *, expired: bool = False,
                all_: bool = False) -> list[Any]:
        now = time.monotonic()
        out, keep = [], []
        for deadline, ev in self.events:
            m = ev.message
            due = all_ or (expired and deadline <= now) or (
                partition is not None and m.partition == partition and (m.timestamp or 0.0) <= (timestamp or 0.0))
            (out if due else keep).append((deadline, ev))
        self.events = keep
        return [ev for _, ev in out]


def register_agents(app: Any, topics: Any, table: Any, processor: Processor, sinks: Any = None) -> Any:
    """Define the agent; ``sinks`` (name -> object with ``async send(key=, value=)``) replaces the output
    topics in unit tests.

    Waveforms and commands come from two topics whose relative order Kafka does not keep. A command
    is therefore held until a waveform of its partition published after it arrives (Kafka record
    timestamps), or for at most ``command_hold_s``; it is then processed before that waveform. So a
    command meets the stream where its sender put it: a replay's calibration lands on the window
    ``validate`` puts it on, and a command sent right after a patient's first chunk is not mistaken
    for one about an unknown patient. Held commands stay uncommitted until processed.
    """
    settings = processor.settings
    outputs = sinks or {Sink.ESTIMATES: topics.estimates, Sink.EVENTS: topics.events,
                        Sink.DEADLETTER: topics.deadletter, Sink.FHIR: topics.fhir}
    held = _Held(settings.command_hold_s)
    lock = asyncio.Lock()  # the agent and the hold timer never process at the same time
    current: dict[str, Any] = {}
    headers = {"bpstream-worker": _worker_id().encode()}  # which process published it (no patient data)

    last_chunk: dict[bytes, Any] = {}  # newest event of each patient holding chunks (a flush's table context)
    pending: dict[bytes, list[Any]] = {}  # patient -> its messages whose change is not written yet (unacked)

    async def written(key: bytes) -> None:
        """The patient's state was just written (always whole): its pending messages may be committed."""
        await ack(pending.pop(key, []))

    async def settle() -> None:
        """Acknowledge the pending messages of patients the processor no longer defers without a write of ours
        (the table moved on, a rebuild failed): a message left unacknowledged would hold its partition's
        commit, and faust's wait at the next rebalance, forever."""
        for key in [k for k in pending if not processor.deferred(k)]:
            await written(key)

    async def handle(events: list[Any]) -> list[Result]:
        items = []
        for ev in events:
            _set_current_event(ev)
            msg = ev.message
            items.append(Item(msg.topic, msg.partition, msg.offset, ev.key, ev.value,
                              table.get(ev.key) if ev.key is not None else None))
        results = await asyncio.get_running_loop().run_in_executor(None, processor.process_batch, items)
        covered = []
        for ev, result in zip(events, results):
            if ev.key is not None:  # kept only while the patient holds chunks (a reset or discharge ends that)
                last_chunk.pop(ev.key, None)
                if processor.holds(ev.key):
                    last_chunk[ev.key] = ev
            _set_current_event(ev)
            if result.new_state is not None:
                table[ev.key] = result.new_state
                covered.append(ev.key)
            if result.deferred:
                ev.message.incref()  # uncommitted until the patient's state is written (``written``)
                pending.setdefault(ev.key, []).append(ev)
            for kind, key, value in result.sends:
                await outputs[kind].send(key=key, value=value, headers=headers)
        for key in covered:
            await written(key)
        await settle()
        return results

    async def ack(events: list[Any]) -> None:
        stream = current.get("stream")
        for ev in events:
            if stream is not None:
                await stream.ack(ev)

    from mode import CrashingSupervisor

    # one bad message never crashes the agent (it is dead-lettered); anything that still does is a
    # fault of the worker itself: exit non-zero so the service manager restarts it, never idle on
    @app.agent(topics.inputs, name="bpstream.patients", concurrency=1, supervisor_strategy=CrashingSupervisor)
    async def patients(stream: Any) -> Any:
        current["stream"] = stream
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            async with lock:
                ordered, released = [], held.release(expired=True)
                ordered += released
                for ev in events:
                    if ev.message.topic == settings.topic_commands:
                        held.add(ev)
                        continue
                    now_due = held.release(ev.message.partition, ev.message.timestamp)
                    released += now_due
                    ordered += now_due + [ev]
                results = await handle(ordered) if ordered else []
                await ack(released)
                if getattr(app, "should_stop", False):  # a batch taken while the worker stops: settle it now
                    await drain_for_stop()
            for result in results:
                yield result
            for ev in events:
                if ev.message.topic == settings.topic_commands:
                    yield None  # held: test_context's put() waits for one value per message

    @app.timer(interval=max(0.1, settings.command_hold_s / 4))
    async def release_held() -> None:
        async with lock:
            due = held.release(expired=True)
            if due:
                await handle(due)
                await ack(due)
            # a patient whose stream went quiet with chunks held behind a missing seq: apply them now
            for key in processor.idle_held(settings.command_hold_s):
                ev = last_chunk.pop(key, None)
                if ev is None:
                    continue
                _set_current_event(ev)
                result = await asyncio.get_running_loop().run_in_executor(None, processor.flush, key, table.get(key))
                _set_current_event(ev)
                if result.new_state is not None:  # (after a failed flush: the state whole, its chunks still held)
                    table[key] = result.new_state
                    await written(key)
                if processor.holds(key):  # the flush failed: the chunks stay held, the timer tries again
                    last_chunk[key] = ev
                for kind, k, value in result.sends:
                    await outputs[kind].send(key=k, value=value, headers=headers)

    async def write_deferred() -> None:
        """States whose oldest unwritten change is ``state_max_age_s`` old; all of them during a rebalance."""
        async with lock:
            await write_locked(bool(getattr(app, "rebalancing", False)))

    async def write_locked(everything: bool) -> None:
        """``everything``: every deferred state, whole (held chunks included), so that no message stays
        unacknowledged (a rebalance, or the worker's stop: faust then waits for them without a timeout). The
        caller holds the lock."""
        keys = processor.stale(0.0 if everything else settings.state_max_age_s)
        if keys:
            loop = asyncio.get_running_loop()
            states = await loop.run_in_executor(None, lambda: [(k, processor.write(k, everything)) for k in keys])
            for key, new in states:
                evs = pending.get(key)
                if new is None or not evs:
                    continue
                _set_current_event(evs[-1])  # the table writes to that message's changelog partition
                table[key] = new
                await written(key)
        await settle()

    async def drain_for_stop() -> None:
        """The worker stops (its timers have): process the commands still held, then write every deferred
        state whole, so that faust's wait for unacknowledged messages ends (the caller holds the lock)."""
        due = held.release(all_=True)
        if due:
            await handle(due)
            await ack(due)
        await write_locked(True)

    async def before_stop() -> None:
        async with lock:
            await drain_for_stop()

    # even at K = 1 a patient holding chunks behind a missing seq is deferred (_state_writes): written at a rebalance
    app.timer(interval=max(0.1, min(1.0, settings.state_max_age_s / 2)))(write_deferred)
    app.bpstream_before_stop = before_stop  # called by the app's on_stop (app.py), when the timers have stopped

    @app.on_partitions_assigned.connect
    async def _forget_moved(sender: Any, assigned: Any = None, **kwargs: Any) -> None:
        """After a rebalance, a patient whose partition went to another worker is not flushed here any more (its
        new owner holds its chunks: written whole by the rebalance). Under the lock: a flush running now (its
        patient out of ``last_chunk`` meanwhile) ends first."""
        mine = {tp.partition for tp in assigned or () if tp.topic in (settings.topic_waveforms, settings.topic_commands)}
        async with lock:
            for key in [k for k, ev in last_chunk.items() if ev.message.partition not in mine]:
                last_chunk.pop(key, None)
                processor.revoked(key)

    @app.timer(interval=30.0)
    async def report_counts() -> None:
        counts = processor.counts.copy()  # the executor thread may be counting right now
        if counts:
            log.info("counts: %s", dict(sorted(counts.items())))

    patients.held = held  # for tests: release everything with ``held.release(all_=True)``
    return patients
