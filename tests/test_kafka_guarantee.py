"""BPSTREAM_PROCESSING_GUARANTEE=exactly_once on each real broker: Apache Kafka runs it (estimates are
published in committed transactions); a broker without transactions (Tansu) is refused at start."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ._data import record
from ._kafka import WAIT_S, WorkerProcess, settings_for
from bpstream.stream.kafka._topics import consumer
from bpstream.stream.kafka._publish import replay

pytestmark = pytest.mark.kafka

START_S = 1_780_000_000.0


def test_exactly_once_runs_on_apache_kafka_and_is_refused_elsewhere(broker, tmp_path):
    settings = settings_for(broker, "eos", processing_guarantee="exactly_once")
    worker = WorkerProcess(settings, tmp_path)
    try:
        if broker.engine != "kafka":
            try:
                rc = worker.process.wait(60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"worker still running:\n{worker.log()[-3000:]}") from None
            assert rc == 2 and "BPSTREAM_PROCESSING_GUARANTEE=exactly_once needs Apache Kafka" in worker.log()
            return
        worker.wait_ready()
        replay(settings, [record("f362s")], speed=0, calibration="once", start_s=START_S, t_to_s=20.0,
               ids=["eos-1"])
        # read_committed: only what the worker's transactions committed is visible
        c = consumer(settings, settings.topic_estimates, isolation_level="read_committed",
                     consumer_timeout_ms=1000, fetch_max_wait_ms=200)
        docs, deadline = [], time.monotonic() + WAIT_S
        try:
            while len(docs) < 6 and time.monotonic() < deadline:
                for records in c.poll(timeout_ms=500).values():
                    docs += [json.loads(r.value) for r in records]
        finally:
            c.close()
        assert [d["seq"] for d in sorted(docs, key=lambda d: d["seq"])] == list(range(1, 7))  # windows 10..20 s
        assert "Traceback" not in worker.log()
    finally:
        worker.stop()
