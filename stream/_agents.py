"""The worker's agent: decode, call the pure step, send. Nothing else happens here.

One agent reads waveforms and commands (one channel over both topics, concurrency 1), so every
patient's state has exactly one writer and a calibration cannot race a chunk. Messages are taken in
micro-batches (``stream.take_events``); each batch goes to a worker thread in ONE executor call that
decodes the patient states, runs ``Pipeline.step`` message by message and encodes the new states, so
torch and numpy never block the event loop. Back on the loop, the new states are written to the
table (changelog) and the outputs are sent, in message order.

Idempotency (at-least-once delivery repeats messages): the step ignores a chunk whose per-patient
sequence number is not newer than the last one applied and a command whose id it has seen; the
agent publishes that as a ``duplicate_ignored`` event and leaves the state unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from bpstream.filters import ChunkError, Reason, Windower

from ._codec import decode_command, decode_waveform, deadletter_doc, dumps, estimate_doc, event_doc
from ._errors import MessageError
from ._messages import Event, EventKind, WindowResult
from ._schemas import Limits
from ._settings import Settings
from ._state_codec import state_from_bytes, state_to_bytes
from ._step import PatientState, Pipeline

__all__ = ["Processor", "Item", "Result", "register_agents"]

log = logging.getLogger("bpstream.worker")


@dataclass
class Item:
    """One consumed message, as the agent hands it to the executor."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    state_bytes: bytes | None = None  # the table's current value for the key


@dataclass
class Result:
    """What to do on the loop for one message: a new table value and the messages to send."""

    new_state: bytes | None = None  # None: leave the table alone
    sends: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)  # (kind, key, value)


