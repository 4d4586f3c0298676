"""``bpstream bench perf``: replay speed, stage costs, beds per worker, latency, raw ceiling, memory.

One run (part of ``bpstream bench`` / ``bench all``), about 8 minutes on a 2-core machine:

1. ``replay``: in-process replay of the full loop over the records, x real time, one core;
2. ``stages``: ms per window of decode, windowing, filters, batched inference, TTT update per label;
3. ``service``: a Tansu broker on loopback, one ``bpstream worker`` process, simulated beds in real
   time; the largest bed count with latency p99 <= 2 s and no growing lag (doubling, then
   bisecting, short probes; the best count is then held for the confirmation run), the worker's
   saturated throughput and RSS, and a bare aiokafka consumer reading the same chunks (the ceiling).

Returns the flat keys of issue 6 at the top level of the bench document, with the details under
``"perf"``. Nothing here asserts a target; the README quotes the numbers.
"""

from __future__ import annotations

import argparse
import time

from ._bench_replay import load_recordings, replay_speed, service_methods
from ._machine import data_dir, machine

__all__ = ["run_bench", "add_arguments", "machine"]

PARTS = ("replay", "stages", "service")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("perf (bpstream bench perf)")
    g.add_argument("--perf-parts", default=",".join(PARTS), help="comma-separated: replay,stages,service")
    g.add_argument("--perf-replay-s", type=float, default=45.0, help="wall-time budget of the replay (s)")
    g.add_argument("--perf-records", type=int, default=None, help="at most this many records (spread over the set)")
    g.add_argument("--perf-calibration", default="once", help="arterial calibration schedule (validate's default: once)")
    g.add_argument("--perf-methods", help="estimators (default: the first registered of fusion/ttt/offset/frozen/...)")
    g.add_argument("--perf-windows", type=int, default=640, help="windows for the stage timings")
    g.add_argument("--perf-labels", type=int, default=200, help="labels for the TTT update timing")
    g.add_argument("--perf-service-s", type=float, default=450.0, help="wall-time budget of the service part (s)")
    g.add_argument("--perf-probe-s", type=float, default=20.0, help="length of a search probe (s)")
    g.add_argument("--perf-confirm-s", type=float, default=120.0, help="length of the confirmation run (s)")
    g.add_argument("--perf-start-beds", type=int, default=None, help="first bed count of the search")
    g.add_argument("--perf-fetch-wait-ms", type=int, default=None,
                   help="what-if: run the worker with this consumer fetch wait (faust fixes 1500 ms)")
    g.add_argument("--perf-p99-s", type=float, default=2.0, help="latency limit at p99 (s)")
    g.add_argument("--engine", choices=("tansu", "kafka"), default="tansu",
                   help="broker of the service part: tansu (default) or kafka (Apache Kafka, KRaft; Java + Maven)")
    g.add_argument("--perf-workers", type=int, default=None,
                   help="worker processes in the service part's consumer group (default: the host's cores, nproc)")
    g.add_argument("--perf-guarantee", choices=("at_least_once", "exactly_once"), default="at_least_once",
                   help="the worker's BPSTREAM_PROCESSING_GUARANTEE in the service part (exactly_once: --engine kafka)")


def run_bench(args: argparse.Namespace) -> dict:
    parts = [p.strip() for p in (getattr(args, "perf_parts", None) or ",".join(PARTS)).split(",") if p.strip()]
    names = args.records.split(",") if getattr(args, "records", None) else None
    methods = tuple(args.perf_methods.split(",")) if getattr(args, "perf_methods", None) else service_methods()
    t0 = time.perf_counter()
    recordings = load_recordings(data_dir(args), names, getattr(args, "perf_records", None))
    read_s = time.perf_counter() - t0
    engine = getattr(args, "engine", "tansu")
    perf: dict = {"machine": machine(), "engine": engine, "methods": list(methods), "calibration": args.perf_calibration,
                  "records_read_s": round(read_s, 2)}
    flat: dict = {"engine": engine}
    if "replay" in parts:
        r = replay_speed(recordings, methods, args.perf_calibration, chunk_s=2.0, budget_s=args.perf_replay_s)
        perf["replay"] = r.as_dict()
        flat["replay_x_realtime"] = perf["replay"]["x_realtime"]
        perf["load_after_replay"] = machine()["loadavg"]
        print(f"[perf] replay: {perf['replay']}", flush=True)
        from ._bench_replay import factories
        from ._bench_state import state_peaks

        # after every message, in order and behind a lost chunk (the replay's figure is each record's end state)
        perf["state_peaks"] = state_peaks(recordings[:4], methods, args.perf_calibration, factories(methods)[0])
        flat["state_bytes_per_patient"] = max(perf["replay"]["state_bytes_max"] or 0,
                                              perf["state_peaks"]["max_bytes_in_order"],
                                              perf["state_peaks"]["max_bytes_one_chunk_lost"])
        flat["state_bytes_with_chunks_held"] = perf["state_peaks"]["max_bytes_with_chunks_held"]
        print(f"[perf] state peaks: {perf['state_peaks']}", flush=True)
    if "stages" in parts:
        from ._bench_stages import stage_costs

        s = stage_costs(recordings, max_windows=args.perf_windows, ttt_labels=args.perf_labels)
        flat["stages_ms_per_window"] = {k: s.ms.get(k) for k in ("decode", "window", "filters", "infer",
                                                                    "ttt_update_per_label")}
        perf["stages"] = {"ms_per_window": s.ms, **s.extras}
        perf["load_after_stages"] = machine()["loadavg"]
        print(f"[perf] stages: {perf['stages']}", flush=True)
    if "service" in parts:
        from ._bench_replay import population_or_stand_in
        from ._bench_service import run_service

        svc_methods = methods
        if {"frozen", "offset", "ttt"} & set(methods) and population_or_stand_in()[1] != "shipped":
            # the worker loads the shipped weights itself; without them every window would dead-letter
            svc_methods = ("carry_forward",)
            perf["service_methods_note"] = "shipped weights missing: the worker ran carry_forward"
        perf["service_methods"] = list(svc_methods)
        svc = run_service(recordings, svc_methods, args.perf_calibration, budget_s=args.perf_service_s,
                          probe_s=args.perf_probe_s, confirm_s=args.perf_confirm_s,
                          start_beds=args.perf_start_beds, p99_limit_s=args.perf_p99_s,
                          fetch_wait_ms=args.perf_fetch_wait_ms, engine=getattr(args, "engine", "tansu"),
                          guarantee=getattr(args, "perf_guarantee", "at_least_once"),
                          workers=getattr(args, "perf_workers", None) or machine()["nproc"])
        perf["service"] = svc
        for key in ("worker_processes", "beds_per_host", "beds_per_worker", "latency_p50_s", "latency_p99_s",
                    "worker_msgs_per_s", "raw_consume_msgs_per_s", "worker_rss_mb", "cpu_ms_per_msg"):
            flat[key] = svc.get(key)
        flat["beds_per_host_confirmed"] = svc.get("confirmed")  # held the full confirmation run at that count
        perf["load_after_service"] = machine()["loadavg"]
        perf["service_summary"] = {k: svc.get(k) for k in ("confirmed", "confirm_s", "worker_cpu_ms_per_msg",
                                                           "beds_per_core_projected", "worker_over_raw")}
    flat.update(work_cost(flat, perf))
    perf["wall_s"] = round(time.perf_counter() - t0, 1)
    print(format_table(flat, perf), flush=True)
    return {**flat, "perf": perf}


