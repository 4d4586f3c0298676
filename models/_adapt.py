"""One capped test-time-training step on a patient's personal feature-delta map (torch, tiny tensors).

Prediction of the change from anchor i to window j: ``fixed_ij + W (f_j - f_i)`` where ``fixed`` is the
population CNN delta (frozen) and ``W`` (3 x N_FEATURES) the personal layer.
Loss = supervised (label pairs of the labelled queue: the change y_j - y_i, Laplace NLL scaled by the
population uncertainty) + ssl_weight * self-supervised (unlabelled queue: neighbouring accepted windows
should not jump: smoothness of the predicted change between them) + L2-SP to the population map.
Items come from the two queues by weighted sampling (p_labeled).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["adapt_step"]

_BATCH = 16
_BETAS = (0.9, 0.99)
_MAX_STEP = 0.05  # per-element cap on one update (mmHg per feature unit)
_W_SCALE = 2.0  # L2-SP: deviations of this size (mmHg per feature unit) cost l2sp


def _pairs(n: int) -> np.ndarray:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return np.stack([i, j], 1)


def adapt_step(w: np.ndarray, w0: np.ndarray, m: np.ndarray, v: np.ndarray, rng: np.random.Generator, *,
               lab_z: np.ndarray, lab_y: np.ndarray, lab_t: np.ndarray, unl_z: np.ndarray, unl_t: np.ndarray,
               anchor_terms: Callable, p_labeled: float, ssl_weight: float, l2sp: float, lr: float,
               n_updates: int, use_ssl: bool, supervised: bool = True):
    """One capped Adam step on the personal map ``w`` (Adam moments ``m``, ``v``) from the two queues:
    labelled (embeddings ``lab_z``, labels ``lab_y``, times ``lab_t``) and unlabelled (``unl_z``, ``unl_t``).
    ``anchor_terms(z_to, z_from, y_from, dt_s) -> (fixed, dfeat, sd)`` is the estimator's change model.
    Returns the new ``(w, m, v)``."""
    wt = torch.from_numpy(w.astype(np.float32)).requires_grad_(True)
    w0t = torch.from_numpy(w0.astype(np.float32))
    n_lab = len(lab_y)
    use_sup = supervised and n_lab >= 2
    use_ssl = use_ssl and len(unl_t) >= 3 and n_lab >= 1
    if not (use_sup or use_ssl):
        return w, m, v
    p_lab = p_labeled if (use_sup and use_ssl) else (1.0 if use_sup else 0.0)
    n_sup = int(rng.binomial(_BATCH, p_lab))
    n_ssl = _BATCH - n_sup
    loss = torch.zeros(())
    if use_sup and n_sup > 0:
        pairs = _pairs(n_lab)
        pick = pairs[rng.integers(0, len(pairs), n_sup)]
        i, j = pick[:, 0], pick[:, 1]
        fixed, dfeat, sd = anchor_terms(lab_z[j], lab_z[i], lab_y[i],
                                            np.abs(lab_t[j] - lab_t[i]))
        target = (lab_y[j] - lab_y[i]).astype(np.float64) - fixed
        ok = torch.from_numpy(np.isfinite(target))
        target_t = torch.from_numpy(np.nan_to_num(target).astype(np.float32))
        pred = torch.from_numpy(dfeat.astype(np.float32)) @ wt.T
        scale = torch.from_numpy(np.maximum(sd, 0.5).astype(np.float32))
        r = torch.where(ok, (pred - target_t) / scale, torch.zeros_like(pred))
        loss = loss + r.abs().sum() / ok.sum().clamp_min(1)
    if use_ssl and n_ssl > 0:
        nu = len(unl_t)
        u = rng.integers(0, nu - 1, n_ssl)
        vv = u + 1  # neighbouring accepted unlabelled windows (the queue is in time order)
        a = rng.integers(0, n_lab, n_ssl)
        _, dfeat, sd = anchor_terms(unl_z[vv], unl_z[u], lab_y[a],
                                        np.abs(unl_t[vv] - unl_t[u]))
        smooth = (torch.from_numpy(dfeat.astype(np.float32)) @ wt.T) / torch.from_numpy(
            np.maximum(sd, 0.5).astype(np.float32))
        loss = loss + ssl_weight * smooth.abs().mean()
    loss = loss + l2sp * ((wt - w0t) ** 2).mean() / _W_SCALE**2
    loss.backward()
    g = wt.grad.numpy().astype(np.float64)
    t = n_updates + 1
    m = _BETAS[0] * m + (1 - _BETAS[0]) * g
    v = _BETAS[1] * v + (1 - _BETAS[1]) * g * g
    mhat = m / (1 - _BETAS[0] ** t)
    vhat = v / (1 - _BETAS[1] ** t)
    step = np.clip(lr * mhat / (np.sqrt(vhat) + 1e-8), -_MAX_STEP, _MAX_STEP)
    w_new = (w.astype(np.float64) - step).astype(np.float32)
    return w_new, m.astype(np.float32), v.astype(np.float32)
