"""Nested patient-disjoint cross-validation (``bpstream train --folds K --nested``).

Folds are blocks of record number // 50 dealt round-robin (as ``--folds``). For each outer fold k:

* the outer model is trained on every fold but k (``fold{k}.pt``, what ``validate --folds`` scores fold k with);
* for each other fold j, an inner model is trained on the folds other than k and j and predicts fold j;
* the test-time constants (``fusion`` smoothing, gains, dead bands, variance terms, per-patient gain prior;
  ``frozen`` shrinkage and interval; ``calibration_suggested``'s change threshold) are fitted on those inner
  predictions only, and stored in ``fold{k}.pt``.

Fold k's records therefore never touch its model, its constants or any choice made for it (choices between
designs are made on ``inner{k}/``, below, see ``_select``). The shipped model
(``population.pt``) is trained on every record, its constants fitted on the outer models' out-of-fold
predictions. ``nested.json`` records which models predicted which records for which fit.

With K >= 4, ``inner{k}/`` holds one level further in, for choosing between designs without fold k
(``_select``): fold j (j != k) is scored by the inner model trained on the folds other than k and j
(``inner{j}.pt``), its constants fitted on the other inner folds j' as predicted by models trained without k,
j and j' (K - 3 folds), with a ``folds.json`` that ``validate --folds OUT/inner{k}`` reads. So fold j's
records touch neither that model, nor its constants, nor any model whose predictions fitted them.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from bpstream.models import fit_test_time_constants, record_predictions

from ._fitting import fit_population, log, predict_arrays, training_digest, unlabeled_for

__all__ = ["run_nested"]


def _predictions(pop, arr, mask: np.ndarray, group: int = 0) -> list:
    """Per record of ``mask`` (usable input windows only, as the step scores them), the model's predictions."""
    sub = arr.subset(mask).only_usable()
    if len(sub.y) == 0:
        return []
    p, z = predict_arrays(pop, sub)
    out = []
    for r in np.unique(sub.record):
        g = np.flatnonzero(sub.record == r)
        g = g[np.argsort(sub.t_s[g], kind="stable")]
        out.append(record_predictions(sub.t_s[g].astype(np.float64), p[g], sub.y[g].astype(np.float64),
                                      z[g], group, pop.feat_weight))
    return out


def _fit_constants(pop, recs: list) -> dict:
    center = pop.net.y_mean.detach().numpy().astype(np.float64)
    return fit_test_time_constants(recs, center)


