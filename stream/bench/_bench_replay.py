"""Bench part 1: in-process replay speed of the full per-patient loop, as a multiple of real time.

The loop is the very ``Pipeline.step`` that ``bpstream validate`` and the worker run (input and label
filters, every estimator's predict, calibrations, test-time training), fed the records' own chunks.
Records are read before the clock starts (reading is reported apart); the clock covers chunking and
stepping only, on one core (torch and BLAS limited to one thread). ``x_realtime`` is record seconds
over wall seconds; ``x_realtime_cpu`` over the process's CPU seconds (what a dedicated core would
give on a machine shared with other load).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np


from bpstream.stream.evaluation import available_methods
from bpstream.stream.core import WindowResult
from bpstream.stream.records import Recording, iter_outputs, list_records, read_record
from bpstream.stream.core import Schedule
from bpstream.stream.core import Pipeline, PipelineConfig

__all__ = ["ReplayResult", "one_core", "replay_speed", "service_methods", "state_bytes", "load_recordings", "factories",
           "population_or_stand_in"]

# the product's default first (what a service publishes); the estimators that exist are used
PREFERRED = ("fusion", "ttt", "offset", "frozen", "carry_forward", "mean")


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Limit torch and the BLAS/OpenMP pools to one thread for the duration (restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            limiter = contextlib.nullcontext()
        else:
            limiter = threadpool_limits(1)
        with limiter:
            yield
    finally:
        torch.set_num_threads(before)


def service_methods() -> tuple[str, ...]:
    """The method a service publishes: the most capable estimator that is registered."""
    got = available_methods(PREFERRED)
    return got[:1] or ("carry_forward",)


def population_or_stand_in():
    """The shipped population model, or (weights not trained yet) an untrained one of the same shape.

    Returns ``(population, note)``. Costs do not depend on the weights' values.
    """
    from bpstream.models import Population, default_population

    try:
        return default_population(), "shipped"
    except (FileNotFoundError, OSError, ValueError):
        import torch

        from bpstream.models import PopulationNet

        torch.manual_seed(0)
        return Population(PopulationNet()), "untrained stand-in (shipped weights missing)"


def factories(methods: Sequence[str]) -> tuple[dict, str]:
    """Estimator factories for ``methods``; model estimators share one population (as the default does)."""
    from bpstream.models import make_estimator

    model_methods = {"frozen", "offset", "ttt", "fusion"}
    note = "n/a"
    pop = None
    if model_methods & set(methods):
        pop, note = population_or_stand_in()
    out = {m: ((lambda m=m: make_estimator(m, population=pop)) if m in model_methods else (lambda m=m: make_estimator(m)))
           for m in methods}
    return out, note


def state_bytes(pipeline: Pipeline, state) -> int | None:
    """Bytes of one patient's serialized state (the worker's table value), or None without a codec."""
    dumps = getattr(pipeline, "dumps", None)
    if dumps is not None:
        return len(dumps(state))
    try:
        from bpstream.stream.core import state_to_bytes
    except ImportError:
        return None
    return len(state_to_bytes(state))


def load_recordings(data_dir: str | Path, names: Sequence[str] | None = None, limit: int | None = None) -> list[Recording]:
    paths = list_records([data_dir], names)
    if limit is not None:
        # spread over the set (record numbers run through patient blocks), deterministic
        idx = np.unique(np.linspace(0, len(paths) - 1, num=min(limit, len(paths))).round().astype(int))
        paths = [paths[i] for i in idx]
    return [read_record(p, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg")) for p in paths]


@dataclass
class ReplayResult:
    methods: tuple[str, ...]
    calibration: str
    chunk_s: float
    records: int = 0
    windows: int = 0
    record_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    read_s: float = 0.0
    state_bytes: list[int] = field(default_factory=list)
    weights: str = "n/a"

    @property
    def x_realtime(self) -> float:
        return self.record_s / self.wall_s if self.wall_s > 0 else float("nan")

    def as_dict(self) -> dict:
        sb = self.state_bytes
        return {"methods": list(self.methods), "weights": self.weights, "calibration": self.calibration, "chunk_s": self.chunk_s,
                "records": self.records, "windows": self.windows, "record_s": round(self.record_s, 1),
                "wall_s": round(self.wall_s, 3), "read_s": round(self.read_s, 3),
                "x_realtime": round(self.x_realtime, 1), "cpu_s": round(self.cpu_s, 3),
                "x_realtime_cpu": round(self.record_s / self.cpu_s, 1) if self.cpu_s > 0 else None,
                "ms_per_window": round(1e3 * self.wall_s / self.windows, 4) if self.windows else None,
                "state_bytes_median": int(np.median(sb)) if sb else None,
                "state_bytes_max": int(max(sb)) if sb else None}


def replay_speed(recordings: Sequence[Recording], methods: Sequence[str] | None = None, calibration: str = "once",
                 chunk_s: float = 2.0, budget_s: float = 60.0, batched: bool = True) -> ReplayResult:
    """Replay ``recordings`` (in order, each a fresh patient) until done or ``budget_s`` of wall time.

    Returns record seconds over wall seconds; the state size is taken at the end of each record.
    """
    methods = tuple(methods) if methods else service_methods()
    config = PipelineConfig(methods=methods, arterial_schedule=Schedule.parse(calibration))
    facts, result_note = factories(methods)
    result = ReplayResult(methods, calibration, chunk_s, weights=result_note)
    with one_core():
        # warm-up outside the clock: build the estimators once (weights load, lazy imports)
        if recordings:
            Pipeline(config, facts).new_state()
        for rec in recordings:
            if result.wall_s >= budget_s:
                break
            pipeline = Pipeline(config, facts)
            t0, c0 = time.perf_counter(), time.process_time()
            states: dict = {}
            for out in iter_outputs(pipeline, rec, chunk_s, batched=batched, states=states):  # what validate runs
                result.windows += isinstance(out, WindowResult)
            state = states.get(rec.name)
            result.wall_s += time.perf_counter() - t0
            result.cpu_s += time.process_time() - c0
            result.records += 1
            result.record_s += rec.duration_s
            if state is not None:
                n = state_bytes(pipeline, state)
                if n is not None:
                    result.state_bytes.append(n)
    return result
