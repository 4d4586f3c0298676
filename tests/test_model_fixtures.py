"""Shared fixtures for model tests: simulated windows (NeuroKit2) and a small random-init population."""

from __future__ import annotations

import functools

import numpy as np
import torch

from bpstream.filters import Reference, Window
from bpstream.models._net import PopulationNet
from bpstream.models._population import Population

FS = 125.0
N = 1250


@functools.lru_cache(maxsize=None)
def _signals(seed: int, heart_rate: int, duration_s: int = 120) -> tuple[np.ndarray, np.ndarray]:
    import neurokit2 as nk

    ecg = nk.ecg_simulate(duration=duration_s, sampling_rate=int(FS), heart_rate=heart_rate, noise=0.02,
                          random_state=seed)
    ppg = nk.ppg_simulate(duration=duration_s, sampling_rate=int(FS), heart_rate=heart_rate, random_state=seed,
                          motion_amplitude=0.0, powerline_amplitude=0.0, burst_amplitude=0.0, drift=0.0,
                          ibi_randomness=0.0)
    # pulse arrival: delay the PPG by 250 ms so feet follow R peaks
    ppg = np.roll(ppg, int(0.25 * FS))
    return ecg.astype(np.float32), ppg.astype(np.float32)


def windows(n: int = 12, seed: int = 0, heart_rate: int = 70, hop_s: float = 2.0) -> list[Window]:
    ecg, ppg = _signals(seed, heart_rate)
    out = []
    for k in range(n):
        a = int(k * hop_s * FS)
        out.append(Window(t_start_s=k * hop_s, t_end_s=k * hop_s + 10.0, fs_hz=FS,
                          ecg=ecg[a : a + N].copy(), ppg=ppg[a : a + N].copy()))
    return out


def label(sbp: float, dbp: float, t_s: float, usable: bool = True, reasons=()) -> Reference:
    return Reference(sbp, dbp, dbp + (sbp - dbp) / 3.0, usable=usable, reasons=tuple(reasons), t_s=t_s,
                     good_beat_fraction=1.0, n_beats=10)


@functools.lru_cache(maxsize=None)
def population(seed: int = 0) -> Population:
    torch.manual_seed(seed)
    net = PopulationNet()
    with torch.no_grad():  # a non-trivial delta layer so adaptation has something to move
        net.delta_out.weight.mul_(3.0)
    return Population(net, {"offset_sd_mmhg": [8.0, 5.0, 6.0], "level_blend": [0.3, 0.5, 0.5],
                            "sd_base_mmhg2": [9.0, 4.0, 4.0], "sd_slope_mmhg2_per_s": [0.5, 0.05, 0.1],
                            "fusion": FUSION_FIXTURE})


# every branch of ``fusion`` on: smoothing, a gain, a dead band, the per-patient gain update
FUSION_FIXTURE = {"tau_s": 10.0, "gain": [0.5, 0.4, 0.45], "deadband_mmhg": [1.0, 0.5, 0.5],
                  "var0_mmhg2": [16.0, 6.0, 8.0], "var_age_mmhg2_per_s": [0.2, 0.05, 0.1],
                  "var_change": [0.5, 0.5, 0.5], "gain_prior_var": [0.2, 0.2, 0.2],
                  "gain_obs_var_mmhg2": [16.0, 6.0, 8.0]}
