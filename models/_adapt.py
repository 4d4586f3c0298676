"""One capped test-time-training step on a patient's personal delta layer (torch, tiny tensors).

Loss = supervised (label pairs of the labelled queue: the change y_j - y_i, Laplace NLL scaled by the
population uncertainty) + ssl_weight * self-supervised (unlabelled queue: cycle consistency
delta(v,a) = delta(u,a) + delta(v,u), and smoothness between neighbouring windows) + L2-SP to the
population weight. Items come from the two queues by weighted sampling (p_labeled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from bpstream.models._ttt import TTTEstimator

__all__ = ["adapt_step"]

_BATCH = 16
_BETAS = (0.9, 0.99)
_MAX_STEP = 0.05  # per-element cap on one update, in units of the weight


def _pairs(n: int) -> np.ndarray:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return np.stack([i, j], 1)


@torch.no_grad()
def _hidden(est: "TTTEstimator", zt: np.ndarray, za: np.ndarray, ya: np.ndarray, dt: np.ndarray):
    h, sd = est.pop.delta_parts(zt, za, ya, dt)
    return torch.from_numpy(h), torch.from_numpy(sd.astype(np.float32))


def adapt_step(est: "TTTEstimator", w: np.ndarray, w0: np.ndarray, m: np.ndarray, v: np.ndarray,
               rng: np.random.Generator, use_ssl: bool, supervised: bool = True):
    y_std = torch.from_numpy(est.pop.y_std.astype(np.float32))
    wt = torch.from_numpy(w.astype(np.float32)).requires_grad_(True)
    w0t = torch.from_numpy(w0.astype(np.float32))
    n_lab = len(est.lab_y_)
    use_sup = supervised and n_lab >= 2
    use_ssl = use_ssl and len(est.unl_t_) >= 3 and n_lab >= 1
    if not (use_sup or use_ssl):
        return w, m, v
    p_lab = est.p_labeled if (use_sup and use_ssl) else (1.0 if use_sup else 0.0)
    n_sup = int(rng.binomial(_BATCH, p_lab))
    n_ssl = _BATCH - n_sup
    loss = torch.zeros(())
    if use_sup and n_sup > 0:
        pairs = _pairs(n_lab)
        pick = pairs[rng.integers(0, len(pairs), n_sup)]
        i, j = pick[:, 0], pick[:, 1]
        ya = np.nan_to_num(est.lab_y_[i])
        h, sd = _hidden(est, est.lab_z_[j], est.lab_z_[i], ya, np.abs(est.lab_t_[j] - est.lab_t_[i]))
        target = torch.from_numpy((est.lab_y_[j] - est.lab_y_[i]).astype(np.float32))
        ok = torch.isfinite(target)
        pred = (h @ wt.T) * y_std
        r = torch.where(ok, (pred - torch.nan_to_num(target)) / sd.clamp_min(0.5), torch.zeros_like(pred))
        loss = loss + r.abs().sum() / ok.sum().clamp_min(1)
    if use_ssl and n_ssl > 0:
        nu = len(est.unl_t_)
        u = rng.integers(0, nu - 1, n_ssl)
        vv = u + 1  # neighbouring unlabelled windows (queue is in time order)
        a = rng.integers(0, n_lab, n_ssl)
        ya = np.nan_to_num(est.lab_y_[a])
        zu, zv, za = est.unl_z_[u], est.unl_z_[vv], est.lab_z_[a]
        tu, tv, ta = est.unl_t_[u], est.unl_t_[vv], est.lab_t_[a]
        h_va, s_va = _hidden(est, zv, za, ya, np.abs(tv - ta))
        h_ua, _ = _hidden(est, zu, za, ya, np.abs(tu - ta))
        h_vu, s_vu = _hidden(est, zv, zu, ya, np.abs(tv - tu))
        cyc = ((h_va - h_ua - h_vu) @ wt.T) * y_std / s_va.clamp_min(0.5)
        smooth = ((h_vu @ wt.T) * y_std) / s_vu.clamp_min(0.5)
        loss = loss + est.ssl_weight * (cyc.abs().mean() + smooth.abs().mean())
    loss = loss + est.l2sp * ((wt - w0t) ** 2).sum() / (w0t**2).sum().clamp_min(1e-6)
    loss.backward()
    g = wt.grad.numpy().astype(np.float64)
    t = est.n_updates_ + 1
    m = _BETAS[0] * m + (1 - _BETAS[0]) * g
    v = _BETAS[1] * v + (1 - _BETAS[1]) * g * g
    mhat = m / (1 - _BETAS[0] ** t)
    vhat = v / (1 - _BETAS[1] ** t)
    step = est.lr * mhat / (np.sqrt(vhat) + 1e-8)
    step = np.clip(step, -_MAX_STEP, _MAX_STEP)
    w_new = (w.astype(np.float64) - step).astype(np.float32)
    return w_new, m.astype(np.float32), v.astype(np.float32)
