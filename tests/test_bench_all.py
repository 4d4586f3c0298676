"""`bpstream bench perf`: functional smoke tests with tiny sizes. Nothing here asserts a speed."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from bpstream.stream.cli import bench
from bpstream.stream.bench._bench_e2e import Bed, EstimateReader
from bpstream.stream.bench._bench_probe import ProbeResult
from bpstream.stream.bench._bench_replay import load_recordings, replay_speed
from bpstream.stream.bench._bench_stages import stage_costs
from bpstream.stream.evaluation._replay_local import replay_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.kafka._schemas import to_iso
from bpstream.stream.core._step import PipelineConfig

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
    # the work's own cost per 1-s chunk message: half a window of decode + windowing + filters + inference
    st = doc["stages_ms_per_window"]
    assert doc["work_ms_per_msg"] == round((st["decode"] + st["window"] + st["filters"] + st["infer"]) / 2, 4) > 0
    assert doc["cpu_over_work"] is None  # no service part: no worker CPU to compare
    # the work as the step runs it: one-window inference and one state encoding per message
    peaks = doc["perf"]["state_peaks"]
    single, encode = doc["perf"]["stages"]["infer_single_ms"], peaks["encode_ms_median"]
    assert doc["work_as_run_ms_per_msg"] == round(doc["work_ms_per_msg"] + (single - st["infer"]) / 2 + encode, 4)
    # the state's largest value written after any message, in order and behind a lost chunk (not written while
    # chunks are held behind the gap; that state, written only by a command, a rebalance or a stop, beside: larger)
    assert peaks["max_bytes_in_order"] >= doc["perf"]["replay"]["state_bytes_max"]
    held = peaks["max_bytes_with_chunks_held"]
    assert held > max(peaks["max_bytes_one_chunk_lost"], peaks["max_bytes_in_order"])
    assert doc["state_bytes_per_patient"] == max(peaks["max_bytes_one_chunk_lost"], peaks["max_bytes_in_order"])
    assert doc["state_bytes_with_chunks_held"] == held
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
    assert probe(1.5, 4.0).ok  # 80 messages over the 20 s measured: less than one second of 100 beds
    assert not probe(1.5, 6.0).ok  # 120 messages: the worker fell more than a second behind
    assert not probe(1.5, None).ok


@pytest.mark.kafka
def test_service_bench_with_two_worker_processes_reports_the_host(recordings):
    """One consumer group of two worker processes (one per core): the beds found are the host's, CPU summed."""
    from bpstream.stream.bench._bench_service import run_service

    out = run_service(recordings, ("carry_forward",), "once", budget_s=75.0, probe_s=4.0, confirm_s=8.0,
                      start_beds=2, saturation=(8, 14), workers=2)
    assert "error" not in out, out
    assert out["worker_processes"] == 2
    assert out["beds_per_host"] >= 1 and out["beds_per_worker"] == out["beds_per_host"] // 2
    assert out["cpu_ms_per_msg"] and out["cpu_ms_per_msg"] == out["worker_cpu_ms_per_msg"]
    assert any(p["windows"] > 0 for p in out["probes"])


@pytest.mark.kafka
def test_service_bench_runs_end_to_end(recordings):
    """One worker, a short search over 1-2 beds, saturation burst, raw ceiling (the bench starts its own broker)."""
    from bpstream.stream.bench._bench_service import run_service

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


def test_batched_replay_gives_the_same_outputs_and_state(recordings):
    """Pipeline.step_many over blocks of a record (the replay's fast path) changes no output and leaves
    the same patient state as Pipeline.step one chunk at a time."""
    from bpstream.stream.core import state_to_bytes
    from bpstream.stream.records import iter_outputs
    from bpstream.stream.core._step import Pipeline

    config = PipelineConfig(methods=("carry_forward",), arterial_schedule=Schedule.parse("every:60"))
    for rec in recordings:
        slow_states, fast_states = {}, {}
        pipeline = Pipeline(config)
        slow = [repr(o) for o in iter_outputs(pipeline, rec, 2.0, batched=False, states=slow_states)]
        fast = [repr(o) for o in iter_outputs(pipeline, rec, 2.0, batched=True, block=16, states=fast_states)]
        assert fast == slow and len(fast) > 100
        assert state_to_bytes(fast_states[rec.name]) == state_to_bytes(slow_states[rec.name])


