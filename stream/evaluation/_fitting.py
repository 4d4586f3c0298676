"""Training one population model on a subset of the training arrays, with its held-out test-time constants
(shared by ``bpstream train`` and the nested cross-validation in ``_nested``)."""

from __future__ import annotations

import sys
import time

import numpy as np

__all__ = ["fit_population", "log", "predict_arrays", "training_digest", "unlabeled_for"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def unlabeled_for(unlabeled, train_blocks: set[int], labelled_blocks: set[int]):
    """The unlabeled windows a model trained on ``train_blocks`` may pretrain on: records of those blocks, or of
    blocks no labelled record belongs to (no model is ever scored on those). None stays None."""
    if unlabeled is None:
        return None
    from bpstream.models import record_block

    ok = [record_block(n) in train_blocks or record_block(n) not in labelled_blocks for n in unlabeled.names]
    return unlabeled.subset(np.asarray(ok, bool)[unlabeled.record])


def training_digest(arr, train_mask: np.ndarray, unlabeled=None) -> str:
    """Digest of what a model trained by ``fit_population`` depends on beyond its folds, steps and seed: the
    training windows' contents (waveforms, features, labels, weights, times), the pretraining windows, and the
    source of the training code (so a saved model is reused only when it would be trained again the same)."""
    import hashlib
    import inspect

    from bpstream.models import PopulationNet, TrainConfig, normalize_waveforms, pretrain_encoder

    h = hashlib.sha1()
    parts = [arr.x[train_mask], arr.feats[train_mask], arr.y[train_mask], arr.weight[train_mask],
             arr.t_s[train_mask], arr.record[train_mask]]
    if unlabeled is not None:
        parts += [unlabeled.x, unlabeled.t_s, unlabeled.record]
    for a in parts:
        h.update(np.ascontiguousarray(a).tobytes())
    for path in sorted({inspect.getfile(f) for f in (PopulationNet, TrainConfig, normalize_waveforms,
                                                     pretrain_encoder, fit_population)}):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def fit_population(arr, train_mask: np.ndarray, names: list[str], steps: int, seed: int, tag: str, unlabeled=None):
    """One population model on the windows of ``train_mask``; ``unlabeled``: windows to pretrain its encoder on
    first (``pretrain_encoder``, as many steps), already restricted to what this model may see
    (``unlabeled_for``)."""
    from bpstream.models import Population
    from bpstream.models import fit_feature_delta, label_dynamics
    from bpstream.models import TrainConfig, calibrate, record_block, train_population

    blocks = sorted({record_block(names[r]) for r in np.unique(arr.record[train_mask])})
    rec_block = np.array([record_block(n) for n in names])[arr.record]
    inner_block = blocks[seed % len(blocks)] if len(blocks) > 1 else None
    inner = train_mask & (rec_block == inner_block) if inner_block is not None else np.zeros_like(train_mask)
    fit_mask = train_mask & ~inner
    t0 = time.time()
    init, pretrained_on = None, []
    if unlabeled is not None and len(unlabeled.t_s):
        from bpstream.models import PretrainConfig, pretrain_encoder

        init = pretrain_encoder(unlabeled, PretrainConfig(steps=steps, seed=seed), log=lambda m: log(f"[{tag}] {m}"))
        pretrained_on = sorted({unlabeled.names[r] for r in np.unique(unlabeled.record)})
    net = train_population(arr.subset(fit_mask), TrainConfig(steps=steps, seed=seed),
                           log=lambda m: log(f"[{tag}] {m}"), init_encoder=init)
    held = arr.subset(inner).only_usable()  # test-time constants from windows the step would score
    constants = calibrate(net, held) if len(held.y) else {}
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
        "pretrained_on_unlabeled": pretrained_on,
        "train_s": round(time.time() - t0, 1),
    }
    log(f"[{tag}] trained in {meta['train_s']} s on {meta['train_windows']} windows; constants {constants}")
    return Population(net, constants, meta)


def predict_arrays(pop, arr) -> tuple[np.ndarray, np.ndarray]:
    """Calibration-free predictions (n, 3) and embeddings (n, 41) of ``pop`` for the windows of training arrays."""
    import torch

    from bpstream.models import embed_all

    with torch.no_grad():
        z = embed_all(pop.net, arr.x, arr.feats)
        mu, _ = pop.net.absolute(z)
    return mu.numpy().astype(np.float64), z.numpy().astype(np.float64)
