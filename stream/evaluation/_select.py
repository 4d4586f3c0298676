"""Choosing the published estimator on inner folds only (``bpstream train --nested --select``).

For each outer fold k, the records of the other folds are replayed through the full step (filters, schedule,
test-time learning) with ``OUT/inner{k}/`` (see ``_nested``): each record by the inner model and constants
that never saw its fold. A candidate's score is the mean, over outer folds, calibration schedules and
SBP/DBP/MAP, of its MAE over ``carry_forward``'s on the same windows. The lowest score wins; a candidate
within ``tie`` of the first (the incumbent) does not replace it. Outer folds are never replayed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bpstream.stream.core import PipelineConfig, Schedule

from ._estimators import resolver
from ._replay_local import replay_record, score_results
from ._report import QUANTITIES, ScoreSheet

__all__ = ["SELECT_CANDIDATES", "SELECT_CALIBRATIONS", "score_selection", "select_published"]

SELECT_CANDIDATES = ("fusion", "ttt")  # the first is the incumbent (the published default)
SELECT_CALIBRATIONS = ("once", "every:60")


def score_selection(results: Mapping[int, Mapping[str, Mapping[str, Any]]], candidates: Sequence[str],
                    tie: float = 0.002) -> dict[str, Any]:
    """``results[k][calibration]`` = a ``validate`` results document (its ``methods`` block) of outer fold k's
    inner records. Returns ``{"ratios": {m: [[[ratio per quantity] per calibration] per k]}, "score": {m: s},
    "chosen": m, "ratio_calibrations": [the calibrations in the order of the ratios' middle axis (sorted)]}``."""
    ratios: dict[str, list] = {m: [] for m in candidates}
    for k in sorted(results):
        for m in candidates:
            per_cal = []
            for cal in sorted(results[k]):
                methods = results[k][cal]["methods"]
                per_cal.append([methods[m][q]["mae"] / methods["carry_forward"][q]["mae"] for q in QUANTITIES])
            ratios[m].append(per_cal)
    score = {m: float(np.mean(ratios[m])) for m in candidates}
    chosen = candidates[0]
    for m in candidates[1:]:
        if score[m] < score[chosen] - tie:
            chosen = m
    order = sorted(next(iter(results.values()))) if results else []
    return {"ratios": ratios, "ratio_calibrations": order, "score": score, "chosen": chosen, "tie": tie}


def _inner_records(folder: Path) -> list[str]:
    doc = json.loads((folder / "folds.json").read_text())
    return sorted(n for f in doc["folds"] for n in f["test_records"])


def select_published(out: Path, paths: Sequence[Path], candidates: Sequence[str] = SELECT_CANDIDATES,
                     calibrations: Sequence[str] = SELECT_CALIBRATIONS, chunk_s: float = 2.0,
                     log=lambda msg: None) -> dict[str, Any]:
    """Replay every outer fold's inner records (see the module docstring); write and return OUT/selection.json."""
    methods = tuple(candidates) + ("carry_forward",)
    by_name = {Path(p).name: p for p in paths}
    results: dict[int, dict[str, Any]] = {}
    k_folds = json.loads((out / "nested.json").read_text())["k"]  # this run's folds (not a stale inner{k} of another K)
    for k in range(k_folds):
        folder = out / f"inner{k}"
        names = [n for n in _inner_records(folder) if n in by_name]
        factories_for = resolver(methods, str(folder))
        results[k] = {}
        for cal in calibrations:
            config = PipelineConfig(methods=methods, arterial_schedule=Schedule.parse(cal))
            sheet = ScoreSheet(methods)
            for name in names:
                score_results(sheet, replay_record(by_name[name], config, factories_for(name), chunk_s))
            results[k][cal] = sheet.to_json({"calibration": cal, "folds": str(folder)})
            mae = {m: [round(results[k][cal]["methods"][m][q]["mae"], 3) for q in QUANTITIES] for m in methods}
            log(f"[select] outer {k} left out, {len(names)} inner records, {cal}: MAE {json.dumps(mae)}")
    doc = score_selection(results, tuple(candidates))
    doc.update({"candidates": list(candidates), "calibrations": list(calibrations),
                "rule": "lowest mean MAE / carry_forward MAE over outer folds, calibrations and quantities, "
                        "on inner records only; within tie of the incumbent (the first) keeps it",
                "inner_mae": {str(k): {cal: {m: [r["methods"][m][q]["mae"] for q in QUANTITIES] for m in methods}
                                       for cal, r in v.items()} for k, v in results.items()}})
    (out / "selection.json").write_text(json.dumps(doc, indent=1))
    return doc
