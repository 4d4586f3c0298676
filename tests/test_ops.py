"""Operations without a broker: web settings, the probe pages, /metrics from the processor's counts,
readiness reasons, JSON log lines. (The same endpoints of a running worker: tests/test_kafka_ops.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest
from faust.types import TP
from prometheus_client.parser import text_string_to_metric_families

from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import encode_waveform
from bpstream.stream.kafka._logs import JsonFormatter, logging_config
from bpstream.stream.kafka._probes import PROBE_PATHS, readiness
from bpstream.stream.kafka._prometheus import ServiceMetrics
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.config._settings import Settings, SettingsError
from bpstream.stream.kafka.app import create_app, pipeline_for

from ._data import record

T0 = 1_780_000_000.0
WAVES = "bp.waveforms.v1"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_web_settings_default_off_and_are_checked():
    assert Settings().web_port == 0 and Settings().log_format == "text"
    env = Settings.from_env({"BPSTREAM_WEB_PORT": "6066", "BPSTREAM_LOG_FORMAT": "json"})
    assert env.web_port == 6066 and env.log_format == "json"
    assert {"BPSTREAM_WEB_PORT", "BPSTREAM_LOG_FORMAT", "BPSTREAM_DATA"} <= set(Settings.env_vars())
    with pytest.raises(SettingsError, match="BPSTREAM_LOG_FORMAT"):
        Settings(log_format="xml").validated()
    with pytest.raises(SettingsError, match="BPSTREAM_WEB_PORT"):
        Settings(web_port=70000).validated()


def test_web_server_is_off_by_default_and_serves_the_probe_paths_when_on():
    off = create_app(Settings(methods=("carry_forward",)))
    assert off.app.conf.web_enabled is False and off.metrics is None
    on = create_app(Settings(methods=("carry_forward",), web_port=6123))
    conf = on.app.conf
    assert conf.web_enabled and conf.web_port == 6123
    # faust's table and router pages would answer patient state by patient key: never served
    assert not (conf.web_tables_enabled or conf.web_router_enabled or conf.web_stats_enabled)
    assert set(PROBE_PATHS.values()) <= set(on.app.web.views)

    async def get(path):
        return await on.app.web.views[path].get(None)

    alive, ready, metrics = (asyncio.run(get(p)) for p in ("/healthz", "/readyz", "/metrics"))
    assert alive.status == 200 and json.loads(alive.body) == {"status": "alive"}
    assert ready.status == 503 and json.loads(ready.body) == {"ready": False, "reasons": ["starting"]}
    assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'bpstream_events_total{type="patient_reset"} 0.0' in metrics.body.decode()


class _Table:
    def __init__(self, data):
        self.data = data


class _Consumer:
    flow_active = True

    def __init__(self, assigned, highwater, committed):
        self._assigned, self._hw, self._committed_offset = assigned, highwater, committed

    def assignment(self):
        return set(self._assigned)

    def highwater(self, tp):
        return self._hw.get(tp)


def test_metrics_are_the_processor_counts_and_the_table():
    settings = Settings(methods=("carry_forward",), partitions=2, state_every_chunks=1)  # the table per batch
    proc = Processor(settings, pipeline_for(settings), clock=lambda: T0)
    app = SimpleNamespace(consumer=None)
    table = _Table({})
    metrics = ServiceMetrics(proc, table, app)  # as create_app does: before any message
    chunks = list(iter_chunks(read_record(record("f362s")), 2.0, t0_s=T0))[:6]
    items = [Item(WAVES, 0, i, b"p-1", encode_waveform("p-1", i, c)) for i, c in enumerate(chunks)]
    items += [Item(WAVES, 0, 6, b"p-1", b"{oops"), Item(WAVES, 0, 7, b"p-1", encode_waveform("p-1", 5, chunks[5]))]
    results = proc.process_batch(items[:7])
    items[-1].state_bytes = results[5].new_state
    proc.process_batch(items[7:])
    from kafka.partitioner.default import murmur2

    part = (murmur2(b"p-1") & 0x7FFFFFFF) % 2
    tps = [TP(WAVES, 0), TP(WAVES, 1), TP("bp.commands.v1", 0), TP("other", 0)]
    consumer = _Consumer(tps, {TP(WAVES, 0): 10, TP(WAVES, 1): 3}, {TP(WAVES, 0): 8})
    state = results[5].new_state
    table.data.update({b"p-1": state, b"p-2-elsewhere": b"x" * 7})
    app.consumer = consumer
    got = samples(metrics.render().decode())

    assert got[("bpstream_messages_in_total", (("topic", WAVES),))] == 8
    assert got[("bpstream_deadletters_total", (("reason", "msg_not_json"),))] == 1
    assert got[("bpstream_deadletters_total", (("reason", "msg_late"),))] == 0  # known reasons start at 0
    assert got[("bpstream_events_total", (("type", "duplicate_ignored"),))] == 1
    by_validity = {k[1][0][1]: v for k, v in got.items() if k[0] == "bpstream_estimates_out_total"}
    assert sum(by_validity.values()) == proc.counts["estimates"] == 2
    assert set(by_validity) == {"valid", "questionable", "invalid", "calibrating", "uncalibrated"}
    assert got[("bpstream_step_latency_seconds_count", ())] == 8
    assert got[("bpstream_step_latency_seconds_sum", ())] > 0
    # patients and bytes on this worker's waveform partitions only (p-2-elsewhere hashes to the other one or not)
    other = (murmur2(b"p-2-elsewhere") & 0x7FFFFFFF) % 2
    assert got[("bpstream_patients_held", ())] == 2
    # written once: on the first batch (K = 1); the second batch is a repeat (seq 5 again), which changes nothing
    assert got[("bpstream_state_writes_total", ())] == proc.counts["state:written"] == 1
    assert got[("bpstream_patients_state_unwritten", ())] == 0
    assert got[("bpstream_state_bytes", ())] == len(state) + 7
    consumer._assigned = [TP(WAVES, part)]
    got = samples(metrics.render().decode())
    assert got[("bpstream_patients_held", ())] == (2 if other == part else 1)
    assert got[("bpstream_state_bytes", ())] == len(state) + (7 if other == part else 0)
    consumer._assigned = tps
    got = samples(metrics.render().decode())
    lag = {dict(k[1])["partition"]: v for k, v in got.items() if k[0] == "bpstream_consumer_lag_messages"}
    assert lag == {"0": 2, "1": 3}  # highwater - committed (none committed: from 0); no highwater: absent


def _app(started_recovery=True, **flags):
    recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: started_recovery))
    return SimpleNamespace(rebalancing=flags.get("rebalancing", False), in_recovery=flags.get("in_recovery", False),
                           tables=SimpleNamespace(recovery=recovery),
                           consumer=SimpleNamespace(flow_active=flags.get("flow_active", True)))


def test_readiness_reasons():
    assert readiness(_app(), started=False) == ["starting"]
    assert readiness(_app(), started=True) == []
    assert readiness(_app(rebalancing=True), started=True) == ["rebalancing"]
    assert readiness(_app(False, in_recovery=True), started=True) == ["recovering", "recovery not completed"]
    assert readiness(_app(flow_active=False), started=True) == ["consumer paused"]


def test_json_log_lines_carry_no_exception_message():
    fmt = JsonFormatter()
    record_ = logging.LogRecord("bpstream.worker", logging.WARNING, __file__, 1, "dead-letter %s from %s",
                                ("msg_invalid", "t[0]@3"), None)
    doc = json.loads(fmt.format(record_))
    assert doc["level"] == "warning" and doc["msg"] == "dead-letter msg_invalid from t[0]@3"
    assert doc["logger"] == "bpstream.worker" and doc["ts"].endswith("+00:00")
    try:
        raise ValueError("patient secret-42 said hello")
    except ValueError:
        import sys

        record_ = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = fmt.format(record_)
    assert "\n" not in line and "secret-42" not in line
    assert json.loads(line)["exc_type"] == "ValueError"
    text = logging_config("text", "info")
    assert "handlers" not in text and "formatters" not in text  # faust's own text format
    assert logging_config("json", "info")["handlers"]["default"]["formatter"] == "json"
    for fmt in ("text", "json"):  # the loggers that would write message contents never go below info
        assert logging_config(fmt, "debug")["loggers"]["aiokafka"]["level"] == "INFO"
        assert logging_config(fmt, "warning")["loggers"]["faust.topics"]["level"] == "WARNING"


def test_worker_flags_reach_the_settings(capsys, monkeypatch):
    from bpstream.stream.cli import main

    monkeypatch.delenv("BPSTREAM_WEB_PORT", raising=False)
    assert main(["worker", "--web-port", "70000", "--log-format", "json"]) == 2  # refused before any broker
    assert "BPSTREAM_WEB_PORT" in capsys.readouterr().err


def test_processing_guarantee_setting_reaches_faust():
    assert Settings().processing_guarantee == "at_least_once"
    assert create_app(Settings(methods=("carry_forward",))).app.conf.processing_guarantee.value == "at_least_once"
    eos = Settings.from_env({"BPSTREAM_PROCESSING_GUARANTEE": "exactly_once", "BPSTREAM_METHODS": "carry_forward"})
    assert create_app(eos).app.conf.processing_guarantee.value == "exactly_once"
    with pytest.raises(SettingsError, match="BPSTREAM_PROCESSING_GUARANTEE"):
        Settings(processing_guarantee="at_most_once").validated()
