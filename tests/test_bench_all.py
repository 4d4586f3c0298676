"""`bpstream bench perf`: functional smoke tests with tiny sizes. Nothing here asserts a speed."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from bpstream.stream import _bench_all, bench
from bpstream.stream._bench_e2e import Bed, EstimateReader, ProbeResult
from bpstream.stream._bench_replay import load_recordings, replay_speed
from bpstream.stream._bench_stages import stage_costs
from bpstream.stream._messages import WindowResult
from bpstream.stream._replay_local import replay_record
from bpstream.stream._schedule import Schedule
from bpstream.stream._schemas import to_iso
from bpstream.stream._step import PipelineConfig

from ._data import PN2015, record

FLAT_KEYS = {"replay_x_realtime", "state_bytes_per_patient", "stages_ms_per_window"}


@pytest.fixture(scope="module")
def recordings():
    record("a555l")
    return load_recordings(PN2015, ["a555l", "f362s"])


def test_replay_counts_the_windows_validate_sees(recordings):
    r = replay_speed(recordings[:1], ("carry_forward",), "once", chunk_s=2.0, budget_s=60.0)
    run = replay_record(record("a555l"), PipelineConfig(methods=("carry_forward",), arterial_schedule=Schedule.parse("once")))
    assert r.records == 1
    assert r.windows == len(run.windows) > 100
    assert r.record_s == pytest.approx(recordings[0].duration_s)
    assert r.wall_s > 0 and r.cpu_s > 0 and r.x_realtime > 0
    assert len(r.state_bytes) == 1 and r.state_bytes[0] > 1000  # the serialized patient state
    doc = r.as_dict()
    assert doc["x_realtime"] > 0 and doc["state_bytes_max"] == r.state_bytes[0]


def test_replay_stops_at_the_budget(recordings):
    r = replay_speed(recordings, ("carry_forward",), budget_s=0.0)
    assert r.records == 0 and r.windows == 0


def test_stage_costs_cover_every_stage(recordings):
    s = stage_costs(recordings[:1], max_windows=24, ttt_labels=3, label_every=2, batch=8)
    for key in ("decode", "window", "filters", "infer", "ttt_update_per_label"):
        assert s.ms[key] is not None and s.ms[key] > 0, key
    assert s.extras["ttt_labels"] == 3
    assert s.extras["ttt_update_ms_p50"] <= s.extras["ttt_update_ms_p99"]
    assert s.extras["windows"] >= 24


def _args(tmp_path, parts):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    bench.add_parser(sub)
    return p.parse_args(["bench", "perf", "--data", str(PN2015), "--records", "a555l", "--perf-parts", parts,
                         "--perf-replay-s", "5", "--perf-windows", "16", "--perf-labels", "2",
                         "--perf-methods", "carry_forward", "--json", str(tmp_path / "perf.json")])


def test_bench_perf_command_writes_the_flat_keys(tmp_path, capsys):
    assert "perf" in bench.BENCHES
    args = _args(tmp_path, "replay,stages")
    assert args.func(args) == 0
    doc = json.loads((tmp_path / "perf.json").read_text())
    assert FLAT_KEYS <= set(doc)
    assert set(doc["stages_ms_per_window"]) == {"decode", "window", "filters", "infer", "ttt_update_per_label"}
    assert doc["replay_x_realtime"] > 0
    assert doc["perf"]["machine"]["nproc"] >= 1
    out = capsys.readouterr().out
    assert "replay_x_realtime" in out and "stage ms/window: filters" in out  # the table


def test_reader_maps_an_estimate_to_the_chunk_that_completed_its_window():
    reader = EstimateReader("127.0.0.1:1", "t", 1)
    bed = Bed("p-1", 0, t0_s=1000.0, published=[1001.0 + k for k in range(14)])
    reader.beds["p-1"] = bed
    # the first 10-s window ends at t0 + 10: completed by chunk 9 (covering [t0 + 9, t0 + 10))
    reader._one(json.dumps({"patient_id": "p-1", "window_end": to_iso(1010.0)}).encode(), now=1010.4)
    reader._one(json.dumps({"patient_id": "p-1", "window_end": to_iso(1012.0)}).encode(), now=1013.5)
    reader._one(json.dumps({"patient_id": "other", "window_end": to_iso(1012.0)}).encode(), now=1013.5)
    reader._one(b"not json", now=1013.5)
    assert [round(l, 3) for _, l in reader.latencies] == [0.4, 1.5]
    assert bed.done_k == 11
    assert reader.estimates == 4 and reader.unmatched == 2


def test_probe_verdict_needs_latency_and_flat_lag():
    def probe(p99, slope):
        return ProbeResult(100, 30, 10, 0.5, p99, p99, 500, 150.0, 150.0, slope, 3000, 100.0, 50.0, 300.0)

    assert probe(1.5, 0.3).ok
    assert not probe(2.5, 0.3).ok  # p99 over the limit
    assert not probe(1.5, 5.0).ok  # lag grows by more than 1 % of the offered load
    assert not probe(1.5, None).ok
    assert isinstance(WindowResult, type)


@pytest.mark.kafka
def test_service_bench_runs_end_to_end(recordings):
    """One worker, a short search over 1-2 beds, saturation burst, raw ceiling (the bench starts its own broker)."""
    from bpstream.stream._bench_service import run_service

    t0 = time.time()
    out = run_service(recordings, ("carry_forward",), "once", budget_s=75.0, probe_s=4.0, confirm_s=8.0,
                      start_beds=1, saturation=(4, 14))
    assert "error" not in out, out
    assert out["worker_msgs_per_s"] and out["worker_msgs_per_s"] > 0
    assert out["raw"]["msgs"] >= 4 * 14
    assert out["probes"] and all(p["sent"] > 0 for p in out["probes"])
    assert any(p["windows"] > 0 for p in out["probes"])
    assert out["fetch_wait_ms"]["worker"] == 1500
    assert time.time() - t0 < 180
