"""Bench part 3, one probe: ``n`` simulated beds stream for a while through the worker; latency
percentiles, consumer-lag slope, worker CPU and RSS (the harness lives in ``_bench_e2e``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._bench_e2e import Bed, Beds, EstimateReader, WorkerProcess

__all__ = ["ProbeResult", "run_probe"]


@dataclass
class ProbeResult:
    beds: int
    duration_s: float
    measured_from_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None
    windows: int
    lag_start: float | None
    lag_end: float | None
    lag_slope_per_s: float | None
    sent: int
    offered_msgs_per_s: float
    worker_cpu_pct: float | None
    worker_rss_mb: float | None
    p99_limit_s: float = 2.0
    backlog_after_drain: int = 0  # messages of this probe still unprocessed when the next one may start
    drain_s: float = 0.0

    @property
    def growing(self) -> bool:
        """Lag grew, over the measured part, by more than one second of the beds' messages (at 2 minutes
        that is a slope of 0.8 % of the offered load; short search probes are held to the same total)."""
        if self.lag_slope_per_s is None:
            return True
        measured_s = max(self.duration_s - self.measured_from_s, 1.0)
        return self.lag_slope_per_s * measured_s > max(float(self.beds), 10.0)

    @property
    def ok(self) -> bool:
        return (self.latency_p99_s is not None and self.latency_p99_s <= self.p99_limit_s and not self.growing
                and self.windows > 0)

    @property
    def worker_cpu_ms_per_msg(self) -> float | None:
        """Worker CPU per chunk message (all its threads): what one dedicated core's capacity follows from."""
        if self.worker_cpu_pct is None or self.offered_msgs_per_s <= 0:
            return None
        return 10.0 * self.worker_cpu_pct / self.offered_msgs_per_s

    def as_dict(self) -> dict:
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}
        d["worker_cpu_ms_per_msg"] = None if self.worker_cpu_ms_per_msg is None else round(self.worker_cpu_ms_per_msg, 3)
        d["growing_lag"] = self.growing
        d["ok"] = self.ok
        return d


def _percentile(xs: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if len(xs) else None


async def run_probe(producer, reader: EstimateReader, beds_src: Beds, worker: WorkerProcess, topic: str, tag: str,
                    n_beds: int, duration_s: float, ramp_s: float, p99_limit_s: float = 2.0,
                    drain_s: float = 15.0) -> ProbeResult:
    """``n_beds`` beds join over ``ramp_s`` s and stream for ``duration_s`` s; measured after all joined."""
    rng = np.random.default_rng(n_beds)
    start = time.time() + 0.5
    joins = np.sort(rng.uniform(0.0, ramp_s, n_beds)) if ramp_s > 0 else rng.uniform(0.0, 1.0, n_beds)
    beds = [Bed(f"bench-{tag}-{i:05d}", i, float(start + j)) for i, j in enumerate(joins)]
    for b in beds:
        reader.beds[b.patient] = b
    end = start + duration_s
    measured_from = start + ramp_s + 12.0  # after the last bed's first window (10 s) could come back
    lag_samples: list[tuple[float, float]] = []
    cpu0, t_cpu0 = worker.cpu_s(), time.time()
    sent = 0
    next_sample = start
    # one pass per second-slot: publish every bed whose chunk is due
    k_of = np.zeros(n_beds, dtype=np.int64)
    due = np.array([b.t0_s + 1.0 for b in beds])
    while True:
        now = time.time()
        if now >= end:
            break
        ready = np.nonzero(due <= now)[0]
        for i in ready:
            b, k = beds[i], int(k_of[i])
            await producer.send(topic, beds_src.message(b.patient, b.index, k, b.t0_s + k), key=b.patient.encode())
            b.published.append(time.time())
            k_of[i] += 1
            due[i] += 1.0
            sent += 1
        if now >= next_sample:
            next_sample += 1.0
            if now >= measured_from - 10.0:
                lag_samples.append((now, float(sum(len(b.published) - (b.done_k + 1) for b in beds))))
        wait = float(due.min()) - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, 0.02))
        else:
            await asyncio.sleep(0)
    cpu1, t_cpu1 = worker.cpu_s(), time.time()
    rss = worker.rss_mb()
    # let the last windows come back (not measured for lag; their latencies count if within the probe), and
    # let a failed probe's backlog clear before the next probe starts: wait while the backlog shrinks
    t_stop = time.time()
    backlog, best, t_best = 0, None, t_stop
    while time.time() - t_stop < drain_s:
        backlog = sum(max(0, len(b.published) - (b.done_k + 2)) for b in beds)
        if backlog == 0:
            break
        if best is None or backlog < best:
            best, t_best = backlog, time.time()
        elif time.time() - t_best > 15.0:  # no progress for 15 s: the rest will not come back
            break
        await asyncio.sleep(0.25)
    lat = [l for (t_rx, l) in reader.latencies if t_rx >= measured_from]
    ours = {b.patient for b in beds}
    for b in beds:
        reader.beds.pop(b.patient, None)
    del ours
    reader.latencies.clear()
    slope = None
    steady = [(t, v) for t, v in lag_samples if t >= measured_from]
    if len(steady) >= 5:
        ts, vs = np.array(steady).T
        slope = float(np.polyfit(ts - ts[0], vs, 1)[0])
    cpu = None if cpu0 is None or cpu1 is None else 100.0 * (cpu1 - cpu0) / (t_cpu1 - t_cpu0)
    return ProbeResult(n_beds, duration_s, round(measured_from - start, 1), _percentile(lat, 50), _percentile(lat, 99),
                       max(lat) if lat else None, len(lat), steady[0][1] if steady else None,
                       steady[-1][1] if steady else None, slope, sent, sent / max(duration_s, 1e-9), cpu, rss,
                       p99_limit_s, backlog, round(time.time() - t_stop, 1))
