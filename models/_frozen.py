"""The population model as an estimator: ``frozen`` (calibration-free) and ``offset`` (frozen plus the
mean calibration residual), and what every model estimator shares (``ttt`` in ``_ttt`` builds on it).
"""

from __future__ import annotations

import numpy as np

from bpstream.filters import Reason, Reference, Window
from bpstream.models._base import Estimate, Estimator, Validity
from bpstream.models._features import N_FEATURES  # the last columns of the embedding
from bpstream.models._population import Population, default_population

__all__ = ["FrozenEstimator", "OffsetEstimator", "calibration_free", "frozen_map"]

_FIELDS = ("sbp_mmhg", "dbp_mmhg", "map_mmhg")


def _label_vec(label: Reference) -> np.ndarray:
    out = np.full(3, np.nan)
    for k, name in enumerate(_FIELDS):
        v = getattr(label, name)
        if v is not None and np.isfinite(v):
            out[k] = float(v)
    return out


def _estimate(mu: np.ndarray, sd: np.ndarray | None, validity=Validity.VALID, reasons=()) -> Estimate:
    def f(v):
        return None if v is None or not np.isfinite(v) else float(v)

    sds = [None] * 3 if sd is None else [f(s) for s in sd]
    return Estimate(f(mu[0]), f(mu[1]), f(mu[2]), sds[0], sds[1], sds[2], validity, tuple(reasons))


def frozen_map(p: np.ndarray, f: np.ndarray, c0, shrink, coef, f_mean) -> np.ndarray:
    """``frozen``'s calibration-free estimate ``c0 + shrink * (p - c0) + (f - f_mean) . coef`` (broadcasting: one
    quantity over windows in the fit, three quantities of one window in ``FrozenEstimator``)."""
    return c0 + shrink * (np.asarray(p) - c0) + ((np.asarray(f) - f_mean) * np.asarray(coef)).sum(-1)


def calibration_free(pop: Population, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """``frozen``'s estimate of one window and its 1-sigma, each (3,): the fitted map (``fit_frozen``) with its
    constant sd, or (weights without fitted constants) the network's own prediction and uncertainty."""
    z = pop.encode(window)
    mu, sd = pop.absolute(z)
    c = pop.constants
    if "abs_shrink" not in c:
        return mu[0], sd[0]
    none = np.zeros((3, N_FEATURES))  # weights fitted before the feature ridge existed
    mu0 = frozen_map(mu[0], np.asarray(z, np.float64)[-N_FEATURES:], np.asarray(c["abs_center_mmhg"], np.float64),
                     np.asarray(c["abs_shrink"], np.float64), np.asarray(c.get("abs_feature_coef", none), np.float64),
                     np.asarray(c.get("abs_feature_mean", none), np.float64))
    return mu0, np.asarray(c["abs_sd_mmhg"], np.float64)


class _ModelEstimator(Estimator):
    def __init__(self, population: Population | None = None, seed: int = 0):
        self.population = population
        self.seed = seed

    @property
    def pop(self) -> Population:
        """The population model (parameter), else the shipped weights through the explicit loader."""
        return self.population if self.population is not None else default_population()

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the population weights file this estimator uses (published with every estimate)."""
        return self.pop.meta.get("weights_sha256")

    def change_alarm_mmhg(self) -> tuple[float, float] | None:
        """This estimator's threshold in the population's constants (``ttt`` and ``fusion`` have one)."""
        return self.pop.suggest_change_mmhg(self.name)

    @staticmethod
    def _usable(label: Reference) -> bool:
        return bool(label.usable) and np.isfinite(_label_vec(label)).any()


class FrozenEstimator(_ModelEstimator):
    """The population model alone: calibration-free, never learns. With fitted constants, per quantity either
    the CNN's prediction shrunk towards the training mean or a ridge on the 9 physiological features of the
    embedding (``fit_frozen`` chooses on held-out patients)."""

    name = "frozen"
    state_tag = "est.frozen"

    def predict_one(self, window: Window) -> Estimate:
        mu, sd = calibration_free(self.pop, window)
        return _estimate(mu, sd)

    def learn_one(self, window: Window, label: Reference) -> None:
        return None


class OffsetEstimator(_ModelEstimator):
    """``frozen``'s estimate plus the mean residual (label - ``frozen``) of the calibrations so far (since
    2026-12-07's fourth round; before, the network's unshrunk prediction stood in for ``frozen``)."""

    name = "offset"
    state_tag = "est.offset"

    def __init__(self, population: Population | None = None, seed: int = 0):
        super().__init__(population, seed)
        self.res_sum_ = np.zeros(3)
        self.res_n_ = np.zeros(3)

    def predict_one(self, window: Window) -> Estimate:
        if not (self.res_n_ > 0).any():
            return Estimate.empty(Validity.UNCALIBRATED, (Reason.UNCALIBRATED,))
        mu, _ = calibration_free(self.pop, window)
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.where(self.res_n_ > 0, self.res_sum_ / np.maximum(self.res_n_, 1), np.nan)
        return _estimate(mu + off, self.pop.offset_sd_mmhg)

    def learn_one(self, window: Window, label: Reference) -> None:
        if not self._usable(label):
            return
        y = _label_vec(label)
        mu, _ = calibration_free(self.pop, window)
        ok = np.isfinite(y)
        self.res_sum_ = self.res_sum_ + np.where(ok, y - mu, 0.0)
        self.res_n_ = self.res_n_ + ok
