"""What the worker does between receiving bytes and sending bytes, without faust (testable alone).

``Processor.process_batch`` runs in a worker thread (one executor call per micro-batch): decode each message, load
the patient's state (cached, checked against the table's bytes: ``_state_cache``), call the pure ``Pipeline.step``,
encode the new state and the output messages. Bad input is dead-lettered with its reason; a worker never dies of
one message. A state is written when it matters, not on every message (``_state_writes``)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from bpstream.filters import ChunkError, Reason

from bpstream.stream.config import Settings
from bpstream.stream.core import (DeadLetter, Event, EventKind, Flush, MessageError, PatientState, Pipeline, StateError,
                                  WindowResult, salvage_counters, state_from_bytes, state_to_bytes)
from ._codec import (DEADLETTER_KEY_MAX, deadletter_doc, decode_command, decode_waveform, dumps, estimate_doc,
                     event_doc)
from ._codec import model_info as _model_info
from ._fhir import observation
from ._logs import where
from ._schemas import Limits
from ._state_cache import StateCache
from ._state_writes import DeferredWrites, Dirty

__all__ = ["Processor", "Item", "Result", "Sink"]

log = logging.getLogger("bpstream.worker")


@dataclass
class Item:  # one consumed message, as the agent hands it to the executor
    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    state_bytes: bytes | None = None  # the table's current value for the key


class Sink(str, Enum):  # where an output of the worker goes (one output topic each)
    ESTIMATES = "estimates"
    EVENTS = "events"
    DEADLETTER = "deadletter"
    FHIR = "fhir"


@dataclass
class Result:
    """What to do on the loop for one message: a new table value and the messages to send."""

    new_state: bytes | None = None  # None: leave the table alone
    deferred: bool = False  # the message changed the patient's state, which is not written yet: keep it unacked
    sends: list[tuple[Sink, bytes | None, bytes]] = field(default_factory=list)  # (sink, key, value)


class Processor(DeferredWrites):
    """Everything the agent does between receiving bytes and sending bytes (testable without Kafka)."""

    def __init__(self, settings: Settings, pipeline: Pipeline, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.pipeline = pipeline
        self.method = pipeline.config.methods[0]
        self.limits = Limits(settings.max_chunk_bytes, settings.max_chunk_s, settings.max_fs_hz,
                             t_min_s=settings.time_min_s, max_ahead_s=settings.time_max_ahead_s)
        self.clock = clock
        self.counts: Counter[str] = Counter()  # the one count of each concept (log line and /metrics)
        self.observe_step_s: Callable[[float], None] = lambda seconds: None  # /metrics' latency histogram
        self._cache = StateCache(settings.state_cache_patients, lambda k: k in self._dirty or k in self._held)
        self._model = _model_info(self.method)
        # patients with chunks held behind a missing seq: key -> (monotonic time of their last chunk, bed, monitor)
        self._held: dict[bytes, tuple[float, str | None, str | None]] = {}
        self._dirty: dict[bytes, Dirty] = {}  # patients whose newest state is not written yet

    # -- the batch (runs in a worker thread) ----------------------------------------------------------
    def process_batch(self, items: list[Item]) -> list[Result]:
        """One result per item, in order. The batch's messages go through ``Pipeline.step_many`` (windows
        cut once and measured together); a patient's new state is encoded once, on its last message of
        the batch (the table value the earlier ones would have written is overwritten by it anyway).
        Anything unexpected in the batched pass sends the batch through again one message at a time from
        the same stored states (nothing was sent yet), so one bad message costs only itself."""
        if not items:
            return []
        t0 = time.perf_counter()
        counts: Counter[str] = Counter()
        keys = {item.key for item in items if item.key is not None}
        before = self._snapshot(keys)
        try:
            results = self._batch(items, counts)
        except Exception as exc:  # noqa: BLE001 - isolate the message at fault, below
            log.error("batched step failed (%s); the batch is stepped message by message", where(exc))
            for key in keys:
                self._forget(key, before)
            results, latest = [], {}
            for item in items:
                if item.key is not None and item.key in latest:
                    item.state_bytes = latest[item.key]
                results.append(self.process(item))
                if results[-1].new_state is not None:
                    latest[item.key] = results[-1].new_state
            return results
        self.counts.update(counts)
        share_s = (time.perf_counter() - t0) / len(items)
        for _ in items:
            self.observe_step_s(share_s)
        return results

    def process(self, item: Item) -> Result:
        """One message alone (a batch of one); any error dead-letters just this message."""
        t0 = time.perf_counter()
        counts: Counter[str] = Counter()
        before = self._snapshot({item.key})
        try:
            result = self._batch([item], counts)[0]
        except Exception as exc:  # a worker never dies of one message
            # no exception text and no traceback values: either may echo message content
            log.error("step failed on %s[%s]@%s: %s", item.topic, item.partition, item.offset, where(exc))
            if item.key is not None:
                self._forget(item.key, before)
            counts = Counter({f"in:{item.topic}": 1})
            result = self._dead(item, Reason.MSG_STEP_FAILED, f"{type(exc).__name__} in the step", counts)
        self.counts.update(counts)
        self.observe_step_s(time.perf_counter() - t0)
        return result

    def _batch(self, items: list[Item], counts: Counter) -> list[Result]:
        results: list[Result | None] = [None] * len(items)
        states: dict[bytes, PatientState | None] = {}
        unreadable: set[bytes] = set()
        steps: list[tuple[int, Any, str | None, str | None]] = []  # (item index, message, bed, monitor)
        for i, item in enumerate(items):
            counts[f"in:{item.topic}"] += 1
            try:
                message, bed, monitor = self._decode(item)
                if item.key not in states:
                    states[item.key], bad = self._load_or_reset(item.key, item.state_bytes, counts)
                    if bad:
                        unreadable.add(item.key)
                if states[item.key] is None and item.topic != self.settings.topic_waveforms:
                    raise MessageError(Reason.MSG_UNKNOWN_PATIENT,
                                       f"{type(message).__name__.lower()} for a patient without state")
            except MessageError as exc:
                results[i] = self._dead(item, exc.reason, exc.detail, counts)
                continue
            except ChunkError as exc:
                results[i] = self._dead(item, Reason.MSG_INVALID, str(exc), counts)
                continue
            if states[item.key] is None:
                states[item.key] = self.pipeline.new_state()  # what step(None, chunk) starts from
            steps.append((i, message, bed, monitor))
        calibrations = {k: s.calibrations for k, s in states.items() if s is not None}  # before the step
        outputs = self.pipeline.step_many(states, [(items[i].key, m) for i, m, _, _ in steps])
        last: dict[bytes, int] = {}  # key -> item index of its last stepped message
        changed: set[bytes] = set(unreadable)
        urgent: set[bytes] = set(unreadable)  # written now: a command, a new calibration, a reset
        changers: dict[bytes, list[int]] = {}  # key -> item indices of its messages that changed the state
        waves: dict[bytes, tuple[str | None, str | None]] = {}  # key -> (bed, monitor) of its last chunk
        for (i, _, bed, monitor), outs in zip(steps, outputs):
            item = items[i]
            results[i], applied = self._result(item, outs, bed, monitor, item.key in unreadable - last.keys(), counts)
            if applied:
                changed.add(item.key)
                changers.setdefault(item.key, []).append(i)
                if item.topic != self.settings.topic_waveforms:
                    urgent.add(item.key)
            if item.topic == self.settings.topic_waveforms:
                waves[item.key] = (bed, monitor)
            last[item.key] = i
        for key, i in last.items():
            state = states[key]
            if key in changed:
                if state.calibrations != calibrations.get(key, 0):
                    urgent.add(key)
                mine = changers.get(key, [])
                results[i].new_state = self._keep(key, state, items[i].state_bytes, [items[j] for j in mine],
                                                  key in urgent)
                for j in mine if self.deferred(key) else ():
                    results[j].deferred = True
            if not state.held:
                self._held.pop(key, None)
            elif key in waves or key not in self._held:  # (a taken-over state's first message may be a command)
                self._held[key] = (time.monotonic(), *waves.get(key, (None, None)))
        return results

    def _decode(self, item: Item) -> tuple[Any, str | None, str | None]:
        """The step message of an item and its bed and monitor; raises MessageError or ChunkError."""
        if item.topic == self.settings.topic_waveforms:
            wave = decode_waveform(item.value, self.limits, self.clock())
            patient, message, bed, monitor = wave.patient_id, wave.message, wave.bed, wave.monitor_id
        else:
            cmd = decode_command(item.value, self.limits, self.clock())
            patient, message, bed, monitor = cmd.patient_id, cmd.command, None, None
        if item.key is None or item.key.decode("utf-8", "replace") != patient:
            raise MessageError(Reason.MSG_INVALID, "message key is not the patient_id")
        self.pipeline.check(message)
        return message, bed, monitor

    def idle_held(self, idle_s: float) -> list[bytes]:
        """Patients whose chunks have been held for ``idle_s`` (wall) without a newer chunk of theirs."""
        now = time.monotonic()
        return [k for k, (t, _, _) in self._held.items() if now - t >= idle_s]

    def gap_waiting(self) -> int:
        """How many patients have chunks held behind a missing seq right now."""
        return len(self._held)

    def holds(self, key: bytes) -> bool:  # chunks held behind a missing seq
        return key in self._held

    def revoked(self, key: bytes) -> None:  # its partition went to another worker: no idle flush here
        self._held.pop(key, None)

    def flush(self, key: bytes, state_bytes: bytes | None) -> Result:
        """Apply a quiet patient's held chunks (``Flush``): the windows they complete are published."""
        _, bed, monitor = self._held.pop(key, (0.0, None, None))
        item = Item("<flush>", None, None, key, None, state_bytes)
        before = self._snapshot({key})
        try:
            state = self._load(key, state_bytes)
            if state is None or not state.held:
                return Result()
            state, outputs = self.pipeline.step(state, Flush())
            result, _ = self._result(item, outputs, bed, monitor, False, self.counts)
            result.new_state = state_to_bytes(state)
            self._cache[key] = (result.new_state, state)
            self._dirty.pop(key, None)
            return result
        except Exception as exc:  # noqa: BLE001 - the chunks stay held; the next message of the patient goes on
            log.error("flush of held chunks failed (%s)", where(exc))  # no exception text: it may echo content
            self._forget(key, before)
            self._held[key] = (time.monotonic(), bed, monitor)  # still held: the timer tries again
            return Result(new_state=self.write(key, True))  # written whole: its messages never wait on a retry

    def _result(self, item: Item, outputs: list, bed: str | None, monitor: str | None, unreadable: bool,
                counts: Counter) -> tuple[Result, bool]:
        """The sends of one message's outputs, and whether the message changed the patient's state (all
        but a repeat: a repeat leaves the table alone)."""
        patient = item.key.decode("utf-8", "replace")
        now = self.clock()
        result = Result()
        duplicate = False
        if unreadable:  # the stored state could not be read: the patient starts afresh, said as an event
            outputs.insert(0, Event(EventKind.PATIENT_RESET, None, Reason.STATE_UNREADABLE))
        for out in outputs:
            if isinstance(out, WindowResult):
                doc = estimate_doc(patient, out, self.method, model=self._model, published_at_s=now,
                                   bed=bed, monitor_id=monitor)
                result.sends.append((Sink.ESTIMATES, item.key, dumps(doc)))
                if self.settings.fhir_output:  # the same document, as a FHIR R4 Observation (pure mapping)
                    result.sends.append((Sink.FHIR, item.key, dumps(observation(doc, self.settings.fhir_patient_system))))
                counts["estimates"] += 1
                counts[f"validity:{doc['validity']}"] += 1
            elif isinstance(out, DeadLetter):  # the step's verdict on this message (e.g. msg_late)
                result.sends += self._dead(item, out.reason, out.detail, counts).sends
            elif isinstance(out, Event):
                # a repeat leaves the state as it was; "already discharged" remembers the command's id
                duplicate |= out.kind == EventKind.DUPLICATE_IGNORED and out.reason != Reason.ALREADY_DISCHARGED
                result.sends.append((Sink.EVENTS, item.key, dumps(event_doc(patient, out, published_at_s=now))))
                counts[f"event:{out.kind.value}"] += 1
        return result, not duplicate or unreadable

    def _load_or_reset(self, key: bytes, data: bytes | None, counts: Counter) -> tuple[PatientState | None, bool]:
        """The patient's state, or a fresh one (True) when the stored bytes cannot be read by this code."""
        try:
            return self._load(key, data), False
        except StateError:
            counts["state:unreadable"] += 1
            log.warning("unreadable patient state on a message; that patient is reset")
            state = self.pipeline.new_state()
            for name, value in salvage_counters(data).items():
                setattr(state, name, value)
            return state, True

    def _load(self, key: bytes, data: bytes | None) -> PatientState | None:
        hit = self._cache.get(key)
        if hit is not None and hit[0] == data:
            return hit[1]  # with a deferred write: the state in memory, newer than the table's bytes
        if key in self._dirty:  # the table moved on without us (another worker wrote): it wins
            self._dirty.pop(key)
        if data is None:
            return None
        state = state_from_bytes(data, self.pipeline)
        self._cache[key] = (data, state)
        return state

    def _dead(self, item: Item, reason: Reason | str, detail: str, counts: Counter) -> Result:
        reason_text = getattr(reason, "value", reason)
        counts[f"deadletter:{reason_text}"] += 1
        log.warning("dead-letter %s from %s[%s]@%s: %s", reason_text, item.topic, item.partition, item.offset,
                    detail[:200])  # no patient identifiers in logs: topic/partition/offset only
        doc = deadletter_doc(reason, detail, topic=item.topic, partition=item.partition, offset=item.offset,
                             key=item.key, payload=item.value, failed_at_s=self.clock())
        key = None if item.key is None else item.key[:DEADLETTER_KEY_MAX]  # a huge key must not outgrow the record
        return Result(sends=[(Sink.DEADLETTER, key, dumps(doc))])
