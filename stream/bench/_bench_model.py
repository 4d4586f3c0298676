"""``bpstream bench model``: population-model inference cost, TTT update cost and per-patient state size.

On one core (torch threads = 1), with the shipped weights (or ``--model-weights FILE``):
* ``infer_ms_per_window``: features + CNN + both heads on batches of 64 real 10-s windows at 125 Hz
  (median over repeats, divided by 64);
* ``ttt_update_ms_p99``: the 99th percentile of one ``learn_one`` (a label) of the ``ttt`` estimator, replaying
  records with a label every 5th usable window (queues fill to their caps), self-supervised updates included
  in between but timed apart (``ttt_unlabeled_ms_p99``);
* ``state_bytes``: the largest ``to_bytes()`` of a ``ttt`` patient state seen (full queues).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bpstream.stream.core import BpstreamError

__all__ = ["run_bench", "add_arguments", "DEFAULT_RECORDS"]

DEFAULT_RECORDS = ("a555l", "f362s", "v370s")
BATCH = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-weights", help="population weights file (default: the shipped weights)")
    p.add_argument("--model-repeats", type=int, default=5, help="inference repeats; the median is reported")


def _windows(paths: list[Path]):
    from bpstream.filters import ChunkError, Windower

    from bpstream.stream.records import iter_chunks, read_record

    out = []
    for path in paths:
        rec = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg", "abp"))
        windower = Windower()
        wins = []
        for chunk in iter_chunks(rec, 2.0):
            try:
                wins.extend(windower.update(chunk))
            except ChunkError:
                continue
        out.append(wins)
    return out


def run_bench(args: argparse.Namespace) -> dict:
    import torch

    from bpstream.filters import abp_reference
    from bpstream.stream.records import read_population
    from bpstream.models import make_estimator

    from bpstream.stream.records import list_records
    from bpstream.stream.config import Settings
    from ._machine import data_dir

    torch.set_num_threads(1)
    data = data_dir(args)
    names = args.records.split(",") if getattr(args, "records", None) else list(DEFAULT_RECORDS)
    paths = list_records([data], names)
    per_record = _windows(paths)
    windows = [w for ws in per_record for w in ws]
    if len(windows) < BATCH:
        raise BpstreamError(f"need at least {BATCH} windows, got {len(windows)}")
    weights = getattr(args, "model_weights", None)
    pop = read_population(weights or None)

    # -- inference, batches of 64 -----------------------------------------------------------------
    ecg = np.stack([w.ecg for w in windows[:BATCH]])
    ppg = np.stack([w.ppg for w in windows[:BATCH]])
    times = []
    for _ in range(max(1, getattr(args, "model_repeats", 5))):
        t0 = time.perf_counter()
        z = pop.encode_arrays(ecg, ppg)
        pop.absolute(z)
        pop.delta_parts(z, z[:1].repeat(BATCH, 0), np.full((BATCH, 3), 120.0), np.full(BATCH, 60.0))
        times.append(time.perf_counter() - t0)
    infer_ms = 1000.0 * float(np.median(times)) / BATCH

    # -- TTT updates ---------------------------------------------------------------------------
    upd, unl, sizes = [], [], []
    learner = Settings().methods[0]  # the published estimator's updates (key names kept from the ttt era)
    for wins in per_record:
        est = make_estimator(learner, population=pop)
        k = 0
        for w in wins:
            ref = abp_reference(w.abp, fs_hz=w.fs_hz, t_s=w.t_end_s)
            est.predict_one(w)
            if ref.usable and k % 5 == 0:
                t0 = time.perf_counter()
                est.learn_one(w, ref)
                upd.append(time.perf_counter() - t0)
            else:
                t0 = time.perf_counter()
                est.learn_unlabeled(w)
                unl.append(time.perf_counter() - t0)
            k += 1
            sizes.append(len(est.to_bytes()))
    if not upd:
        raise BpstreamError("no usable labels in the benchmark records")
    return {"model": {
        "infer_ms_per_window": round(infer_ms, 4),
        "learner": learner,
        "ttt_update_ms_p99": round(1000.0 * float(np.quantile(upd, 0.99)), 3),
        "ttt_update_ms_median": round(1000.0 * float(np.median(upd)), 3),
        "ttt_unlabeled_ms_p99": round(1000.0 * float(np.quantile(unl, 0.99)), 3) if unl else None,
        "state_bytes": int(max(sizes)),
        "n_updates": len(upd),
        "params": int(sum(p.numel() for p in pop.net.parameters())),
        "batch": BATCH,
        "threads": 1,
        "records": [p.name for p in paths],
    }}
