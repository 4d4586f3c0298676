"""Self-supervised encoder pretraining (``bpstream train --pretrain-unlabeled``): the time-gap pretext learns on
simulated drifting windows, is seeded, and a model never pretrains on an unlabeled record of a block it is
scored on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bpstream.models import PretrainConfig, UnlabeledArrays, pretrain_encoder
from bpstream.stream.records import read_population
from bpstream.models._net import Encoder
from bpstream.stream.evaluation import run_nested, unlabeled_for

from .test_nested import K, NAMES, _arrays, _fold_of


def _drifting(n_records: int = 6, n_win: int = 30, seed: int = 0, names=None) -> UnlabeledArrays:
    """Windows whose oscillation frequency drifts with time within each record (so the time gap is learnable)."""
    rng = np.random.default_rng(seed)
    s = np.arange(1250) / 125.0
    xs, rec, ts = [], [], []
    for r in range(n_records):
        f0 = rng.uniform(0.8, 1.6)
        for i in range(n_win):
            t = 10.0 + 8.0 * i
            f = f0 + 0.01 * t
            x = np.stack([np.sin(2 * np.pi * f * s), np.sin(2 * np.pi * f * s - 1.0)]) + rng.normal(0, 0.1, (2, 1250))
            xs.append(x)
            rec.append(r)
            ts.append(t)
    names = names or [f"u{200 + 50 * r}l" for r in range(n_records)]
    return UnlabeledArrays(np.asarray(xs, np.float16), np.asarray(rec), np.asarray(ts, np.float32), names)


def _gap_fit(state: dict, arr: UnlabeledArrays) -> float:
    """Spearman-like rank correlation of embedding distance with time gap, within records."""
    enc = Encoder()
    enc.load_state_dict(state)
    with torch.no_grad():
        z = enc(torch.from_numpy(arr.x.astype(np.float32))).numpy()
    d, g = [], []
    for r in np.unique(arr.record):
        idx = np.flatnonzero(arr.record == r)
        for a in idx[::3]:
            for b in idx[::3]:
                if a < b:
                    d.append(np.abs(z[a] - z[b]).sum())
                    g.append(arr.t_s[b] - arr.t_s[a])
    rd, rg = np.argsort(np.argsort(d)), np.argsort(np.argsort(g))
    return float(np.corrcoef(rd, rg)[0, 1])


def test_pretext_learns_the_time_gap_and_is_seeded():
    torch.set_num_threads(1)
    arr = _drifting()
    cfg = PretrainConfig(steps=60, records_per_batch=4, windows_per_record=8, seed=0)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in Encoder().state_dict().items()}
    state = torch.get_rng_state()
    after = pretrain_encoder(arr, cfg)
    assert torch.equal(torch.get_rng_state(), state)  # seeded in a fork: the caller's generator is untouched
    again = pretrain_encoder(arr, cfg)
    assert all(torch.equal(after[k], again[k]) for k in after)
    assert _gap_fit(after, arr) > max(_gap_fit(before, arr), 0.0) + 0.2


def test_unlabeled_for_keeps_only_training_blocks_and_blocks_without_labels():
    arr = _drifting(n_records=4, n_win=2, names=["a105l", "a160s", "a210l", "x999s"])  # blocks 2, 3, 4, 19
    got = unlabeled_for(arr, train_blocks={2, 4}, labelled_blocks={2, 3, 4})
    assert sorted({got.names[r] for r in np.unique(got.record)}) == ["a105l", "a210l", "x999s"]
    assert unlabeled_for(None, {2}, {2}) is None


@pytest.mark.slow
def test_nested_models_never_pretrain_on_a_block_they_are_scored_on(tmp_path):
    torch.set_num_threads(1)
    fold_of = _fold_of()
    # one unlabeled record in each labelled block (same numbers +1), and one in a block without labels
    unl_names = [f"a{100 + 50 * i + 1}s" for i in range(len(NAMES))] + ["a901l"]
    unl = _drifting(n_records=len(unl_names), n_win=4, names=unl_names)
    run_nested(_arrays(0), fold_of, K, tmp_path, steps=2, seed=0, ship=False, unlabeled=unl)
    block_fold = {int(n[1:4]) // 50: f for n, f in fold_of.items()}
    nested = json.loads((tmp_path / "nested.json").read_text())
    seen = 0
    for o in nested["outer"]:
        pop = read_population(tmp_path / o["weights"])
        used = pop.meta["pretrained_on_unlabeled"]
        assert "a901l" in used
        for name in used:
            b = int(name[1:4]) // 50
            assert b not in block_fold or block_fold[b] in o["trained_on_folds"], (o["fold"], name)
        seen += len(used)
        # and the models behind the inner predictions that fitted its constants: fold j held out too
        for inner in o["constants_fitted_on"]:
            tag = "-".join(map(str, inner["trained_on_folds"]))
            meta = json.loads((tmp_path / "models" / f"train_{tag}.json").read_text())
            for name in meta["pretrain"]["records"]:
                b = int(name[1:4]) // 50
                assert b not in block_fold or block_fold[b] != inner["predicts_fold"]
    assert seen > K  # pretraining happened


def test_unlabeled_windows_are_the_steps_usable_windows_and_cache_exactly(tmp_path):
    """``build_unlabeled_arrays`` on real records: one row per window the step's input filter passes (an arterial
    channel, when present, is ignored), the same arrays from its cache."""
    from bpstream.stream.core import Pipeline, PipelineConfig, WindowResult
    from bpstream.stream.records import build_unlabeled_arrays, iter_outputs, read_record

    from ._data import DATA, record

    paths = [DATA / "physionet2015-unlabeled" / "a103l", record("f362s")]
    got = build_unlabeled_arrays(paths, tmp_path)
    assert got.names == ["a103l", "f362s"]
    for i, p in enumerate(paths):
        config = PipelineConfig(methods=("carry_forward",), keep_windows=True)
        usable = [r.window.t_end_s for r in iter_outputs(Pipeline(config), read_record(p, roles=("ecg", "ppg")))
                  if isinstance(r, WindowResult) and r.input_usable]
        assert got.t_s[got.record == i].tolist() == usable
    again = build_unlabeled_arrays(paths, tmp_path)
    assert len(list(tmp_path.glob("unlabeled-*.npz"))) == 2
    assert np.array_equal(again.x, got.x) and np.array_equal(again.t_s, got.t_s)
