"""Helpers for the Kafka tier: per-test settings, worker processes, reading topics back."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from bpstream.stream.config._settings import Settings

_COUNTER = itertools.count()
WAIT_S = 90.0  # generous but bounded: Tansu fetches take ~max-wait each, group joins ~session/2


def settings_for(bootstrap: str, name: str, **changes) -> Settings:
    """Settings with topics and consumer group of their own, so tests on one broker never mix."""
    tag = f"{name}{next(_COUNTER)}"
    base = dict(broker=bootstrap, partitions=4, session_timeout_s=10.0, app_id=f"bpstream-{tag}",
                methods=("carry_forward",),  # pinned: tests state what they publish
                topic_waveforms=f"{tag}.bp.waveforms.v1", topic_commands=f"{tag}.bp.commands.v1",
                topic_estimates=f"{tag}.bp.estimates.v1", topic_events=f"{tag}.bp.events.v1",
                topic_deadletter=f"{tag}.bp.deadletter.v1")
    base.update(changes)
    return Settings(**base)


class WorkerProcess:
    """``bpstream worker`` in a subprocess with the settings' environment; always stopped by the test."""

    def __init__(self, settings: Settings, workdir: Path, name: str = "worker"):
        self.log_path = workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPSTREAM_")}
        env.update(settings.replace(datadir=str(workdir / f"{name}-data")).to_env())
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "bpstream.stream.cli", "worker"], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "Worker]: Ready" in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready within {timeout_s:g} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the group, nothing flushed (what a crash looks like)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def _doc(r) -> dict:
    """A consumed JSON message, with ``_key``, ``_partition``, ``_offset`` and the ``_worker`` header."""
    doc = json.loads(r.value)
    doc["_key"], doc["_partition"], doc["_offset"] = r.key.decode(), r.partition, r.offset
    doc["_worker"] = dict(r.headers or []).get("bpstream-worker", b"").decode()
    return doc


def read_topic(settings: Settings, topic: str, until: Callable[[list[dict]], bool], timeout_s: float = WAIT_S,
               docs: list[dict] | None = None, isolation_level: str = "read_uncommitted",
               linger_s: float = 0.0) -> list[dict]:
    """Read ``topic`` from the beginning until ``until(docs)`` holds; each doc gets ``_key``/``_partition``.
    ``isolation_level="read_committed"``: only what committed transactions wrote (exactly_once workers).
    ``linger_s``: then go on reading that long, so messages beyond the condition (duplicates) are seen too."""
    from bpstream.stream.kafka._topics import consumer

    docs = [] if docs is None else docs
    c = consumer(settings, topic, consumer_timeout_ms=1000, fetch_max_wait_ms=200, isolation_level=isolation_level)
    deadline = time.monotonic() + timeout_s

    def poll() -> None:
        docs.extend(_doc(r) for records in c.poll(timeout_ms=500).values() for r in records)

    try:
        while not until(docs):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s reading {topic}: {len(docs)} messages")
            poll()
        linger_end = time.monotonic() + linger_s
        while time.monotonic() < linger_end:
            poll()
    finally:
        c.close()
    return docs


def read_to_end(settings: Settings, topic: str, timeout_s: float = WAIT_S) -> list[dict]:
    """Every message of ``topic`` from the beginning up to its end offsets as of the call (exact on Apache
    Kafka; Tansu's ListOffsets can under-report by 1-2 records), each doc with ``_key``/``_partition``."""
    from kafka import TopicPartition

    from bpstream.stream.kafka._topics import consumer

    c = consumer(settings, consumer_timeout_ms=1000, fetch_max_wait_ms=200)
    docs: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        assert parts, f"no partitions for {topic}"
        c.assign(parts)
        c.seek_to_beginning(*parts)
        end = c.end_offsets(parts)
        while any(c.position(tp) < end[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s reading {topic} to its end: "
                                     f"{len(docs)} messages")
            docs.extend(_doc(r) for records in c.poll(timeout_ms=500).values() for r in records)
    finally:
        c.close()
    return docs


def by_patient(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in docs:
        out.setdefault(d["patient_id"], []).append(d)
    return out
