"""``/metrics``: the worker's Prometheus metrics, read at scrape time from what the worker already keeps.

Counters come from ``Processor.counts`` (the one count of each concept; the periodic ``counts:`` log
line reads the same object): messages in by topic, estimates out by validity, dead letters by reason,
events by type. Gauges are computed at scrape time: patients held (states in this worker's table on
its assigned partitions), their state bytes, patients waiting on a sequence gap, consumer lag per
assigned input partition. The step latency histogram is the one thing observed as it happens (the
processor times each message's step in its executor thread). No label carries a patient identifier.
"""

from __future__ import annotations

from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from bpstream.filters import Reason
from bpstream.models import Validity

from bpstream.stream.core import EventKind

__all__ = ["ServiceMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STEP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the labelled counters: (metric, Processor.counts prefix, label, values always shown even at 0)
COUNTERS = (
    ("bpstream_messages_in", "in", "topic", ()),
    ("bpstream_estimates_out", "validity", "validity", tuple(v.value for v in Validity)),
    ("bpstream_deadletters", "deadletter", "reason", tuple(r.value for r in Reason if r.value.startswith("msg_"))),
    ("bpstream_events", "event", "type", tuple(k.value for k in EventKind)),
)
HELP = {
    "bpstream_messages_in": "messages consumed (waveform chunks and commands), by topic",
    "bpstream_estimates_out": "estimates published, by validity",
    "bpstream_deadletters": "messages dead-lettered, by reason",
    "bpstream_events": "events published, by type",
}


class ServiceMetrics:
    """One registry per app (several apps in one process never share series)."""

    def __init__(self, processor: Any, table: Any, app: Any):
        self.processor, self.table, self.app = processor, table, app
        self.registry = CollectorRegistry(auto_describe=False)
        self.step_latency = Histogram("bpstream_step_latency_seconds",
                                      "wall time of one message's step in the executor (decode, step, encode; a batch's time over its messages)",
                                      buckets=STEP_BUCKETS_S, registry=self.registry)
        processor.observe_step_s = self.step_latency.observe
        self.registry.register(_Collector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- gauges computed at scrape time (on the event loop) ------------------------------------------
    def input_assignment(self) -> list[Any]:
        s = self.processor.settings
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # noqa: BLE001 - not started yet: nothing assigned
            return []
        return sorted((tp for tp in assigned if tp.topic in (s.topic_waveforms, s.topic_commands)),
                      key=lambda tp: (tp.topic, tp.partition))

    def state_totals(self) -> tuple[int, int]:
        """(patients, bytes) in the table for this worker's assigned waveform partitions (standby copies
        excluded); partition = murmur2(key) as the producers key them."""
        from kafka.partitioner.default import murmur2

        s = self.processor.settings
        active = {tp.partition for tp in self.input_assignment() if tp.topic == s.topic_waveforms}
        if not active:
            return 0, 0
        n = size = 0
        for key, value in list(self.table.data.items()):
            if value is None or (murmur2(key) & 0x7FFFFFFF) % s.partitions not in active:
                continue
            n += 1
            size += len(value)
        return n, size

    def lag(self) -> Iterable[tuple[Any, int]]:
        """(tp, messages) per assigned input partition: the log end offset minus the committed offset
        (the next offset this group reads; a partition without a commit counts from offset 0)."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})  # faust's view: seeded at seek, kept at commit
        for tp in self.input_assignment():
            try:
                end = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - partition being revoked
                continue
            if end is None:
                continue  # nothing fetched from it yet
            yield tp, max(0, end - (committed.get(tp) or 0))


class _Collector:
    def __init__(self, metrics: ServiceMetrics):
        self.m = metrics

    def collect(self) -> Iterable[Any]:
        counts = self.m.processor.counts.copy()  # the executor thread may be counting right now
        for name, prefix, label, always in COUNTERS:
            family = CounterMetricFamily(name, HELP[name], labels=[label])
            values = dict.fromkeys(always, 0)
            values.update({k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith(prefix + ":")})
            for value, n in sorted(values.items()):
                family.add_metric([value], n)
            yield family
        unreadable = CounterMetricFamily("bpstream_state_unreadable", "stored patient states this code could not "
                                         "read (the patient was reset)")
        unreadable.add_metric([], counts.get("state:unreadable", 0))
        yield unreadable
        writes = CounterMetricFamily("bpstream_state_writes", "patient states written to the table (every "
                                     "BPSTREAM_STATE_EVERY_CHUNKS changes, or at once for commands and calibrations)")
        writes.add_metric([], counts.get("state:written", 0))
        yield writes
        yield GaugeMetricFamily("bpstream_patients_state_unwritten", "patients whose state in memory is newer than "
                                "the table (their messages stay uncommitted until it is written)",
                                value=self.m.processor.unwritten())

        patients, size = self.m.state_totals()
        yield GaugeMetricFamily("bpstream_patients_held", "patient states held by this worker (its assigned "
                                "partitions)", value=patients)
        yield GaugeMetricFamily("bpstream_state_bytes", "bytes of those patient states (the table values)",
                                value=size)
        yield GaugeMetricFamily("bpstream_patients_gap_waiting", "patients with chunks held behind a missing seq",
                                value=self.m.processor.gap_waiting())
        lag = GaugeMetricFamily("bpstream_consumer_lag_messages", "log end offset minus committed offset, per "
                                "assigned input partition", labels=["topic", "partition"])
        for tp, n in self.m.lag():
            lag.add_metric([tp.topic, str(tp.partition)], n)
        yield lag
