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


def test_frozen_chooses_the_feature_ridge_when_the_features_carry_the_level():
    """The CNN's prediction is unrelated to the level; one physiological feature carries it. The fit must take the
    ridge (cross-validated across the 4 groups), predict a new patient's level from the features through
    ``frozen_map``, and keep the shrinkage on the CNN's prediction at 0."""
    from bpstream.models._frozen import frozen_map

    rng = np.random.default_rng(11)
    center = np.array([120.0, 65.0, 85.0])

    def rec(r: int):
        level = center + rng.normal(0, 15, 3)
        t = np.arange(30.0, 100.0, 2.0)
        z = rng.normal(0, 1.0, (len(t), 41))
        z[:, -9] = (level[0] - center[0]) / 15 + rng.normal(0, 0.1, len(t))  # the first feature: SBP's level
        z[:, -8] = (level[1] - center[1]) / 15 + rng.normal(0, 0.1, len(t))
        z[:, -7] = (level[2] - center[2]) / 15 + rng.normal(0, 0.1, len(t))
        y = level + rng.normal(0, 2, (len(t), 3))
        return record_predictions(t, center + rng.normal(0, 15, 3) + rng.normal(0, 2, (len(t), 3)), y, z, group=r % 4), level

    c = fit_test_time_constants([rec(r)[0] for r in range(40)], center)
    assert all(m.startswith("features_ridge") for m in c["frozen_fit"]["model"])
    assert max(c["frozen_fit"]["mae_ratio_to_center"]) < 0.5
    assert c["abs_shrink"] == [0.0, 0.0, 0.0]
    new, level = rec(99)
    for k in range(3):
        mu = frozen_map(new.p[:, k], new.z[:, -9:], c["abs_center_mmhg"][k], c["abs_shrink"][k],
                        c["abs_feature_coef"][k], c["abs_feature_mean"][k])
        assert abs(np.mean(mu) - level[k]) < 5.0  # 15 mmHg spread between patients, the level recovered


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


def test_frozen_estimator_is_centre_plus_shrunk_prediction_plus_feature_term():
    """Hand-computed: c0 + shrink * (p - c0) + (f - f_mean) . coef, f the last 9 columns of the embedding."""
    base = population()
    coef = [[2.0] + [0.0] * 8, [0.0, -1.0] + [0.0] * 7, [0.0] * 9]
    f_mean = [[0.5] * 9, [0.0] * 9, [0.0] * 9]
    consts = {"abs_center_mmhg": [110.0, 60.0, 80.0], "abs_shrink": [0.0, 0.5, 1.0], "abs_feature_coef": coef,
              "abs_feature_mean": f_mean, "abs_sd_mmhg": [10.0, 6.0, 7.0]}
    pop = Population(base.net, {**base.constants, **consts})
    w = windows(3, seed=4, heart_rate=75)[2]
    z = np.asarray(pop.encode(w), np.float64)
    p = pop.absolute(pop.encode(w))[0][0]
    e = make_estimator("frozen", population=pop).predict_one(w)
    assert e.sbp_mmhg == pytest.approx(110.0 + 2.0 * (z[-9] - 0.5))
    assert e.dbp_mmhg == pytest.approx(60.0 + 0.5 * (p[1] - 60.0) - z[-8])
    assert e.map_mmhg == pytest.approx(p[2])
    assert (e.sbp_sd_mmhg, e.dbp_sd_mmhg) == (10.0, 6.0)


def test_offset_is_frozen_plus_the_mean_calibration_residual():
    base = population()
    consts = {"abs_center_mmhg": [110.0, 60.0, 80.0], "abs_shrink": [0.0, 0.5, 1.0],
              "abs_feature_coef": [[2.0] + [0.0] * 8, [0.0] * 9, [0.0] * 9], "abs_feature_mean": [[0.5] * 9] + [[0.0] * 9] * 2,
              "abs_sd_mmhg": [10.0, 6.0, 7.0], "offset_sd_mmhg": [4.0, 3.0, 2.0]}
    pop = Population(base.net, {**base.constants, **consts})
    ws = windows(3, seed=6, heart_rate=70)
    frozen = make_estimator("frozen", population=pop)
    offset = make_estimator("offset", population=pop)
    offset.learn_one(ws[0], label(125.0, 70.0, ws[0].t_end_s))
    f0, f1 = frozen.predict_one(ws[0]), frozen.predict_one(ws[1])
    e = offset.predict_one(ws[1])
    assert e.sbp_mmhg == pytest.approx(f1.sbp_mmhg + 125.0 - f0.sbp_mmhg)
    assert e.dbp_mmhg == pytest.approx(f1.dbp_mmhg + 70.0 - f0.dbp_mmhg)
    assert (e.sbp_sd_mmhg, e.dbp_sd_mmhg) == (4.0, 3.0)


def test_offset_sd_is_the_90_percent_change_residual_after_the_once_calibration():
    from bpstream.models._frozen_fit import _offset_sd

    t = np.array([10.0, 30.0, 32.0, 34.0, 36.0])  # calibration: the window at 30 s (index 1)
    y = np.array([[0.0] * 3, [100.0] * 3, [101.0] * 3, [103.0] * 3, [100.0] * 3])
    pred = np.array([[0.0] * 3, [50.0] * 3, [50.0] * 3, [50.0] * 3, [52.0] * 3])
    rec = record_predictions(t, np.zeros((5, 3)), y)
    got = _offset_sd([rec], pred)["offset_sd_mmhg"]
    expected = np.quantile([1.0, 3.0, 2.0], 0.90) / 1.645  # |(y - 100) - (pred - 50)| after the calibration
    assert got == pytest.approx([expected] * 3)


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
