"""A running worker's web endpoints on each real broker: /healthz, /readyz, /metrics, and JSON logs.

One worker subprocess (``BPSTREAM_WEB_PORT`` on a free loopback port, ``BPSTREAM_LOG_FORMAT=json``),
one small replay (40 s of f362s with its arterial calibration command) plus one malformed chunk. The
metrics must agree with what the worker published on its output topics, the consumer lag must drain
to 0 on every assigned input partition, and every log line must be a JSON object without the patient id.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._data import record
from ._kafka import WAIT_S, WorkerProcess, read_topic, settings_for
from bpstream.stream.kafka._topics import producer
from bpstream.stream.kafka._publish import replay

pytestmark = pytest.mark.kafka

START_S = 1_780_000_000.0
PATIENT = "ops-patient-7"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def _metrics(port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted labels: value}}."""
    status, body, ctype = _get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _by(samples: dict[tuple, float], label: str) -> dict[str, float]:
    return {dict(k)[label]: v for k, v in samples.items() if v}


def _until(what: str, check, timeout_s: float = WAIT_S, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def test_running_worker_serves_probes_and_metrics(broker, tmp_path):
    port = _free_port()
    settings = settings_for(broker, "ops", web_port=port, web_bind="127.0.0.1", log_format="json")
    worker = WorkerProcess(settings, tmp_path)
    try:
        def alive():
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited:\n{worker.log()[-3000:]}")
            try:
                return _get(port, "/healthz")
            except OSError:
                return None  # not listening yet

        status, body, _ = _until("/healthz", alive, every_s=0.1)
        assert status == 200 and json.loads(body) == {"status": "alive"}
        ready = _until("/readyz 200", lambda: (r := _get(port, "/readyz"))[0] == 200 and r)
        assert json.loads(ready[1]) == {"ready": True, "reasons": []}
        worker.wait_ready()

        stats = replay(settings, [record("f362s")], speed=0, calibration="once", start_s=START_S, t_to_s=40.0,
                       ids=[PATIENT])
        p = producer(settings)
        p.send(settings.topic_waveforms, key=PATIENT.encode(), value=b"{oops")
        p.flush()
        p.close()
        sent_waves = stats.chunks + 1

        def drained():
            m = _metrics(port)
            ins = _by(m.get("bpstream_messages_in_total", {}), "topic")
            lag = m.get("bpstream_consumer_lag_messages", {})
            done = (ins.get(settings.topic_waveforms) == sent_waves
                    and ins.get(settings.topic_commands, 0) == stats.commands
                    and len(lag) == 2 * settings.partitions and not any(lag.values()))
            return done and m

        m = _until("every message processed and committed (lag 0)", drained)
        estimates_by = _by(m["bpstream_estimates_out_total"], "validity")
        events_by = _by(m["bpstream_events_total"], "type")
        n_est, n_ev = int(sum(estimates_by.values())), int(sum(events_by.values()))
        estimates = read_topic(settings, settings.topic_estimates, lambda d: len(d) >= n_est)
        events = read_topic(settings, settings.topic_events, lambda d: len(d) >= n_ev)
        dead = read_topic(settings, settings.topic_deadletter, lambda d: len(d) >= 1)
        assert n_est == 16 and stats.commands >= 1  # 40 s: windows ending at 10, 12, ... 40 s
        assert Counter(d["validity"] for d in estimates) == estimates_by
        assert Counter(d["type"] for d in events) == events_by and events_by.get("calibration_accepted") == 1
        assert _by(m["bpstream_deadletters_total"], "reason") == {"msg_not_json": 1} == Counter(d["reason"] for d in dead)
        assert m["bpstream_step_latency_seconds_count"][()] == sent_waves + stats.commands
        assert 0 < m["bpstream_step_latency_seconds_sum"][()] < 60
        assert m["bpstream_patients_held"][()] == 1  # one worker: every partition is its own
        assert m["bpstream_state_bytes"][()] > 1000
        assert m["bpstream_patients_gap_waiting"][()] == 0
        assert {dict(k)["topic"] for k in m["bpstream_consumer_lag_messages"]} == {
            settings.topic_waveforms, settings.topic_commands}
        assert _get(port, "/readyz")[0] == 200
    finally:
        worker.stop()
    log = worker.log()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and "Traceback" not in log
    docs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(d) for d in docs)
    assert any(d["msg"].endswith("Ready") for d in docs) and any("dead-letter msg_not_json" in d["msg"] for d in docs)
    assert PATIENT not in log
