"""The topics: faust declarations for the worker, kafka-python clients for the synchronous tools.

Inputs (waveforms, commands) and outputs (estimates, events, dead-letter) all have the same key
(patient id, UTF-8) and partition count, so one patient's messages, state changelog and outputs
share one partition number and stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ._errors import BpstreamError
from ._settings import Settings

__all__ = ["Topics", "TopicsMismatch", "declare", "ensure_topics", "producer", "consumer", "wait_for_broker"]


class TopicsMismatch(BpstreamError):
    """A topic exists with another partition count than the settings say."""


@dataclass(frozen=True)
class Topics:
    inputs: Any  # one faust channel over waveforms + commands (one agent: per-patient order, one writer)
    estimates: Any
    events: Any
    deadletter: Any


def declare(app: Any, settings: Settings) -> Topics:
    def topic(*names: str) -> Any:
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=settings.partitions)

    return Topics(
        inputs=topic(settings.topic_waveforms, settings.topic_commands),
        estimates=topic(settings.topic_estimates),
        events=topic(settings.topic_events),
        deadletter=topic(settings.topic_deadletter),
    )


def ensure_topics(settings: Settings, names: Iterable[str] | None = None, *, check: bool = True) -> None:
    """Create the public topics that are missing (same partition count for all); with ``check``, raise
    TopicsMismatch if an existing one has another partition count (patients would land on the wrong
    partitions, and the worker's table could not follow them)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    names = list(names or settings.topic_names().values())
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, settings.partitions, settings.replication) for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        if check:
            present = [n for n in names if n in existing]
            described = admin.describe_topics(present) if present else []
            wrong = {d.get("name", d.get("topic")): len(d["partitions"]) for d in described
                     if len(d["partitions"]) != settings.partitions}
            if wrong:
                raise TopicsMismatch(
                    ", ".join(f"{t} has {n} partitions" for t, n in sorted(wrong.items()))
                    + f"; BPSTREAM_PARTITIONS={settings.partitions}. Every bpstream topic needs the same count "
                    "(recreate the topics, or set BPSTREAM_PARTITIONS to match).")
    finally:
        admin.close()


def producer(settings: Settings, **extra: Any) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(**settings.kafka_python_config(), acks="all", linger_ms=5,
                         max_request_size=max(settings.max_chunk_bytes * 2, 1_048_576), **extra)


def consumer(settings: Settings, *topics: str, group_id: str | None = None, **extra: Any) -> Any:
    """A kafka-python consumer; without ``group_id`` it reads from the start (no commits)."""
    from kafka import KafkaConsumer

    opts: dict[str, Any] = dict(auto_offset_reset="earliest", enable_auto_commit=group_id is not None,
                                session_timeout_ms=int(settings.session_timeout_s * 1000),
                                heartbeat_interval_ms=int(settings.session_timeout_s * 1000 / 5))
    opts.update(extra)
    return KafkaConsumer(*topics, group_id=group_id, **settings.kafka_python_config(), **opts)


def wait_for_broker(settings: Settings, timeout_s: float = 10.0) -> None:
    """Return once the broker answers a metadata request; raise TimeoutError otherwise."""
    import time

    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(**settings.kafka_python_config(), request_timeout_ms=2000)
            admin.list_topics()
            admin.close()
            return
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Kafka broker answered at {settings.broker}: {exc}") from None
            time.sleep(0.2)