def run_nested(arr, fold_of: dict[str, int], k_folds: int, out: Path, steps: int, seed: int,
               ship: bool = True, unlabeled=None) -> dict:
    """Train and fit everything (see the module docstring); write OUT/fold{k}.pt, population.pt, nested.json.
    ``unlabeled``: windows to pretrain each model's encoder on, restricted per model to its training blocks and
    to blocks without labelled records (``unlabeled_for``)."""
    from bpstream.models import record_block

    from bpstream.stream.records import read_population, write_population

    names = arr.names
    rec_fold = np.array([fold_of[n] for n in names])[arr.record]
    folds = list(range(k_folds))
    models: dict[frozenset, object] = {}

    def model_on(train_folds: frozenset):
        """The population model trained on these folds; kept as OUT/models/train_<folds>.pt, reused when the
        same folds, steps, seed and training windows were trained before (only the test-time constants are
        then refitted)."""
        if train_folds not in models:
            tag = ",".join(map(str, sorted(train_folds)))
            mask = np.isin(rec_fold, sorted(train_folds))
            unl = unlabeled_for(unlabeled, {record_block(n) for n, f in fold_of.items() if f in train_folds},
                                {record_block(n) for n in fold_of})
            key = {"folds": sorted(train_folds), "steps": steps, "seed": seed, "windows": int(mask.sum()),
                   "records": sorted({names[r] for r in np.unique(arr.record[mask])})}
            if unl is not None:  # (models without pretraining keep the key they had)
                key["pretrain"] = {"windows": int(len(unl.t_s)), "records": sorted(
                    {unl.names[r] for r in np.unique(unl.record)})}
            key["contents"] = training_digest(arr, mask, unl)  # windows, labels and training code (since 2026-12-07)
            path, meta = out / "models" / f"train_{tag.replace(',', '-')}.pt", out / "models" / f"train_{tag.replace(',', '-')}.json"
            if path.exists() and meta.exists() and json.loads(meta.read_text()) == key:
                models[train_folds] = read_population(path)
                log(f"[train folds {tag}] reused {path}")
            else:
                models[train_folds] = fit_population(arr, mask, names, steps, seed, f"train folds {tag}", unl)
                write_population(models[train_folds], path)
                meta.write_text(json.dumps(key))
        return models[train_folds]

    doc: dict = {"k": k_folds, "steps": steps, "seed": seed, "outer": []}
    t0 = time.time()
    oof: list = []
    for k in folds:
        outer = model_on(frozenset(folds) - {k})
        inner_recs, inner_doc = [], []
        for j in folds:
            if j == k:
                continue
            inner = model_on(frozenset(folds) - {k, j})
            inner_recs += _predictions(inner, arr, rec_fold == j, group=j)
            inner_doc.append({"predicts_fold": j, "trained_on_folds": sorted(frozenset(folds) - {k, j})})
        fitted = _fit_constants(outer, inner_recs)
        outer.constants.update(fitted)
        write_population(outer, out / f"fold{k}.pt")
        log(f"[outer {k}] constants fitted on {len(inner_recs)} inner records: "
            f"{json.dumps(fitted['fusion']['fit'])}")
        oof += _predictions(outer, arr, rec_fold == k, group=k)
        doc["outer"].append({"fold": k, "weights": f"fold{k}.pt", "trained_on_folds": sorted(frozenset(folds) - {k}),
                             "constants_fitted_on": inner_doc, "constants": _jsonable(fitted)})
    if k_folds >= 4:
        predicted: dict = {}  # (training folds, predicted fold) -> predictions, shared by the (k, j) pairs
        for k in folds:
            _write_inner(out / f"inner{k}", k, folds, model_on, arr, rec_fold, fold_of, predicted)
    if ship:
        pop = model_on(frozenset(folds))
        fitted = _fit_constants(pop, oof)
        pop.constants.update(fitted)
        write_population(pop, out / "population.pt")
        doc["shipped"] = {"weights": "population.pt", "constants_fitted_on": "out-of-fold predictions of the outer models",
                          "constants": _jsonable(fitted)}
        card = {"weights": "population.pt", "data": "PhysioNet/CinC Challenge 2015 training set",
                "records": len(names), **pop.meta, "constants": _jsonable(pop.constants),
                "params": sum(p.numel() for p in pop.net.parameters())}
        (out / "population.json").write_text(json.dumps(card, indent=1))
    doc["train_s"] = round(time.time() - t0, 1)
    (out / "nested.json").write_text(json.dumps(doc, indent=1))
    return doc


def _write_inner(folder: Path, k: int, folds: list[int], model_on, arr, rec_fold: np.ndarray,
                 fold_of: dict[str, int], predicted: dict) -> None:
    """``folder`` = OUT/inner{k} (see the module docstring). ``predicted`` memoizes each (model, fold)
    prediction: outer k with inner j and outer j with inner k need the same ones."""
    from bpstream.stream.records import write_population

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for j in folds:
        if j == k:
            continue
        rest = frozenset(folds) - {k, j}
        recs = []
        for jj in sorted(rest):
            if (rest - {jj}, jj) not in predicted:
                predicted[(rest - {jj}, jj)] = _predictions(model_on(rest - {jj}), arr, rec_fold == jj, group=jj)
            recs += predicted[(rest - {jj}, jj)]
        pop = copy.deepcopy(model_on(rest))
        pop.constants.update(_fit_constants(pop, recs))
        write_population(pop, folder / f"inner{j}.pt")
        log(f"[inner {k}] fold {j}: model on folds {sorted(rest)}, constants on their predictions by models "
            f"without {k}, {j} and the predicted fold: {json.dumps(pop.constants['fusion']['fit'])}")
        entries.append({"fold": j, "weights": f"inner{j}.pt", "trained_on_folds": sorted(rest),
                        "test_records": sorted(n for n, f in fold_of.items() if f == j)})
    doc = {"k": len(folds) - 1, "outer_fold_left_out": k, "folds": entries}
    (folder / "folds.json").write_text(json.dumps(doc, indent=1))


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
