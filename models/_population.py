"""The trained population model, shared read-only by every patient; its weights as bytes and back (files are
the stream layer's: ``bpstream.stream.records.read_population``/``write_population``).

A ``Population`` wraps a :class:`PopulationNet` with the constants fitted on held-out records
(uncertainty temperatures, delta shrinkage). It turns windows into embeddings (with a tiny cache so
several estimators of one patient encode a window once) and evaluates the two heads in numpy.
The arterial waveform of a window is never looked at.
"""

from __future__ import annotations

import functools
import hashlib
import io
from importlib import resources
from typing import Any

import numpy as np
import torch

from bpstream.filters import Window
from bpstream.models._features import N_FEATURES, normalize_waveforms, window_features
from bpstream.models._net import PopulationNet

__all__ = ["Population", "default_population", "population_from_bytes", "population_to_bytes", "SHIPPED_WEIGHTS"]

SHIPPED_WEIGHTS = "population.pt"
FS_HZ = 125.0
N_SAMPLES = 1250

_DEFAULT_CONSTANTS = {
    "abs_sd_scale": [1.0, 1.0, 1.0],
    "delta_gain": [1.0, 1.0, 1.0],
    "delta_sd_scale": [1.0, 1.0, 1.0],
    "offset_sd_mmhg": [10.0, 6.0, 7.0],
}


