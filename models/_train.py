"""Population training on arrays (pure: arrays in, a trained network out; no files, no clock).

Batches are groups of windows from a few records, so one forward pass gives both losses:
* the calibration-free absolute loss on every window (Gaussian NLL on a Huber-robust residual), and
* the Siamese delta loss on every ordered pair of windows of the same record (y_j - y_i).
After training, a held-out inner block (patient-disjoint from the training records) fits the
uncertainty temperatures and the delta shrinkage used at test time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bpstream.models._net import N_OUT, PopulationNet

__all__ = ["TrainArrays", "TrainConfig", "train_population", "fold_of_record", "record_block", "calibrate",
           "embed_all"]


def record_block(name: str) -> int:
    """Patient block of a record: its number // 50 (nearby numbers can be the same patient)."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) // 50 if digits else 0


def fold_of_record(name: str, blocks: list[int], k: int) -> int:
    """Fold index of a record: blocks sorted and dealt round-robin into ``k`` folds."""
    return sorted(set(blocks)).index(record_block(name)) % k


@dataclass
class TrainArrays:
    """Windows of many records. x: (N, 2, L) normalized waveforms; feats: (N, F); y: (N, 3) mmHg;
    record: (N,) int record index; t_s: (N,) window end time; weight: (N,) label quality in [0, 1]."""

    x: np.ndarray
    feats: np.ndarray
    y: np.ndarray
    record: np.ndarray
    t_s: np.ndarray
    weight: np.ndarray
    names: list[str] = field(default_factory=list)
    usable: np.ndarray | None = None  # input passed the filters (None: all did)

    def subset(self, mask: np.ndarray) -> "TrainArrays":
        usable = None if self.usable is None else self.usable[mask]
        return TrainArrays(self.x[mask], self.feats[mask], self.y[mask], self.record[mask], self.t_s[mask],
                           self.weight[mask], self.names, usable)

    def only_usable(self) -> "TrainArrays":
        return self if self.usable is None else self.subset(self.usable)


@dataclass
class TrainConfig:
    steps: int = 300  # the shipped setting (`bpstream train --steps`); 1,200 lost on inner folds (README)
    records_per_batch: int = 8
    windows_per_record: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    huber_k: float = 0.0  # <= 0: Laplace NLL
    delta_weight: float = 2.0
    seed: int = 0


def _robust_nll(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor, w: torch.Tensor, k: float) -> torch.Tensor:
    """Robust NLL: Laplace (k <= 0; the mean head then estimates the median, MAE-optimal) or Gaussian with
    the squared standardized residual replaced by a Huber function (k > 0). ``logvar`` = 2 log scale."""
    logvar = logvar.clamp(-6.0, 12.0)
    z = (y - mu) * torch.exp(-0.5 * logvar)
    az = z.abs()
    hub = az if k <= 0 else torch.where(az <= k, 0.5 * z * z, k * (az - 0.5 * k))
    per = (hub + 0.5 * logvar).mean(dim=1)
    return (per * w).sum() / w.sum().clamp_min(1e-6)


def _by_record(arr: TrainArrays) -> list[np.ndarray]:
    return [np.nonzero(arr.record == r)[0] for r in np.unique(arr.record)]


