"""``fusion`` and its constant fit: the fit recovers a real change signal, falls back to carry-forward on
noise, and the estimator computes exactly ``calibration + gain * change`` with the fitted constants."""

from __future__ import annotations

import numpy as np
import pytest

from bpstream.models import fit_test_time_constants, make_estimator, record_predictions
from bpstream.models._fusion_fit import schedule_anchors, smooth
from bpstream.models._population import Population

from .test_model_fixtures import label, population, windows


def _records(n_rec: int, signal: float, seed: int = 0):
    """Simulated patients: BP drifts; the model's prediction sees ``signal`` x the drift plus noise."""
    rng = np.random.default_rng(seed)
    recs = []
    for r in range(n_rec):
        t = np.arange(10.0, 300.0, 2.0)
        drift = np.cumsum(rng.normal(0, 1.0, (len(t), 1)), 0) * np.array([[1.0, 0.5, 0.7]])
        y = np.array([120.0, 65.0, 85.0]) + rng.normal(0, 15, 3) + drift + rng.normal(0, 1.0, (len(t), 3))
        p = np.array([118.0, 66.0, 84.0]) + signal * drift + rng.normal(0, 2.0, (len(t), 3))
        recs.append(record_predictions(t, p, y, rng.normal(0, 0.1, (len(t), 41)), group=r % 2))
    return recs


def _cf_and_fit_mae(c):
    return np.array(c["fit"]["carry_forward_mae"]), np.array(c["fit"]["cv_mae"])


def test_fit_finds_a_real_change_signal():
    c = fit_test_time_constants(_records(16, 1.0), np.array([120.0, 65.0, 85.0]))["fusion"]
    cf, fit = _cf_and_fit_mae(c)
    assert (fit < 0.8 * cf).all()
    assert min(c["gain"]) > 0.3


def test_fit_on_noise_stays_near_carry_forward():
    c = fit_test_time_constants(_records(16, 0.0, seed=3), np.array([120.0, 65.0, 85.0]))["fusion"]
    cf, fit = _cf_and_fit_mae(c)
    assert (fit <= 1.02 * cf).all()  # cross-validated: a noise fit may not beat carry-forward, nor lose much


def test_frozen_shrinkage_follows_how_much_the_level_is_worth():
    rng = np.random.default_rng(5)
    center = np.array([120.0, 65.0, 85.0])

    def recs(informative: bool):
        out = []
        for r in range(30):
            level = center + rng.normal(0, 15, 3)
            guess = level if informative else center + rng.normal(0, 15, 3)
            t = np.arange(30.0, 100.0, 2.0)
            y = level + rng.normal(0, 2, (len(t), 3))
            out.append(record_predictions(t, guess + rng.normal(0, 2, (len(t), 3)), y))
        return out

    assert max(fit_test_time_constants(recs(False), center)["abs_shrink"]) <= 0.3  # unrelated: near the centre
    assert min(fit_test_time_constants(recs(True), center)["abs_shrink"]) >= 0.8  # right: kept


def test_schedule_anchors_and_smoothing():
    t = np.array([10.0, 28.0, 30.0, 44.0, 92.0, 150.0, 151.0, 215.0])
    assert schedule_anchors(t, None).tolist() == [2]
    assert schedule_anchors(t, 60.0).tolist() == [2, 4, 5, 7]
    p = np.array([[0.0], [10.0]])
    assert smooth(np.array([0.0, 10.0]), p, 10.0)[1, 0] == pytest.approx(10.0 * (1 - np.exp(-1.0)))
    assert smooth(np.array([0.0, 10.0]), p, 0.0)[1, 0] == 10.0


