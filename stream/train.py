"""``bpstream train``: train the population model on records, optionally as patient-disjoint folds.

Without ``--folds``: one model on all records -> OUT/population.pt (+ OUT/population.json, the card);
copy it to models/weights/ to ship it. With ``--folds K``: OUT/fold{k}.pt for k = 0..K-1 and
OUT/folds.json, which lists each fold's test records (``bpstream validate --folds OUT`` scores every record
with the model of the fold that held it out). Folds are blocks of record numbers (number // 50) dealt
round-robin, so nearby records (possibly the same patient) never straddle training and test.
Within each model's training records one block is held out to fit the uncertainty temperatures and the
delta shrinkage (never the test fold).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ._errors import BpstreamError

FOLDS_FILE = "folds.json"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the population model (optionally patient-disjoint folds)")
    p.add_argument("paths", nargs="*", help="WFDB record files or folders (default: the demo data folder)")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--folds", type=int, default=0, help="K patient-disjoint folds (blocks of number // 50)")
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--steps", type=int, default=1200, help="optimisation steps per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--cache", default="runs/cache", help="git-ignored folder for derived arrays ('' = none)")
    p.set_defaults(func=run)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fit(arr, train_mask: np.ndarray, names: list[str], steps: int, seed: int, tag: str):
    from bpstream.models._population import Population
    from bpstream.models._dynamics import fit_feature_delta, label_dynamics
    from bpstream.models._train import TrainConfig, calibrate, record_block, train_population

    blocks = sorted({record_block(names[r]) for r in np.unique(arr.record[train_mask])})
    rec_block = np.array([record_block(n) for n in names])[arr.record]
    inner_block = blocks[seed % len(blocks)] if len(blocks) > 1 else None
    inner = train_mask & (rec_block == inner_block) if inner_block is not None else np.zeros_like(train_mask)
    fit_mask = train_mask & ~inner
    t0 = time.time()
    net = train_population(arr.subset(fit_mask), TrainConfig(steps=steps, seed=seed),
                           log=lambda m: _log(f"[{tag}] {m}"))
    held = arr.subset(inner).only_usable()  # test-time constants from windows the step would score
    constants = calibrate(net, held) if len(held.y) else {}
    constants.update(_offset_sd(net, held) if len(held.y) else {})
    # label dynamics (label-only statistics) from all of this model's training records
    constants.update(label_dynamics(arr.subset(train_mask).only_usable()))
    # the population feature-delta map (the personal layer's starting point), grouped-CV regularised
    constants.update(fit_feature_delta(arr.subset(train_mask).only_usable(), seed=seed))
    meta = {
        "train_records": sorted({names[r] for r in np.unique(arr.record[fit_mask])}),
        "calibration_records": sorted({names[r] for r in np.unique(arr.record[inner])}),
        "train_windows": int(fit_mask.sum()),
        "steps": steps,
        "seed": seed,
        "train_s": round(time.time() - t0, 1),
    }
    _log(f"[{tag}] trained in {meta['train_s']} s on {meta['train_windows']} windows; constants {constants}")
    return Population(net, constants, meta)


def _offset_sd(net, arr) -> dict:
    """1-sigma of the frozen+offset method on held-out records (anchor: first window at/after 40 s)."""
    import torch

    from bpstream.models._train import embed_all

    z = embed_all(net, arr.x, arr.feats)
    with torch.no_grad():
        mu, _ = net.absolute(z)
    mu = mu.numpy()
    res = []
    for r in np.unique(arr.record):
        g = np.nonzero(arr.record == r)[0]
        later = g[arr.t_s[g] >= 40.0]
        if len(later) < 2:
            continue
        a = later[0]
        res.append((arr.y[later[1:]] - arr.y[a]) - (mu[later[1:]] - mu[a]))
    if not res:
        return {}
    r = np.abs(np.concatenate(res))
    return {"offset_sd_mmhg": [float(np.quantile(r[:, k], 0.9) / 1.645) for k in range(3)]}


def run(args: argparse.Namespace) -> int:
    import torch

    from bpstream.models._population import save_population
    from bpstream.models._train import fold_of_record, record_block

    from ._dataset import build_arrays
    from ._records import list_records
    from ._settings import Settings

    torch.set_num_threads(max(1, args.threads))
    try:
        paths = args.paths
        if not paths:
            from .demo import find_data_dir

            paths = [str(find_data_dir(None, Settings.from_env()))]
        records = list_records(paths, args.records.split(",") if args.records else None)
        t0 = time.time()
        arr = build_arrays(records, args.cache or None, progress=None)
        _log(f"{len(arr.names)} records, {len(arr.y)} usable labelled windows ({time.time() - t0:.0f} s)")
    except BpstreamError as exc:
        print(f"bpstream train: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = arr.names
    t_start = time.time()
    if args.folds and args.folds > 1:
        k_folds = args.folds
        # every listed record gets a fold (also those without usable windows, so validate can score them)
        all_names = [p.name for p in records]
        blocks = [record_block(n) for n in all_names]
        fold_of = {n: fold_of_record(n, blocks, k_folds) for n in all_names}
        folds_doc = {"k": k_folds, "split": "record number // 50, blocks dealt round-robin", "seed": args.seed,
                     "folds": [], "record_fold": fold_of}
        rec_fold = np.array([fold_of[n] for n in names])[arr.record]
        for k in range(k_folds):
            pop = _fit(arr, rec_fold != k, names, args.steps, args.seed, f"fold {k}")
            save_population(pop, out / f"fold{k}.pt")
            folds_doc["folds"].append({
                "fold": k, "weights": f"fold{k}.pt",
                "test_records": sorted(n for n in all_names if fold_of[n] == k),
                "test_blocks": sorted({record_block(n) for n in all_names if fold_of[n] == k}),
                "train_records": pop.meta["train_records"] + pop.meta["calibration_records"],
            })
        (out / FOLDS_FILE).write_text(json.dumps(folds_doc, indent=1))
        print(f"wrote {k_folds} fold models and {out / FOLDS_FILE} in {time.time() - t_start:.0f} s")
    else:
        pop = _fit(arr, np.ones(len(arr.y), bool), names, args.steps, args.seed, "all")
        save_population(pop, out / "population.pt")
        card = {"weights": "population.pt", "data": "PhysioNet/CinC Challenge 2015 training set",
                "records": len(names), **pop.meta, "constants": pop.constants,
                "params": sum(p.numel() for p in pop.net.parameters())}
        (out / "population.json").write_text(json.dumps(card, indent=1))
        print(f"wrote {out / 'population.pt'} in {time.time() - t_start:.0f} s")
    return 0


def load_folds(folds_dir: str | Path) -> dict[str, Path]:
    """record name -> weights file of the fold that held it out (for ``validate --folds DIR``)."""
    folds_dir = Path(folds_dir)
    try:
        doc = json.loads((folds_dir / FOLDS_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BpstreamError(f"cannot read {folds_dir / FOLDS_FILE}: {exc}") from exc
    out: dict[str, Path] = {}
    for f in doc["folds"]:
        for name in f["test_records"]:
            out[name] = folds_dir / f["weights"]
    return out
