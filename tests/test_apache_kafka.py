"""``bpstream broker``: the engine choice, the pinned Apache Kafka version, and the Apache Kafka broker
started from the command line (a real JVM on loopback), answering metadata and stopping on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib import resources

import pytest

from bpstream.stream.kafka._apache_kafka import KAFKA_VERSION, cache_dir, unavailable
from bpstream.stream.kafka._tansu import free_port
from bpstream.stream.kafka import choose_engine


def test_the_shipped_pom_pins_the_version_the_code_records():
    pom = ET.fromstring(resources.files("bpstream.stream.kafka").joinpath("kafka_pom.xml").read_bytes())
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    assert pom.find("m:properties/m:kafka.version", ns).text == KAFKA_VERSION
    deps = {d.find("m:artifactId", ns).text for d in pom.findall("m:dependencies/m:dependency", ns)}
    assert "kafka_2.13" in deps
    assert cache_dir().name == f"kafka-{KAFKA_VERSION}"


def test_auto_falls_back_to_tansu_and_says_why_without_java(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java, no mvn
    assert "java" in unavailable()
    engine, note = choose_engine("auto")
    assert engine == "tansu" and "Apache Kafka unavailable" in note and "java" in note
    assert choose_engine("kafka") == ("kafka", None)  # an explicit engine is never replaced
    assert choose_engine("tansu") == ("tansu", None)


@pytest.mark.kafka
def test_broker_engine_kafka_answers_metadata_and_stops_on_sigterm(tmp_path):
    if why := unavailable():
        pytest.skip(f"Apache Kafka tier: {why}")
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    port = free_port()
    out = tmp_path / "broker.out"
    with open(out, "wb") as log:
        p = subprocess.Popen([sys.executable, "-m", "bpstream.stream.cli", "broker", "--engine", "kafka",
                              "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 240  # includes the first jar download on a fresh machine
        while "development broker (Apache Kafka" not in out.read_text():
            assert p.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            admin.create_topics([NewTopic("cli-check", 2, 1)])
            assert "cli-check" in admin.list_topics()
        finally:
            admin.close()
        t = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(45) == 0, out.read_text()[-3000:]
        print(f"bpstream broker --engine kafka stopped {time.monotonic() - t:.1f} s after SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert "Exception" not in out.read_text(), out.read_text()[-3000:]


def test_cluster_ids_never_start_with_a_dash(monkeypatch):
    """kafka-storage reads an id starting with "-" as an option (a failed start, 1 in 64 before)."""
    import uuid

    from bpstream.stream.kafka import _apache_kafka

    dash = uuid.UUID(bytes=b"\xfb" + bytes(15))  # base64 "-w..."
    ids = iter([dash, uuid.UUID(int=1)])
    monkeypatch.setattr(_apache_kafka.uuid, "uuid4", lambda: next(ids))
    cid = _apache_kafka._cluster_id()
    assert not cid.startswith("-") and len(cid) == 22