class Processor:
    """Everything the agent does between receiving bytes and sending bytes (testable without Kafka)."""

    def __init__(self, settings: Settings, pipeline: Pipeline, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.pipeline = pipeline
        self.method = pipeline.config.methods[0]
        self.limits = Limits(settings.max_chunk_bytes, settings.max_chunk_s, settings.max_fs_hz)
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._cache: dict[bytes, tuple[bytes, PatientState]] = {}
        self._decoded: dict[int, object] = {}  # id(item) -> decoded waveform, within one batch
        self._model = _model_info(self.method)

    # -- the batch (runs in a worker thread) ----------------------------------------------------------
    def process_batch(self, items: list[Item]) -> list[Result]:
        latest: dict[bytes, bytes | None] = {}  # state bytes after earlier messages of this batch
        results = []
        self._premeasure(items)
        try:
            for item in items:
                if item.key is not None and item.key in latest:
                    item.state_bytes = latest[item.key]
                result = self.process(item)
                if result.new_state is not None and item.key is not None:
                    latest[item.key] = result.new_state
                results.append(result)
        finally:
            self.pipeline.clear_premeasured()
            self._decoded.clear()
        return results

    def _premeasure(self, items: list[Item]) -> None:
        """Cut the batch's windows ahead (on copies of the windowers) and measure them in one call, so
        the input gate of every patient in the batch reads batched measures: same outputs, cheaper.
        Anything odd here is left to the normal path (it measures the window on its own)."""
        from ._premeasure import cut_ahead

        ahead = []
        for item in items:
            if item.topic != self.settings.topic_waveforms or item.key is None:
                continue
            try:
                wave = decode_waveform(item.value, self.limits)
                self._decoded[id(item)] = wave  # decoded once: _process takes it from here
                message = wave.message
                state = self._load(item.key, item.state_bytes)
            except Exception:  # noqa: BLE001 - the real pass dead-letters it with its reason
                continue
            ahead.append((item.key, None if state is None else state.windower,
                          -1 if state is None else state.last_seq, message.seq, message.chunk))
        if len(ahead) < 2:
            return
        c = self.pipeline.config
        try:
            self.pipeline.premeasure(cut_ahead(ahead, lambda: Windower(c.window_s, c.hop_s, c.fs_hz)))
        except Exception:  # noqa: BLE001 - never let the fast path cost a message
            log.exception("premeasure failed; windows are measured one by one")
            self.pipeline.clear_premeasured()

    def process(self, item: Item) -> Result:
        try:
            return self._process(item)
        except MessageError as exc:
            return self._dead(item, exc.reason, exc.detail)
        except ChunkError as exc:
            return self._dead(item, Reason.MSG_INVALID, str(exc))
        except Exception as exc:  # a worker never dies of one message
            log.exception("step failed on %s[%s]@%s", item.topic, item.partition, item.offset)
            if item.key is not None:
                self._cache.pop(item.key, None)
            return self._dead(item, Reason.MSG_STEP_FAILED, f"{type(exc).__name__}: {exc}")

    def _process(self, item: Item) -> Result:
        if item.topic == self.settings.topic_waveforms:
            wave = self._decoded.pop(id(item), None) or decode_waveform(item.value, self.limits)
            patient, message, bed, monitor = wave.patient_id, wave.message, wave.bed, wave.monitor_id
        else:
            cmd = decode_command(item.value, self.limits)
            patient, message, bed, monitor = cmd.patient_id, cmd.command, None, None
        if item.key is None or item.key.decode("utf-8", "replace") != patient:
            raise MessageError(Reason.MSG_INVALID, "message key is not the patient_id")
        state = self._load(item.key, item.state_bytes)
        if state is None and item.topic != self.settings.topic_waveforms:
            raise MessageError(Reason.MSG_UNKNOWN_PATIENT, f"{type(message).__name__.lower()} for a patient without state")
        state, outputs = self.pipeline.step(state, message)
        now = self.clock()
        result = Result()
        duplicate = False
        for out in outputs:
            if isinstance(out, WindowResult):
                doc = estimate_doc(patient, out, self.method, model=self._model, published_at_s=now,
                                   bed=bed, monitor_id=monitor)
                result.sends.append(("estimates", item.key, dumps(doc)))
                self.counts["estimates"] += 1
                self.counts[f"validity:{doc['validity']}"] += 1
            elif isinstance(out, Event):
                duplicate |= out.kind == EventKind.DUPLICATE_IGNORED
                result.sends.append(("events", item.key, dumps(event_doc(patient, out, published_at_s=now))))
                self.counts[f"event:{out.kind.value}"] += 1
        if duplicate:
            return result  # nothing was applied; the table keeps its value
        new = state_to_bytes(state)
        self._cache[item.key] = (new, state)
        result.new_state = new
        return result

    def _load(self, key: bytes, data: bytes | None) -> PatientState | None:
        if data is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[0] == data:
            return hit[1]
        state = state_from_bytes(data, self.pipeline)
        self._cache[key] = (data, state)
        return state

    def _dead(self, item: Item, reason: Reason | str, detail: str) -> Result:
        reason_text = getattr(reason, "value", reason)
        self.counts[f"deadletter:{reason_text}"] += 1
        log.warning("dead-letter %s from %s[%s]@%s: %s", reason_text, item.topic, item.partition, item.offset,
                    detail[:200])  # no patient identifiers in logs: topic/partition/offset only
        doc = deadletter_doc(reason, detail, topic=item.topic, partition=item.partition, offset=item.offset,
                             key=item.key, payload=item.value, failed_at_s=self.clock())
        return Result(sends=[("deadletter", item.key, dumps(doc))])


def _model_info(method: str) -> dict:
    from importlib import metadata

    from bpstream.models import make_estimator

    try:
        version = metadata.version("bpstream")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "unknown"
    est = make_estimator(method)
    return {"name": method, "version": getattr(est, "version", version),
            "weights_sha256": getattr(est, "weights_sha256", None)}


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
    outputs = sinks or {"estimates": topics.estimates, "events": topics.events, "deadletter": topics.deadletter}
    held = _Held(settings.command_hold_s)
    lock = asyncio.Lock()  # the agent and the hold timer never process at the same time
    current: dict[str, Any] = {}
    headers = {"bpstream-worker": _worker_id().encode()}  # which process published it (no patient data)

    async def handle(events: list[Any]) -> list[Result]:
        items = []
        for ev in events:
            _set_current_event(ev)
            msg = ev.message
            items.append(Item(msg.topic, msg.partition, msg.offset, ev.key, ev.value,
                              table.get(ev.key) if ev.key is not None else None))
        results = await asyncio.get_running_loop().run_in_executor(None, processor.process_batch, items)
        for ev, result in zip(events, results):
            _set_current_event(ev)
            if result.new_state is not None:
                table[ev.key] = result.new_state
            for kind, key, value in result.sends:
                await outputs[kind].send(key=key, value=value, headers=headers)
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

    @app.timer(interval=30.0)
    async def report_counts() -> None:
        counts = processor.counts.copy()  # the executor thread may be counting right now
        if counts:
            log.info("counts: %s", dict(sorted(counts.items())))

    patients.held = held  # for tests: release everything with ``held.release(all_=True)``
    return patients
