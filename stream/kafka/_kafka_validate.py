"""``bpstream validate --broker URL``: the same validation, with the estimates read back from Kafka.

Replays the records under fresh patient ids (``val<run>-<record>``) with the arterial calibration
commands of the chosen schedule, reads every window's estimate back from ``bp.estimates.v1`` and
scores it with the same sheet and JSON as the in-process run. References are computed in-process
from the same records with the same step (they are never published). Needs running workers with
``--calibration off`` (the default): the replay's commands are the calibrations.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from bpstream.filters import Reason
from bpstream.models import Estimate, Validity

from bpstream.stream.core import BpstreamError
from bpstream.stream.evaluation import RecordRun, replay_record, score_results
from bpstream.stream.evaluation import ScoreSheet
from ._schemas import from_iso
from bpstream.stream.config import Settings
from bpstream.stream.core import PipelineConfig

__all__ = ["validate_via_kafka", "estimate_from_doc"]


def estimate_from_doc(doc: dict) -> Estimate:
    def v(q: str, k: str = "value") -> float | None:
        return doc[q][k] if doc.get(q) else None

    return Estimate(v("sbp"), v("dbp"), v("map"), v("sbp", "sd"), v("dbp", "sd"), v("map", "sd"),
                    Validity(doc["validity"]), tuple(Reason(r) for r in doc.get("reasons", ())))


def _read(settings: Settings, wanted: dict[str, int], timeout_s: float) -> dict[str, list[dict]]:
    from ._topics import consumer

    got: dict[str, dict[int, dict]] = {p: {} for p in wanted}
    c = consumer(settings, settings.topic_estimates, consumer_timeout_ms=1000)
    deadline = time.monotonic() + timeout_s
    try:
        while any(len(got[p]) < n for p, n in wanted.items()) and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=500).values():
                for r in records:
                    patient = r.key.decode("utf-8", "replace") if r.key else None
                    if patient in got:
                        doc = json.loads(r.value)
                        got[patient].setdefault(doc["seq"], doc)  # at-least-once: keep the first copy
    finally:
        c.close()
    return {p: [d[s] for s in sorted(d)] for p, d in got.items()}


def validate_via_kafka(args: argparse.Namespace, config: PipelineConfig, paths: Sequence[Path],
                       settings: Settings | None = None, timeout_s: float | None = None) -> ScoreSheet:
    from ._publish import replay

    settings = (settings or Settings.from_env()).replace(broker=args.broker, chunk_s=args.chunk_s)
    run_tag = f"val{int(time.time())}"
    ids = [f"{run_tag}-{p.name}" for p in paths]
    start_s = float(math.floor(time.time()))
    # what validate knows in-process: the windows, their references and where calibrations fall
    local = {pid: replay_record(p, replace(config, methods=()), None, args.chunk_s) for pid, p in zip(ids, paths)}
    replay(settings, list(paths), speed=0, calibration=str(config.arterial_schedule), start_s=start_s, ids=ids)
    wanted = {pid: len(run.windows) for pid, run in local.items()}
    docs = _read(settings, wanted, timeout_s or 60.0 + 0.05 * sum(wanted.values()))
    methods = sorted({d["model"]["name"] for ds in docs.values() for d in ds})
    if not methods:
        raise BpstreamError(f"no estimates came back on {settings.topic_estimates}: is a worker running "
                            f"(bpstream worker --broker {args.broker})?")
    sheet = ScoreSheet(methods)
    missing = 0
    for pid, run in local.items():
        by_end = {round(from_iso(d["window_end"]) - start_s, 6): d for d in docs[pid]}
        windows = []
        for w in run.windows:
            d = by_end.get(round(w.t_end_s, 6))
            if d is None:
                missing += 1
                continue
            windows.append(replace(w, estimates={d["model"]["name"]: estimate_from_doc(d)}))
        score_results(sheet, RecordRun(run.record, windows, run.events))
    if missing:
        print(f"bpstream validate: {missing} of {sum(wanted.values())} windows never came back from Kafka",
              file=sys.stderr)
    return sheet