def work_cost(flat: dict, perf: dict | None = None, chunk_s: float = 1.0, hop_s: float = 2.0) -> dict:
    """The work itself per chunk message of the service part (1-s chunks, a window every 2 s: half a
    window per message): decode + windowing + filters + batched inference, from the stage costs (issue 14's
    definition); and the worker's CPU per message over it (what the framework, state and IO around the work
    cost). Beside it, the work as the step runs it today: inference one window at a time (the step encodes in
    ``predict_one``) and one state encoding per message (``BPSTREAM_STATE_EVERY_CHUNKS`` 1, hundreds of beds)."""
    st = flat.get("stages_ms_per_window") or {}
    parts = [st.get(k) for k in ("decode", "window", "filters", "infer")]
    work = None if any(p is None for p in parts) else round(sum(parts) * chunk_s / hop_s, 4)
    cpu = flat.get("cpu_ms_per_msg")
    out = {"work_ms_per_msg": work, "cpu_over_work": round(cpu / work, 2) if cpu and work else None}
    single = ((perf or {}).get("stages") or {}).get("infer_single_ms")
    encode = ((perf or {}).get("state_peaks") or {}).get("encode_ms_median")
    if work is not None and single is not None and encode is not None:
        as_run = round(work + (single - st["infer"]) * chunk_s / hop_s + encode, 4)
        out["work_as_run_ms_per_msg"] = as_run
        out["cpu_over_work_as_run"] = round(cpu / as_run, 2) if cpu else None
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


TARGETS = {"replay_x_realtime": ">= 1000", "beds_per_host": ">= 1000", "cpu_over_work": "<= 1.5", "latency_p99_s": "<= 2 (at N beds)",
           "ttt_update_per_label": "<= 50 (p99)", "state_bytes_per_patient": "<= 65536", "infer": "<= 1"}


def format_table(flat: dict, perf: dict) -> str:
    m = perf["machine"]
    lines = [f"bpstream bench perf  {m['date_utc']}  nproc={m['nproc']}  cpu={m['cpu']}  load={m['loadavg']}",
             f"methods={','.join(perf['methods'])}  calibration={perf['calibration']}", "",
             f"{'measure':34s} {'value':>12s}   target"]
    rows = [(k, v) for k, v in flat.items() if k != "stages_ms_per_window"]
    rows += [(f"stage ms/window: {k}", v) for k, v in (flat.get("stages_ms_per_window") or {}).items()]
    for k, v in rows:
        tkey = k.split(": ")[-1]
        lines.append(f"{k:34s} {_fmt(v):>12s}   {TARGETS.get(tkey, '')}")
    svc = perf.get("service") or {}
    for k in ("confirmed", "worker_cpu_ms_per_msg", "beds_per_core_projected", "worker_over_raw"):
        if k in svc:
            lines.append(f"{'service: ' + k:34s} {_fmt(svc[k]):>12s}")
    if svc.get("fetch_wait_ms"):
        how = "patched, bench-only what-if" if svc.get("fetch_wait_note") else "faust's fixed value"
        lines.append(f"fetch wait: worker {svc['fetch_wait_ms']['worker']} ms ({how}), "
                     f"bench reader {svc['fetch_wait_ms']['reader']} ms"
                     + ("; Tansu holds each fetch near the wait" if perf.get("engine", "tansu") == "tansu" else
                        "; Apache Kafka answers a fetch as soon as data is there"))
    return "\n".join(lines)