def sample_batch(groups: list[np.ndarray], x_t: torch.Tensor, records: int, per_record: int,
                 rng: np.random.Generator, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch: ``records`` groups (records), ``per_record`` windows of each (sorted), their group index
    and the windows with the light augmentation (random amplitude per channel, one small time shift)."""
    pick = rng.choice(len(groups), size=min(records, len(groups)), replace=False)
    idx_list, grp = [], []
    for gi, g in enumerate(pick):
        take = rng.choice(groups[g], size=min(per_record, len(groups[g])), replace=False)
        idx_list.append(np.sort(take))
        grp.append(np.full(len(take), gi))
    idx = torch.from_numpy(np.concatenate(idx_list))
    x = x_t[idx].float()
    scale = 1.0 + 0.1 * torch.randn(x.shape[0], 2, 1, generator=gen)
    shift = int(torch.randint(-25, 26, (1,), generator=gen))
    return idx, torch.from_numpy(np.concatenate(grp)), torch.roll(x * scale, shifts=shift, dims=2)


def train_population(arr: TrainArrays, cfg: TrainConfig, log=None, init_encoder: dict | None = None) -> PopulationNet:
    """Train a PopulationNet on ``arr`` (fixed seed; single process; caller sets torch threads).
    ``init_encoder``: encoder weights to start from (``pretrain_encoder``); None: random initialisation.
    The weights' initialisation draws from torch's global generator: it is seeded inside a fork, so the
    caller's generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _train(arr, cfg, log, init_encoder)


def _train(arr: TrainArrays, cfg: TrainConfig, log, init_encoder: dict | None) -> PopulationNet:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = PopulationNet()
    if init_encoder is not None:
        net.encoder.load_state_dict(init_encoder)
    y_all = arr.y.astype(np.float64)
    net.y_mean.copy_(torch.tensor(np.median(y_all, axis=0), dtype=torch.float32))
    net.y_std.copy_(torch.tensor(np.maximum(y_all.std(axis=0), 5.0), dtype=torch.float32))
    groups = [g for g in _by_record(arr) if len(g) >= 2]
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    x_t = torch.from_numpy(arr.x)
    f_t = torch.from_numpy(arr.feats.astype(np.float32))
    y_t = torch.from_numpy(arr.y.astype(np.float32))
    w_t = torch.from_numpy(arr.weight.astype(np.float32))
    ts_t = torch.from_numpy(arr.t_s.astype(np.float32))
    net.train()
    for step in range(cfg.steps):
        idx, gid, x = sample_batch(groups, x_t, cfg.records_per_batch, cfg.windows_per_record, rng, gen)
        f, y, w, ts = f_t[idx], y_t[idx], w_t[idx], ts_t[idx]
        z = net.embed(x, f)
        mu, lv = net.absolute(z)
        loss_abs = _robust_nll(mu, lv, y, w, cfg.huber_k)
        # all ordered pairs i != j within a record
        same = (gid[:, None] == gid[None, :]) & ~torch.eye(len(gid), dtype=torch.bool)
        ii, jj = torch.nonzero(same, as_tuple=True)
        dmu, dlv = net.delta(z[jj], z[ii], y[ii], (ts[jj] - ts[ii]).abs())
        loss_delta = _robust_nll(dmu, dlv, y[jj] - y[ii], w[ii] * w[jj], cfg.huber_k)
        loss = loss_abs + cfg.delta_weight * loss_delta
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        if log is not None and (step % 100 == 0 or step == cfg.steps - 1):
            log(f"step {step:5d}  abs {loss_abs.item():.3f}  delta {loss_delta.item():.3f}")
    net.eval()
    return net


@torch.no_grad()
def embed_all(net: PopulationNet, x: np.ndarray, feats: np.ndarray, batch: int = 256) -> torch.Tensor:
    out = []
    for a in range(0, len(x), batch):
        out.append(net.embed(torch.from_numpy(x[a : a + batch]).float(), torch.from_numpy(feats[a : a + batch])))
    return torch.cat(out) if out else torch.zeros(0, net.emb_dim + net.n_features)


@torch.no_grad()
def calibrate(net: PopulationNet, arr: TrainArrays, anchor_after_s: float = 40.0) -> dict[str, list[float]]:
    """Fit test-time constants on held-out records: delta shrinkage and 90 %-coverage temperatures.

    Protocol as at test time: the anchor is each record's first window ending at/after
    ``anchor_after_s``; targets are all later windows of the record.
    """
    z = embed_all(net, arr.x, arr.feats)
    y = torch.from_numpy(arr.y.astype(np.float32))
    ts = torch.from_numpy(arr.t_s.astype(np.float32))
    d_pred, d_true, d_lv, a_res, a_lv, rec_of = [], [], [], [], [], []
    for g in _by_record(arr):
        mu, lv = net.absolute(z[g])
        a_res.append(y[g] - mu)
        a_lv.append(lv)
        later = g[arr.t_s[g] >= anchor_after_s]
        if len(later) < 2:
            continue
        a, rest = later[0], later[1:]
        dm, dl = net.delta(z[rest], z[a].expand(len(rest), -1), y[a].expand(len(rest), -1), ts[rest] - ts[a])
        d_pred.append(dm)
        d_true.append(y[rest] - y[a])
        d_lv.append(dl)
        rec_of.append(np.full(len(rest), len(rec_of)))
    out: dict[str, list[float]] = {}
    if a_res:
        r, lv = torch.cat(a_res), torch.cat(a_lv)
        out["abs_sd_scale"] = _temperature(r, lv)
    if d_pred:
        dp, dt, dl = torch.cat(d_pred), torch.cat(d_true), torch.cat(d_lv)
        gain = _conservative_gain(dp.numpy(), dt.numpy(), np.concatenate(rec_of))
        out["delta_gain"] = gain.tolist()
        gain = torch.from_numpy(gain.astype(np.float32))
        out["delta_sd_scale"] = _temperature(dt - gain * dp, dl)
    return out


def _conservative_gain(pred: np.ndarray, true: np.ndarray, rec: np.ndarray, n_boot: int = 100) -> np.ndarray:
    """Shrinkage of the population delta: per quantity, the gain on a 0..1 grid that minimises the MAE of
    ``anchor + gain * delta`` on held-out records; its 10th percentile over a record-level bootstrap
    (zero unless the delta robustly lowers the error on patients the network never saw)."""
    rng = np.random.default_rng(0)
    ids = np.unique(rec)
    grid = np.linspace(0.0, 1.0, 11)
    best = []
    for _ in range(n_boot):
        pick = np.isin(rec, rng.choice(ids, size=len(ids), replace=True))
        p, t = pred[pick], true[pick]
        mae = np.stack([np.abs(t - g * p).mean(0) for g in grid])
        best.append(grid[np.argmin(mae, axis=0)])
    return np.clip(np.quantile(np.array(best), 0.10, axis=0), 0.0, 1.0)


def _temperature(resid: torch.Tensor, logvar: torch.Tensor) -> list[float]:
    """Per output, the factor on sd that makes +-1.645 sd cover 90 % of the residuals."""
    z = (resid.abs() * torch.exp(-0.5 * logvar)).numpy()
    return [float(max(np.quantile(z[:, k], 0.90) / 1.645, 0.05)) for k in range(N_OUT)]