def test_estimator_is_calibration_plus_gain_times_change():
    base = population()
    fusion = {"tau_s": 0.0, "weights": np.hstack([np.eye(3), np.zeros((3, 41))]).tolist(), "gain": [0.5, 0.5, 0.5],
              "deadband_mmhg": [0.0, 0.0, 0.0], "var0_mmhg2": [4.0, 4.0, 4.0], "var_age_mmhg2_per_s": [0.0] * 3,
              "var_change": [0.0] * 3, "gain_prior_var": [0.0] * 3, "gain_obs_var_mmhg2": [1.0] * 3}
    pop = Population(base.net, {**base.constants, "fusion": fusion})
    est = make_estimator("fusion", population=pop)
    ws = windows(6, seed=2, heart_rate=80)
    assert est.predict_one(ws[0]).sbp_mmhg is None
    est.learn_one(ws[0], label(130.0, 70.0, ws[0].t_end_s))
    p0 = pop.absolute(pop.encode(ws[0]))[0][0]
    for w in ws[1:]:
        est.learn_unlabeled(w)
        p = pop.absolute(pop.encode(w))[0][0]
        e = make_estimator("fusion", population=pop).load_bytes(est.to_bytes()).predict_one(w)
        assert e.sbp_mmhg == pytest.approx(130.0 + 0.5 * (p[0] - p0[0]))
        assert e.sbp_sd_mmhg == pytest.approx(2.0)


def test_age_gate_is_the_kalman_share_of_the_gain():
    from bpstream.models._fusion import age_gate

    assert age_gate(np.array([0.0, 30.0, 90.0]), np.array([30.0, 30.0, 30.0])).tolist() == [0.0, 0.5, 0.75]
    assert age_gate(np.array([0.0, 5.0]), np.array([0.0, 0.0])).tolist() == [1.0, 1.0]  # 0: no gate


def _noisy_view_records(n_rec: int, noise_mmhg: float, seed: int):
    """BP drifts as a random walk; the model's prediction sees the drift plus white noise."""
    rng = np.random.default_rng(seed)
    recs = []
    for r in range(n_rec):
        t = np.arange(10.0, 320.0, 2.0)
        drift = np.cumsum(rng.normal(0, 1.0, (len(t), 1)), 0) * np.array([[1.0, 0.6, 0.8]])
        y = np.array([120.0, 65.0, 85.0]) + drift
        p = y + rng.normal(0, noise_mmhg, (len(t), 3))
        recs.append(record_predictions(t, p, y, np.zeros((len(t), 41)), group=r % 2))
    return recs


def test_fit_gates_a_noisy_change_by_calibration_age_and_not_a_clean_one():
    """White noise on the predicted change is worth gating shortly after a calibration (the true change is still
    small); an exact prediction is not."""
    center = np.array([120.0, 65.0, 85.0])
    noisy = fit_test_time_constants(_noisy_view_records(12, 15.0, seed=7), center)["fusion"]
    clean = fit_test_time_constants(_noisy_view_records(12, 0.2, seed=7), center)["fusion"]
    assert min(noisy["gain_age_half_s"]) > 0
    assert max(clean["gain_age_half_s"]) == 0
    cf, fit = _cf_and_fit_mae(noisy)
    assert (fit < cf).all()


def test_estimator_applies_the_gain_by_calibration_age():
    base = population()
    fusion = {"tau_s": 0.0, "weights": np.hstack([np.eye(3), np.zeros((3, 41))]).tolist(), "gain": [0.5, 0.5, 0.5],
              "gain_age_half_s": [4.0, 4.0, 4.0],
              "deadband_mmhg": [0.0, 0.0, 0.0], "var0_mmhg2": [4.0, 4.0, 4.0], "var_age_mmhg2_per_s": [0.0] * 3,
              "var_change": [0.0] * 3, "gain_prior_var": [0.0] * 3, "gain_obs_var_mmhg2": [1.0] * 3}
    pop = Population(base.net, {**base.constants, "fusion": fusion})
    est = make_estimator("fusion", population=pop)
    ws = windows(6, seed=2, heart_rate=80)
    est.learn_one(ws[0], label(130.0, 70.0, ws[0].t_end_s))
    p0 = pop.absolute(pop.encode(ws[0]))[0][0]
    for w in ws[1:]:
        est.learn_unlabeled(w)
        p = pop.absolute(pop.encode(w))[0][0]
        age = w.t_end_s - ws[0].t_end_s
        assert est.predict_one(w).sbp_mmhg == pytest.approx(130.0 + 0.5 * age / (age + 4.0) * (p[0] - p0[0]))
