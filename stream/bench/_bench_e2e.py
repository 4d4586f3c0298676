"""Bench parts 3-5, the harness: a loopback broker, a worker process, simulated beds, a reader.

Beds replay records in real time as ``bp.waveforms.v1`` chunks (one 1-s chunk per second per bed,
distinct patient ids, ECG + PPG + ABP so the worker's arterial calibration schedule applies). A bed
publishes chunk ``k`` when its second ends (wall clock = stream time); a reader on
``bp.estimates.v1`` maps each estimate's window end back to the chunk that completed the window, so
latency = estimate received - that chunk published. Consumer lag (chunks published minus chunks whose
windows came back) is sampled every second.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence


from bpstream.stream.records import Recording, iter_chunks
from bpstream.stream.config import Settings

__all__ = ["WorkerProcess", "Beds", "Bed", "EstimateReader", "rss_mb"]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class WorkerProcess:
    """``bpstream worker`` in its own process (its RSS is the worker's memory)."""

    def __init__(self, settings: Settings, methods: Sequence[str], calibration: str, log_path: Path,
                 fetch_wait_ms: int | None = None):
        self.fetch_wait_ms = fetch_wait_ms  # None: faust's own (1500 ms); else the bench-only patched worker
        self.settings = settings
        self.methods = tuple(methods)
        self.calibration = calibration
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPSTREAM_")}
        env.update(self.settings.replace(methods=self.methods, calibration=self.calibration, store="memory://",
                                         log_level="warning").to_env())
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self._log = open(self.log_path, "wb")
        cmd = ([sys.executable, "-m", "bpstream.stream.cli", "worker"] if self.fetch_wait_ms is None else
               [sys.executable, "-m", "bpstream.stream.cli._bench_worker", str(int(self.fetch_wait_ms))])
        self.proc = subprocess.Popen(cmd, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float | None:
        return rss_mb(self.proc.pid) if self.proc is not None else None

    def cpu_s(self) -> float | None:
        try:
            parts = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError):
            return None

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


class WorkerGroup:
    """``n`` worker processes in one consumer group (one per core: the way to use a host's cores); the
    bench reads their summed CPU and memory as the host's."""

    def __init__(self, workers: Sequence[WorkerProcess]):
        self.workers = list(workers)

    def start(self) -> "WorkerGroup":
        for w in self.workers:
            w.start()
        return self

    @property
    def alive(self) -> bool:
        return all(w.alive for w in self.workers)

    def rss_mb(self) -> float | None:
        parts = [w.rss_mb() for w in self.workers]
        return None if any(p is None for p in parts) else float(sum(parts))

    def cpu_s(self) -> float | None:
        parts = [w.cpu_s() for w in self.workers]
        return None if any(p is None for p in parts) else float(sum(parts))

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


def _iso_s(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Beds:
    """Pre-encoded chunks of records; builds ``bp.waveforms.v1`` messages for any bed and second."""

    def __init__(self, recordings: Sequence[Recording], chunk_s: float = 1.0):
        from bpstream.stream.kafka import encode_channel

        self.chunk_s = chunk_s
        self.channels: list[list[dict]] = []
        for rec in recordings:
            per = []
            for chunk in iter_chunks(rec, chunk_s):
                if any(len(x) != round(chunk_s * chunk.fs_hz[r]) for r, x in chunk.signals.items()):
                    break  # keep whole chunks of the first segment only
                try:
                    per.append({r: encode_channel(x, chunk.fs_hz[r]) for r, x in chunk.signals.items()})
                except ValueError:  # NaN samples cannot travel as float32: end this record here
                    break
            if len(per) >= 20:
                self.channels.append(per)
        if not self.channels:
            raise ValueError("no record gives 20 clean chunks")

    def message(self, patient: str, bed: int, k: int, t_start_s: float) -> bytes:
        from bpstream.stream.kafka import dumps
        from bpstream.stream.kafka import WAVEFORMS, to_iso

        chunks = self.channels[bed % len(self.channels)]
        doc = {"schema": WAVEFORMS, "patient_id": patient, "seq": k, "start_time": to_iso(t_start_s),
               "channels": chunks[k % len(chunks)], "bed": f"bed-{bed}"}
        return dumps(doc)


@dataclass
class Bed:
    patient: str
    index: int
    t0_s: float  # stream (= wall) time of chunk 0's first sample
    published: list[float] = field(default_factory=list)  # wall time chunk k was sent
    done_k: int = -1  # highest chunk index whose window came back


class EstimateReader:
    """Reads ``bp.estimates.v1`` from the end; matches estimates to the chunk that completed them."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, fetch_wait_ms: int = 100,
                 isolation_level: str = "read_uncommitted"):
        self.bootstrap, self.topic, self.partitions, self.fetch_wait_ms = bootstrap, topic, partitions, fetch_wait_ms
        self.isolation_level = isolation_level  # read_committed under exactly_once: what a consumer would see
        self.beds: dict[str, Bed] = {}
        self.latencies: list[tuple[float, float]] = []  # (received wall time, latency s)
        self.estimates = 0
        self.unmatched = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=self.fetch_wait_ms, auto_offset_reset="latest",
                                         max_partition_fetch_bytes=8 * 2**20, isolation_level=self.isolation_level)
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.time()
            for records in batches.values():
                for r in records:
                    self._one(r.value, now)

    def _one(self, value: bytes, now: float) -> None:
        self.estimates += 1
        try:
            doc = json.loads(value)
            bed = self.beds.get(doc["patient_id"])
            t_end = _iso_s(doc["window_end"])
        except (ValueError, KeyError, TypeError):
            self.unmatched += 1
            return
        if bed is None:
            self.unmatched += 1
            return
        k = int(math.ceil(t_end - bed.t0_s - 1e-3)) - 1  # chunk k covers [t0 + k, t0 + k + 1)
        if 0 <= k < len(bed.published):
            self.latencies.append((now, now - bed.published[k]))
            bed.done_k = max(bed.done_k, k)
        else:
            self.unmatched += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.consumer.stop()
