"""The population network: a small 1-D CNN over ECG + PPG windows, with two heads.

* ``absolute`` head: calibration-free SBP/DBP/MAP with a Gaussian log-variance (the ``frozen`` model).
* ``delta`` head (Siamese, calibration-anchored): the change in SBP/DBP/MAP from an anchor window
  (a calibration) to the current window, from the difference of their embeddings and physiological
  features and the time between them. It is antisymmetric by construction, so an anchor predicts its
  own label exactly: ``delta(a, a) == 0``.

The encoder is shared and stays frozen at test time; per-patient training only touches a small set of
personal parameters in the delta head (see ``_ttt.py``), so queues can hold embeddings, not windows.
"""

from __future__ import annotations

import torch
from torch import nn

from bpstream.models._features import N_FEATURES

__all__ = ["PopulationNet", "EMB_DIM", "N_OUT"]

EMB_DIM = 32
HIDDEN = 48
N_OUT = 3  # sbp, dbp, map


class Encoder(nn.Module):
    """(B, 2, 1250) normalized ECG/PPG -> (B, EMB_DIM)."""

    def __init__(self, emb_dim: int = EMB_DIM) -> None:
        super().__init__()
        chans = [2, 16, 24, 32, 48, 48]
        kernels = [7, 5, 5, 5, 3]
        layers: list[nn.Module] = []
        for cin, cout, k in zip(chans[:-1], chans[1:], kernels):
            layers += [nn.Conv1d(cin, cout, k, stride=2, padding=k // 2), nn.GELU()]
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * chans[-1], emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.proj(h)


class PopulationNet(nn.Module):
    def __init__(self, emb_dim: int = EMB_DIM, n_features: int = N_FEATURES, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.emb_dim = emb_dim
        self.n_features = n_features
        self.encoder = Encoder(emb_dim)
        z = emb_dim + n_features
        self.abs_head = nn.Sequential(nn.Linear(z, hidden), nn.GELU(), nn.Linear(hidden, 2 * N_OUT))
        # delta mean: antisymmetric  W (h(+d, ctx) - h(-d, ctx)),  ctx = anchor features
        self.delta_body = nn.Sequential(nn.Linear(z + n_features + N_OUT, hidden), nn.GELU())
        self.delta_out = nn.Linear(hidden, N_OUT, bias=False)
        # delta log-variance from |difference| and the time between the windows
        self.delta_var = nn.Sequential(nn.Linear(z + 1, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, N_OUT))
        # label scaling (population mean and spread), set by training
        self.register_buffer("y_mean", torch.tensor([120.0, 60.0, 80.0]))
        self.register_buffer("y_std", torch.tensor([25.0, 12.0, 15.0]))

    # -- embeddings -------------------------------------------------------------------------------
    def embed(self, x: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Joint representation z = [CNN embedding, features], shape (B, EMB_DIM + N_FEATURES)."""
        return torch.cat([self.encoder(x), feats], dim=1)

    # -- heads ------------------------------------------------------------------------------------
    def absolute(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Calibration-free (mean mmHg, log-variance in mmHg^2), each (B, 3)."""
        out = self.abs_head(z)
        mu = self.y_mean + self.y_std * out[:, :N_OUT]
        logvar = out[:, N_OUT:] + 2.0 * torch.log(self.y_std)
        return mu, logvar

    def delta_hidden(self, z_t: torch.Tensor, z_a: torch.Tensor, y_a: torch.Tensor) -> torch.Tensor:
        """h(+d) - h(-d): the antisymmetric hidden difference the last delta layer maps to mmHg.

        Context (the same on both sides): the anchor's features and its label (scaled)."""
        d = z_t - z_a
        ctx = torch.cat([z_a[:, self.emb_dim :], (y_a - self.y_mean) / self.y_std], dim=1)
        hp = self.delta_body(torch.cat([d, ctx], dim=1))
        hm = self.delta_body(torch.cat([-d, ctx], dim=1))
        return hp - hm

    def delta_logvar(self, z_t: torch.Tensor, z_a: torch.Tensor, dt_s: torch.Tensor) -> torch.Tensor:
        d = (z_t - z_a).abs()
        return self.delta_var(torch.cat([d, (dt_s / 100.0).reshape(-1, 1)], dim=1)) + 2.0 * torch.log(self.y_std)

    def delta(
        self, z_t: torch.Tensor, z_a: torch.Tensor, y_a: torch.Tensor, dt_s: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Change from anchor (label ``y_a``) to current window (mmHg) and its log-scale, each (B, 3)."""
        mu = self.y_std * self.delta_out(self.delta_hidden(z_t, z_a, y_a))
        return mu, self.delta_logvar(z_t, z_a, dt_s)


def count_flops_per_window(net: PopulationNet, n_samples: int = 1250) -> int:
    """Multiply-adds x 2 of the encoder convolutions and the heads for one window."""
    flops = 0
    length = n_samples
    for m in net.encoder.conv:
        if isinstance(m, nn.Conv1d):
            length = (length + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            flops += 2 * length * m.in_channels * m.out_channels * m.kernel_size[0]
    for m in net.modules():
        if isinstance(m, nn.Linear):
            flops += 2 * m.in_features * m.out_features
    return flops
