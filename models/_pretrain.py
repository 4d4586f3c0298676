"""Self-supervised pretraining of the population encoder on unlabeled ECG + PPG windows (pure: arrays in, encoder
weights out; no files, no clock).

Pretext: **time-gap regression**. For every ordered pair of windows of one record in a batch, a small head on
``|z_i - z_j|`` (the encoder's embeddings) predicts ``log(1 + |t_i - t_j| / 10 s)``. Windows far apart in a record
differ in physiology more than near ones, so the embedding is pushed to change with slow physiological drift, the
quantity the delta head reads (``z_t - z_anchor``). The head is thrown away; the encoder's weights start population
training (``train_population(..., init_encoder=...)``). Augmentation as in population training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bpstream.models._net import EMB_DIM, Encoder
from bpstream.models._train import sample_batch

__all__ = ["UnlabeledArrays", "PretrainConfig", "pretrain_encoder"]


@dataclass
class UnlabeledArrays:
    """Usable input windows without labels. x: (N, 2, L) normalized waveforms; record: (N,) int record index;
    t_s: (N,) window end time; names: record names."""

    x: np.ndarray
    record: np.ndarray
    t_s: np.ndarray
    names: list[str] = field(default_factory=list)

    def subset(self, mask: np.ndarray) -> "UnlabeledArrays":
        return UnlabeledArrays(self.x[mask], self.record[mask], self.t_s[mask], self.names)


@dataclass
class PretrainConfig:
    steps: int = 300
    records_per_batch: int = 8
    windows_per_record: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


def pretrain_encoder(arr: UnlabeledArrays, cfg: PretrainConfig, log=None) -> dict[str, torch.Tensor]:
    """Encoder weights (a state dict of :class:`Encoder`) after the time-gap pretext on ``arr`` (seeded
    inside a fork of torch's global generator, as ``train_population``: the caller's is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        return _pretrain(arr, cfg, log)


def _pretrain(arr: UnlabeledArrays, cfg: PretrainConfig, log) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    enc = Encoder(EMB_DIM)
    head = nn.Sequential(nn.Linear(EMB_DIM, 32), nn.GELU(), nn.Linear(32, 1))
    groups = [g for g in (np.flatnonzero(arr.record == r) for r in np.unique(arr.record)) if len(g) >= 2]
    if not groups:
        return {k: v.detach().clone() for k, v in enc.state_dict().items()}
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    x_t = torch.from_numpy(arr.x)
    t_t = torch.from_numpy(arr.t_s.astype(np.float32))
    enc.train()
    for step in range(cfg.steps):
        ii_all, g_t, x = sample_batch(groups, x_t, cfg.records_per_batch, cfg.windows_per_record, rng, gen)
        z = enc(x)
        same = (g_t[:, None] == g_t[None, :]) & ~torch.eye(len(g_t), dtype=torch.bool)
        a, b = torch.nonzero(same, as_tuple=True)
        target = torch.log1p((t_t[ii_all][a] - t_t[ii_all][b]).abs() / 10.0)
        pred = head((z[a] - z[b]).abs()).squeeze(1)
        loss = nn.functional.mse_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        if log is not None and (step % 100 == 0 or step == cfg.steps - 1):
            log(f"pretrain step {step:5d}  gap mse {loss.item():.4f}")
    enc.eval()
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}
