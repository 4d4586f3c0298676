"""Nested cross-validation (``bpstream train --folds K --nested``) on synthetic arrays: an outer fold's own
records never touch its model or its test-time constants, and a rerun that reuses the trained models refits
the same constants."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bpstream.models import PopulationNet, TrainArrays, fold_of_record, record_block
from bpstream.stream.records import read_population
from bpstream.stream.evaluation import run_nested

K = 3
NAMES = [f"a{100 + 50 * i}l" for i in range(6)]  # six blocks of record number // 50, two per fold


def _arrays(seed: int, shift_fold: int | None = None, names: list[str] = NAMES, k_folds: int = K) -> TrainArrays:
    """Records of 40 windows; ``shift_fold``: that fold's labels moved by +40 mmHg (nothing else changes)."""
    rng = np.random.default_rng(seed)
    n_win, L = 40, 1250
    blocks = [record_block(n) for n in names]
    xs, fs, ys, rec, ts = [], [], [], [], []
    for r, name in enumerate(names):
        t = np.arange(10.0, 10.0 + 2.0 * n_win, 2.0)
        level = np.array([120.0, 65.0, 85.0]) + rng.normal(0, 10, 3)
        y = level + np.cumsum(rng.normal(0, 1.0, (n_win, 1)), 0) * np.array([[1.0, 0.5, 0.7]])
        if shift_fold is not None and fold_of_record(name, blocks, k_folds) == shift_fold:
            y = y + 40.0
        xs.append(rng.normal(0, 1, (n_win, 2, L)).astype(np.float32))
        fs.append(rng.normal(0, 1, (n_win, PopulationNet().n_features)).astype(np.float32))
        ys.append(y.astype(np.float32))
        rec.append(np.full(n_win, r))
        ts.append(t.astype(np.float32))
    n = n_win * len(names)
    return TrainArrays(np.concatenate(xs), np.concatenate(fs), np.concatenate(ys), np.concatenate(rec),
                       np.concatenate(ts), np.ones(n, np.float32), list(names), np.ones(n, bool))


def _fold_of(names: list[str] = NAMES, k_folds: int = K) -> dict[str, int]:
    blocks = [record_block(n) for n in names]
    return {n: fold_of_record(n, blocks, k_folds) for n in names}


def _outer(out, k, file: str | None = None):
    pop = read_population(out / (file or f"fold{k}.pt"))
    return pop.constants, [p.detach().clone() for p in pop.net.parameters()]


@pytest.mark.slow
def test_an_outer_fold_never_touches_its_own_model_or_constants(tmp_path):
    torch.set_num_threads(1)
    a, b = tmp_path / "a", tmp_path / "b"
    doc = run_nested(_arrays(0), _fold_of(), K, a, steps=3, seed=0, ship=False)
    run_nested(_arrays(0, shift_fold=1), _fold_of(), K, b, steps=3, seed=0, ship=False)
    for k in range(K):
        ca, pa = _outer(a, k)
        cb, pb = _outer(b, k)
        same_model = all(torch.equal(x, y) for x, y in zip(pa, pb))
        same_constants = json.dumps(ca["fusion"], sort_keys=True) == json.dumps(cb["fusion"], sort_keys=True)
        if k == 1:  # fold 1's labels moved: every other fold's model and constants saw them
            assert same_model and same_constants
        else:
            assert not same_constants
        entry = doc["outer"][k]
        assert k not in entry["trained_on_folds"]
        assert all(k not in c["trained_on_folds"] and c["predicts_fold"] != k for c in entry["constants_fitted_on"])


@pytest.mark.slow
def test_a_rerun_reuses_the_trained_models_and_refits_the_same_constants(tmp_path, capsys):
    torch.set_num_threads(1)
    first = run_nested(_arrays(1), _fold_of(), K, tmp_path, steps=3, seed=0, ship=True)
    capsys.readouterr()
    again = run_nested(_arrays(1), _fold_of(), K, tmp_path, steps=3, seed=0, ship=True)
    assert "reused" in capsys.readouterr().err
    assert json.dumps(first["outer"], sort_keys=True) == json.dumps(again["outer"], sort_keys=True)
    assert first["shipped"] == again["shipped"]


@pytest.mark.slow
def test_a_rerun_on_other_labels_retrains_the_models_that_saw_them(tmp_path, capsys):
    """The reuse key holds the training windows' contents: with fold 1's labels moved (same windows, same
    counts), every model trained on fold 1 is trained again, the others are reused."""
    torch.set_num_threads(1)
    run_nested(_arrays(1), _fold_of(), K, tmp_path, steps=3, seed=0, ship=False)
    capsys.readouterr()
    run_nested(_arrays(1, shift_fold=1), _fold_of(), K, tmp_path, steps=3, seed=0, ship=False)
    err = capsys.readouterr().err
    reused = {line.split("]")[0].split("folds ")[1] for line in err.splitlines() if "reused" in line}
    assert reused and all("1" not in tag.split(",") for tag in reused), err
    assert "[train folds 0,2] reused" in err and "[train folds 0,1] reused" not in err, err


@pytest.mark.slow
def test_inner_folders_never_touch_the_fold_they_score(tmp_path):
    """OUT/inner{k}/inner{j}.pt (what the published estimator is chosen with): moving fold j's labels changes
    neither its model nor its constants (fails when the constants are fitted on predictions by models that
    trained on fold j), while every inner file fitted with fold j's records changes."""
    torch.set_num_threads(1)
    names, k4 = [f"a{100 + 50 * i}l" for i in range(8)], 4
    a, b = tmp_path / "a", tmp_path / "b"
    run_nested(_arrays(2, None, names, k4), _fold_of(names, k4), k4, a, steps=3, seed=0, ship=False)
    run_nested(_arrays(2, 1, names, k4), _fold_of(names, k4), k4, b, steps=3, seed=0, ship=False)
    fold_of = _fold_of(names, k4)
    for k in (0, 2, 3):
        doc = json.loads((a / f"inner{k}" / "folds.json").read_text())
        assert [f["fold"] for f in doc["folds"]] == [j for j in range(k4) if j != k]
        for f in doc["folds"]:
            assert f["test_records"] == sorted(n for n in names if fold_of[n] == f["fold"])
            assert k not in f["trained_on_folds"] and f["fold"] not in f["trained_on_folds"]
            ca, pa = _outer(a / f"inner{k}", None, f["weights"])
            cb, pb = _outer(b / f"inner{k}", None, f["weights"])
            same = (all(torch.equal(x, y) for x, y in zip(pa, pb))
                    and json.dumps(ca["fusion"], sort_keys=True) == json.dumps(cb["fusion"], sort_keys=True))
            assert same == (f["fold"] == 1), (k, f["fold"])