class Population:
    """A frozen population network plus its test-time constants."""

    def __init__(self, net: PopulationNet, constants: dict[str, Any] | None = None, meta: dict[str, Any] | None = None):
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        c = dict(_DEFAULT_CONSTANTS)
        c.update(constants or {})
        self.constants = c
        self.meta = dict(meta or {})
        self.abs_sd_scale = np.asarray(c["abs_sd_scale"], dtype=np.float64)
        self.delta_gain = np.asarray(c["delta_gain"], dtype=np.float64)
        self.delta_sd_scale = np.asarray(c["delta_sd_scale"], dtype=np.float64)
        self.offset_sd_mmhg = np.asarray(c["offset_sd_mmhg"], dtype=np.float64)
        self.level_blend = np.asarray(c.get("level_blend", [0.0, 0.0, 0.0]), dtype=np.float64)
        # label dynamics: sd(age)^2 = base + slope * age (None: use the delta head's uncertainty)
        self.sd_base_mmhg2 = np.asarray(c["sd_base_mmhg2"], np.float64) if "sd_base_mmhg2" in c else None
        self.sd_slope_mmhg2_per_s = np.asarray(c.get("sd_slope_mmhg2_per_s", [0.0, 0.0, 0.0]), np.float64)
        self.y_std = net.y_std.detach().numpy().astype(np.float64)
        self._cache: dict[bytes, np.ndarray] = {}

    # -- the personal layer's population value --------------------------------------------------
    @property
    def delta_weight(self) -> np.ndarray:
        """Population weight of the last delta layer (3, hidden), shrunk by the fitted gain."""
        w = self.net.delta_out.weight.detach().numpy().astype(np.float32)
        return (w * self.delta_gain[:, None]).astype(np.float32)

    @property
    def feat_weight(self) -> np.ndarray:
        """Population feature-delta map (3, N_FEATURES): mmHg change per unit change of each scaled feature."""
        w = self.constants.get("feat_delta_w")
        return np.zeros((3, N_FEATURES), np.float32) if w is None else np.asarray(w, np.float32)

    def suggest_change_mmhg(self, method: str) -> tuple[float, float] | None:
        """Fitted ``calibration_suggested`` change threshold (SBP, DBP) of ``method`` (``_suggest_fit``), or None."""
        v = (self.constants.get("suggest") or {}).get(method)
        return None if v is None else (float(v[0]), float(v[1]))

    @property
    def dim(self) -> int:
        return self.net.emb_dim + N_FEATURES

    # -- encoding ---------------------------------------------------------------------------------
    def check_window(self, window: Window) -> None:
        if abs(float(window.fs_hz) - FS_HZ) > 1e-6 or window.n_samples != N_SAMPLES:
            raise ValueError(
                f"the population model needs {N_SAMPLES}-sample windows at {FS_HZ:g} Hz, "
                f"got {window.n_samples} at {window.fs_hz:g} Hz"
            )

    @torch.no_grad()
    def encode_arrays(self, ecg: np.ndarray, ppg: np.ndarray) -> np.ndarray:
        """Embeddings (B, dim) float32 of windows given as (B, N_SAMPLES) arrays."""
        x = torch.from_numpy(normalize_waveforms(ecg, ppg))
        f = torch.from_numpy(window_features(ecg, ppg, fs_hz=FS_HZ))
        return self.net.embed(x, f).numpy().astype(np.float32)

    def encode(self, window: Window) -> np.ndarray:
        """Embedding (dim,) of one window; cached by content so estimators of a patient share it."""
        self.check_window(window)
        ecg = np.ascontiguousarray(window.ecg, dtype=np.float32)
        ppg = np.ascontiguousarray(window.ppg, dtype=np.float32)
        key = hashlib.blake2b(ecg.tobytes() + ppg.tobytes(), digest_size=16).digest()
        hit = self._cache.get(key)
        if hit is None:
            hit = self.encode_arrays(ecg[None], ppg[None])[0]
            if len(self._cache) >= 16:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = hit
        return hit.copy()

    # -- heads (numpy in, numpy out) ----------------------------------------------------------
    @torch.no_grad()
    def absolute(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibration-free mean and calibrated 1-sigma (mmHg), each (B, 3)."""
        mu, lv = self.net.absolute(torch.from_numpy(np.atleast_2d(z).astype(np.float32)))
        sd = np.exp(0.5 * lv.numpy().astype(np.float64)) * self.abs_sd_scale
        return mu.numpy().astype(np.float64), sd

    @torch.no_grad()
    def delta_parts(self, z_t: np.ndarray, z_a: np.ndarray, y_a: np.ndarray, dt_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden differences (B, hidden) for the personal layer and calibrated 1-sigma (B, 3) of the delta."""
        zt = torch.from_numpy(np.atleast_2d(z_t).astype(np.float32))
        za = torch.from_numpy(np.atleast_2d(z_a).astype(np.float32))
        ya = torch.from_numpy(np.atleast_2d(y_a).astype(np.float32))
        h = self.net.delta_hidden(zt, za, ya)
        lv = self.net.delta_logvar(zt, za, torch.from_numpy(np.asarray(dt_s, dtype=np.float32).reshape(-1)))
        sd = np.exp(0.5 * lv.numpy().astype(np.float64)) * self.delta_sd_scale
        return h.numpy().astype(np.float32), sd


def _to_bytes(net: PopulationNet, constants: dict[str, Any], meta: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save({"format": 1, "state_dict": state, "constants": constants, "meta": meta}, buf)
    return buf.getvalue()


def population_to_bytes(pop: Population) -> bytes:
    """Weights + constants + meta as one small torch file's bytes (``population_from_bytes`` reads them)."""
    return _to_bytes(pop.net, pop.constants, pop.meta)


def population_from_bytes(data: bytes) -> Population:
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a foreign file
        raise ValueError(f"not a bpstream population weights file: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != 1:
        raise ValueError("not a bpstream population weights file")
    net = PopulationNet()
    net.load_state_dict(blob["state_dict"])
    meta = dict(blob.get("meta") or {})
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()  # names the exact weights in every estimate
    return Population(net, blob.get("constants"), meta)


@functools.lru_cache(maxsize=1)
def default_population() -> Population:
    """The weights shipped in the package, read once through importlib.resources (so they load from an
    installed wheel too): the one read of package data in ``bpstream.models``, shared read-only."""
    return population_from_bytes(resources.files("bpstream.models").joinpath("weights", SHIPPED_WEIGHTS).read_bytes())
