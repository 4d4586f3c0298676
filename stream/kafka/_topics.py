"""The topics: faust declarations for the worker, kafka-python clients for the synchronous tools.

Inputs (waveforms, commands) and outputs (estimates, events, dead-letter) all have the same key
(patient id, UTF-8) and partition count, so one patient's messages, state changelog and outputs
share one partition number and stay in order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

from bpstream.stream.core import BpstreamError, BrokerRefused
from bpstream.stream.config import Settings

__all__ = ["Topics", "TopicsMismatch", "BrokerRefused", "declare", "ensure_topics", "producer", "consumer", "wait_for_broker"]


class TopicsMismatch(BpstreamError):
    """A topic exists with another partition count than the settings say."""


@dataclass(frozen=True)
class Topics:
    inputs: Any  # one faust channel over waveforms + commands (one agent: per-patient order, one writer)
    estimates: Any
    events: Any
    deadletter: Any
    fhir: Any = None  # bp.estimates.fhir.v1, only with BPSTREAM_FHIR_OUTPUT


def declare(app: Any, settings: Settings) -> Topics:
    def topic(*names: str) -> Any:
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=settings.partitions)

    return Topics(
        inputs=topic(settings.topic_waveforms, settings.topic_commands),
        estimates=topic(settings.topic_estimates),
        events=topic(settings.topic_events),
        deadletter=topic(settings.topic_deadletter),
        fhir=topic(settings.topic_fhir) if settings.fhir_output else None,
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


_REFUSALS = (  # what kafka-python logs when a broker answers but refuses the connection's security
    ("UnsupportedSaslMechanism", "does not accept SASL mechanism BPSTREAM_SASL_MECHANISM (or no SASL at all)"),
    ("IllegalSaslState", "does not accept SASL mechanism BPSTREAM_SASL_MECHANISM (or no SASL at all)"),
    ("SaslAuthenticationFailed", "refused the credentials BPSTREAM_SASL_USERNAME/BPSTREAM_SASL_PASSWORD"),
    ("AuthenticationFailed", "refused the credentials BPSTREAM_SASL_USERNAME/BPSTREAM_SASL_PASSWORD"),
    ("[SSL", "failed the TLS handshake (BPSTREAM_SECURITY_PROTOCOL, BPSTREAM_SSL_*)"),
)


_PROBES = itertools.count()




def wait_for_broker(settings: Settings, timeout_s: float = 10.0) -> None:
    """Return once the broker answers a metadata request; raise TimeoutError when none answers, and
    BrokerRefused as soon as one answers but refuses the connection's authentication or TLS."""
    import logging
    import threading
    import time

    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    refused: list[str] = []
    probe_id = f"{settings.client_id}-probe-{next(_PROBES)}"  # this call's connections, not an earlier one's

    class _Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if probe_id in (record.threadName or ""):  # kafka-python logs from "kafka-io-<client_id>"
                refused.extend(why for marker, why in _REFUSALS if marker in text)

    deadline = time.monotonic() + timeout_s
    done = threading.Event()
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        while not refused:
            try:
                admin = KafkaAdminClient(**{**settings.kafka_python_config(), "client_id": probe_id},
                                         request_timeout_ms=2000)
                admin.list_topics()
                admin.close()
                outcome.append(None)
                break
            except (KafkaError, OSError) as exc:
                if time.monotonic() > deadline:
                    outcome.append(exc)
                    break
                time.sleep(0.2)
        done.set()

    watch = _Watch(logging.WARNING)
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(watch)
    try:
        threading.Thread(target=attempt, name=probe_id, daemon=True).start()
        while not done.wait(0.1) and not refused and time.monotonic() < deadline + 5.0:
            pass  # a TLS handshake with a broker that speaks none can block the client past its own timeouts
    finally:
        kafka_log.removeHandler(watch)
    if refused:
        raise BrokerRefused(f"the Kafka broker at {settings.broker} answered but {refused[0]} "
                            f"(BPSTREAM_SECURITY_PROTOCOL={settings.security_protocol})")
    if not outcome or outcome[0] is not None:
        why = outcome[0] if outcome else "no answer to the connection (a TLS handshake with a broker without TLS?)"
        raise TimeoutError(f"no Kafka broker answered at {settings.broker}: {why}") from None


def has_transactions(settings: Settings) -> bool:
    """True when the broker runs Apache Kafka's transaction coordinator (it reports the broker setting
    ``transaction.state.log.replication.factor``); a broker without one (Tansu) answers no broker configs."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    admin = None
    try:
        admin = KafkaAdminClient(**{**settings.kafka_python_config(), "client_id": f"{settings.client_id}-probe"},
                                 request_timeout_ms=5000)
        broker_id = str(admin.describe_cluster()["brokers"][0]["broker_id"])
        name = "transaction.state.log.replication.factor"
        found = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, broker_id, configs={name: None})],
                                       config_filter="all")
        return name in found.get("broker", {}).get(broker_id, {})
    except (KafkaError, OSError, KeyError, IndexError):
        return False
    finally:
        if admin is not None:
            admin.close()
