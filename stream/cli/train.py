"""``bpstream train``: train the population model on records, optionally as patient-disjoint folds.

Without ``--folds``: one model on all records -> OUT/population.pt (+ OUT/population.json, the card);
copy it to models/weights/ to ship it. With ``--folds K``: OUT/fold{k}.pt for k = 0..K-1 and
OUT/folds.json, which lists each fold's test records (``bpstream validate --folds OUT`` scores every record
with the model of the fold that held it out). Folds are blocks of record numbers (number // 50) dealt
round-robin, so nearby records (possibly the same patient) never straddle training and test.
Within each model's training records one block is held out to fit the uncertainty temperatures and the
delta shrinkage (never the test fold). ``--pretrain-unlabeled DIR`` first pretrains each model's encoder
self-supervised on the ECG + PPG windows of the records in DIR (only those of its training blocks or of blocks
without labelled records).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bpstream.stream.records import FOLDS_FILE
from bpstream.stream.evaluation import fit_population as _fit, log as _log, unlabeled_for

def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the population model (optionally patient-disjoint folds)")
    p.add_argument("paths", nargs="*", help="WFDB record files or folders (default: the demo data folder)")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--folds", type=int, default=0, help="K patient-disjoint folds (blocks of number // 50)")
    p.add_argument("--nested", action="store_true",
                   help="with --folds: nested CV (test-time constants fitted on inner folds only) and the shipped model")
    p.add_argument("--select", action="store_true",
                   help="with --nested: choose the published estimator (fusion or ttt) by replaying the inner folds "
                        "(OUT/inner{k}, once and every:60); writes OUT/selection.json")
    p.add_argument("--pretrain-unlabeled", metavar="DIR", default=None,
                   help="pretrain each model's encoder on the ECG + PPG windows of these records first (self-supervised; "
                        "per model only records of its training blocks or of blocks without labelled records)")
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--steps", type=int, default=300,
                   help="optimisation steps per model (default 300: the shipped weights; 1200 lost on inner folds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--cache", default="runs/cache", help="git-ignored folder for derived arrays ('' = none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from bpstream.stream.records import write_population
    from bpstream.models import fold_of_record, record_block

    from bpstream.stream.records import build_arrays
    from bpstream.stream.records import list_records
    from bpstream.stream.config import Settings

    torch.set_num_threads(max(1, args.threads))
    paths = args.paths
    if not paths:
        from bpstream.stream.records import find_data_dir

        paths = [str(find_data_dir(None, Settings.from_env()))]
    records = list_records(paths, args.records.split(",") if args.records else None)
    t0 = time.time()
    arr = build_arrays(records, args.cache or None, progress=None)
    _log(f"{len(arr.names)} records, {len(arr.y)} usable labelled windows ({time.time() - t0:.0f} s)")
    unlabeled = None
    if args.pretrain_unlabeled:
        from bpstream.stream.records import build_unlabeled_arrays

        unlabeled = build_unlabeled_arrays(list_records([args.pretrain_unlabeled]), args.cache or None)
        _log(f"pretraining: {len(unlabeled.names)} unlabeled records, {len(unlabeled.t_s)} usable windows")
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
        if args.nested:
            from bpstream.stream.evaluation import run_nested

            nested = run_nested(arr, fold_of, k_folds, out, args.steps, args.seed, unlabeled=unlabeled)
            folds_doc["nested"] = "see nested.json"
            if args.select:
                from bpstream.stream.evaluation import select_published

                sel = select_published(out, records, log=_log)
                _log(f"[select] score (MAE / carry_forward, inner folds): {json.dumps(sel['score'])}; "
                     f"chosen: {sel['chosen']} (OUT/selection.json)")
        for k in range(k_folds) if not args.nested else ():
            unl = unlabeled_for(unlabeled, {b for n, b in zip(all_names, blocks) if fold_of[n] != k}, set(blocks))
            pop = _fit(arr, rec_fold != k, names, args.steps, args.seed, f"fold {k}", unl)
            write_population(pop, out / f"fold{k}.pt")
            folds_doc["folds"].append({
                "fold": k, "weights": f"fold{k}.pt",
                "test_records": sorted(n for n in all_names if fold_of[n] == k),
                "test_blocks": sorted({record_block(n) for n in all_names if fold_of[n] == k}),
                "train_records": pop.meta["train_records"] + pop.meta["calibration_records"],
            })
        if args.nested:
            for k in range(k_folds):
                folds_doc["folds"].append({
                    "fold": k, "weights": f"fold{k}.pt",
                    "test_records": sorted(n for n in all_names if fold_of[n] == k),
                    "test_blocks": sorted({record_block(n) for n in all_names if fold_of[n] == k}),
                    "trained_on_folds": nested["outer"][k]["trained_on_folds"],
                })
        (out / FOLDS_FILE).write_text(json.dumps(folds_doc, indent=1))
        print(f"wrote {k_folds} fold models and {out / FOLDS_FILE} in {time.time() - t_start:.0f} s")
    else:
        pop = _fit(arr, np.ones(len(arr.y), bool), names, args.steps, args.seed, "all", unlabeled)
        write_population(pop, out / "population.pt")
        card = {"weights": "population.pt", "data": "PhysioNet/CinC Challenge 2015 training set",
                "records": len(names), **pop.meta, "constants": pop.constants,
                "params": sum(p.numel() for p in pop.net.parameters())}
        (out / "population.json").write_text(json.dumps(card, indent=1))
        print(f"wrote {out / 'population.pt'} in {time.time() - t_start:.0f} s")
    return 0