def test_window_measures_do_not_depend_on_the_batch(recordings):
    """measure_input of a window inside a batch equals measure_input of that window alone
    (the memo's premise), including batches that mix windows with and without gaps."""
    import numpy as np

    from bpstream.filters._input_quality import DEFAULT_THRESHOLDS, measure_input
    from bpstream.stream.bench._bench_stages import collect_windows
    from bpstream.stream.core._batch import take_row

    windows, _, _, _ = collect_windows(recordings, 1.0, 80)
    ecg = np.stack([w.ecg for w in windows[:40]])
    ppg = np.stack([w.ppg for w in windows[:40]])
    ecg[3, 100:180] = np.nan  # a gap in one window of the batch
    batch = measure_input(ecg, ppg, 125.0, DEFAULT_THRESHOLDS)
    for i in range(len(ecg)):
        alone = measure_input(ecg[i : i + 1], ppg[i : i + 1], 125.0, DEFAULT_THRESHOLDS)
        assert _same(take_row(batch, i, len(ecg)), alone), i


def _same(a, b) -> bool:
    """Exact equality of nested dataclasses of arrays (NaN equal to NaN, dtypes and shapes too)."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return a == b or (a != a and b != b)


def test_worker_batch_sends_the_same_as_one_message_at_a_time(recordings):
    """The worker's micro-batch (several patients, interleaved; Pipeline.step_many) gives the same
    messages and the same table as the messages processed one at a time. In a batch a patient's state
    is written once, on its last message."""
    from bpstream.stream.kafka._agents import Item, Processor
    from bpstream.stream.kafka._codec import encode_waveform
    from bpstream.stream.records._records import iter_chunks
    from bpstream.stream.config._settings import Settings
    from bpstream.stream.core._step import Pipeline

    settings = Settings(methods=("carry_forward",), calibration="every:60", state_every_chunks=1)  # state per batch
    config = PipelineConfig(methods=("carry_forward",), arterial_schedule=Schedule.parse("every:60"))
    streams = {f"p{i}": list(iter_chunks(rec, 1.0, t0_s=1.8e9 - 120))[:40] for i, rec in enumerate(recordings)}
    values = [(pid.encode(), encode_waveform(pid, k, chunks[k])) for k in range(40) for pid, chunks in streams.items()]

    def run(batched: bool) -> tuple[list, dict]:
        proc = Processor(settings, Pipeline(config), clock=lambda: 1.8e9)
        table: dict = {}
        out = []
        for a in range(0, len(values), 16):  # the agent's micro-batches
            batch = values[a : a + 16]
            if batched:
                items = [Item(settings.topic_waveforms, 0, a + i, key, value, table.get(key))
                         for i, (key, value) in enumerate(batch)]
                results = proc.process_batch(items)
                written = [item.key for item, r in zip(items, results) if r.new_state is not None]
                assert sorted(written) == sorted(set(k for k, _ in batch))  # once per patient of the batch
            else:
                items, results = [], []
                for i, (key, value) in enumerate(batch):
                    items.append(Item(settings.topic_waveforms, 0, a + i, key, value, table.get(key)))
                    results.append(proc.process(items[-1]))
                    table[key] = results[-1].new_state or table.get(key)
            for item, result in zip(items, results):
                if result.new_state is not None:
                    table[item.key] = result.new_state
                out.append(result.sends)
        return out, table

    (fast, fast_table), (slow, slow_table) = run(True), run(False)
    assert sum(kind == "estimates" for s in fast for kind, _, _ in s) > 20  # estimates came out
    assert fast == slow and fast_table == slow_table
