"""What the worker does between receiving bytes and sending bytes, without faust (testable alone).

``Processor.process_batch`` runs in a worker thread (one executor call per micro-batch): decode each
message, load the patient's state (cached, checked against the table's bytes), call the pure
``Pipeline.step``, encode the new state and the output messages. Bad input is dead-lettered with
its reason; a worker never dies of one message.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from bpstream.filters import ChunkError, Reason, Windower

from ._codec import decode_command, decode_waveform, deadletter_doc, dumps, estimate_doc, event_doc
from bpstream.stream.core import MessageError
from ._fhir import observation
from bpstream.stream.core import DeadLetter, Event, EventKind, Flush, WindowResult
from ._schemas import Limits
from bpstream.stream.config import Settings
from bpstream.stream.core import StateError, salvage_counters, state_from_bytes, state_to_bytes
from bpstream.stream.core import PatientState, Pipeline

__all__ = ["Processor", "Item", "Result"]

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
        self.limits = Limits(settings.max_chunk_bytes, settings.max_chunk_s, settings.max_fs_hz,
                             t_min_s=settings.time_min_s, max_ahead_s=settings.time_max_ahead_s)
        self.clock = clock
        self.counts: Counter[str] = Counter()  # the one count of each concept (log line and /metrics)
        self.observe_step_s: Callable[[float], None] = lambda seconds: None  # /metrics' latency histogram
        self._cache: dict[bytes, tuple[bytes, PatientState]] = {}
        self._decoded: dict[int, object] = {}  # id(item) -> decoded waveform, within one batch
        self._model = _model_info(self.method)
        # patients with chunks held behind a missing seq: key -> (monotonic time of their last chunk, bed, monitor)
        self._held: dict[bytes, tuple[float, str | None, str | None]] = {}

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
        from bpstream.stream.core import cut_ahead

        ahead = []
        for item in items:
            if item.topic != self.settings.topic_waveforms or item.key is None:
                continue
            try:
                wave = decode_waveform(item.value, self.limits, self.clock())
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
        except Exception as exc:  # noqa: BLE001 - never let the fast path cost a message
            log.error("premeasure failed (%s); windows are measured one by one", _where(exc))
            self.pipeline.clear_premeasured()

    def process(self, item: Item) -> Result:
        self.counts[f"in:{item.topic}"] += 1
        t0 = time.perf_counter()
        try:
            return self._process(item)
        except MessageError as exc:
            return self._dead(item, exc.reason, exc.detail)
        except ChunkError as exc:
            return self._dead(item, Reason.MSG_INVALID, str(exc))
        except Exception as exc:  # a worker never dies of one message
            # no exception text and no traceback values: either may echo message content
            log.error("step failed on %s[%s]@%s: %s", item.topic, item.partition, item.offset, _where(exc))
            if item.key is not None:
                self._cache.pop(item.key, None)
            return self._dead(item, Reason.MSG_STEP_FAILED, f"{type(exc).__name__} in the step")
        finally:
            self.observe_step_s(time.perf_counter() - t0)

    def _process(self, item: Item) -> Result:
        if item.topic == self.settings.topic_waveforms:
            wave = self._decoded.pop(id(item), None) or decode_waveform(item.value, self.limits, self.clock())
            patient, message, bed, monitor = wave.patient_id, wave.message, wave.bed, wave.monitor_id
        else:
            cmd = decode_command(item.value, self.limits, self.clock())
            patient, message, bed, monitor = cmd.patient_id, cmd.command, None, None
        if item.key is None or item.key.decode("utf-8", "replace") != patient:
            raise MessageError(Reason.MSG_INVALID, "message key is not the patient_id")
        state, unreadable = self._load_or_reset(item.key, item.state_bytes)
        if state is None and item.topic != self.settings.topic_waveforms:
            raise MessageError(Reason.MSG_UNKNOWN_PATIENT, f"{type(message).__name__.lower()} for a patient without state")
        state, outputs = self.pipeline.step(state, message)
        if state.held:
            if item.topic == self.settings.topic_waveforms:
                self._held[item.key] = (time.monotonic(), bed, monitor)
        else:
            self._held.pop(item.key, None)
        return self._result(item, patient, state, outputs, bed, monitor, unreadable)

    def idle_held(self, idle_s: float) -> list[bytes]:
        """Patients whose chunks have been held for ``idle_s`` (wall) without a newer chunk of theirs."""
        now = time.monotonic()
        return [k for k, (t, _, _) in self._held.items() if now - t >= idle_s]

    def gap_waiting(self) -> int:
        """How many patients have chunks held behind a missing seq right now."""
        return len(self._held)

    def flush(self, key: bytes, state_bytes: bytes | None) -> Result:
        """Apply a quiet patient's held chunks (``Flush``): the windows they complete are published."""
        _, bed, monitor = self._held.pop(key, (0.0, None, None))
        item = Item("<flush>", None, None, key, None, state_bytes)
        try:
            state = self._load(key, state_bytes)
            if state is None or not state.held:
                return Result()
            state, outputs = self.pipeline.step(state, Flush())
            return self._result(item, key.decode("utf-8", "replace"), state, outputs, bed, monitor)
        except Exception:  # noqa: BLE001 - the chunks stay held; the next message of the patient goes on
            log.exception("flush of held chunks failed")
            self._cache.pop(key, None)
            return Result()

    def _result(self, item: Item, patient: str, state: PatientState, outputs: list, bed: str | None,
                monitor: str | None, unreadable: bool = False) -> Result:
        now = self.clock()
        result = Result()
        duplicate = False
        if unreadable:  # the stored state could not be read: the patient starts afresh, said as an event
            outputs.insert(0, Event(EventKind.PATIENT_RESET, None, Reason.STATE_UNREADABLE))
        for out in outputs:
            if isinstance(out, WindowResult):
                doc = estimate_doc(patient, out, self.method, model=self._model, published_at_s=now,
                                   bed=bed, monitor_id=monitor)
                result.sends.append(("estimates", item.key, dumps(doc)))
                if self.settings.fhir_output:  # the same document, as a FHIR R4 Observation (pure mapping)
                    result.sends.append(("fhir", item.key, dumps(observation(doc))))
                self.counts["estimates"] += 1
                self.counts[f"validity:{doc['validity']}"] += 1
            elif isinstance(out, DeadLetter):  # the step's verdict on this message (e.g. msg_late)
                result.sends += self._dead(item, out.reason, out.detail).sends
            elif isinstance(out, Event):
                duplicate |= out.kind == EventKind.DUPLICATE_IGNORED
                result.sends.append(("events", item.key, dumps(event_doc(patient, out, published_at_s=now))))
                self.counts[f"event:{out.kind.value}"] += 1
        if duplicate and not unreadable:
            return result  # nothing was applied; the table keeps its value
        new = state_to_bytes(state)
        self._cache[item.key] = (new, state)
        result.new_state = new
        return result

    def _load_or_reset(self, key: bytes, data: bytes | None) -> tuple[PatientState | None, bool]:
        """The patient's state, or a fresh one (True) when the stored bytes cannot be read by this code."""
        try:
            return self._load(key, data), False
        except StateError:
            self.counts["state:unreadable"] += 1
            log.warning("unreadable patient state on a message; that patient is reset")
            state = self.pipeline.new_state()
            for name, value in salvage_counters(data).items():
                setattr(state, name, value)
            return state, True

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


def _where(exc: BaseException) -> str:
    """An exception's type and innermost bpstream frame (file:line), never its message."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "bpstream" in f.filename or "/stream/" in f.filename]
    last = frames[-1] if frames else None
    return type(exc).__name__ + (f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else "")


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
