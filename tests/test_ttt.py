"""Behaviour of the calibration-anchored test-time-training estimator and its safeguards."""

from __future__ import annotations

import numpy as np

from bpstream.filters import Reason
from bpstream.models import Validity, make_estimator
from bpstream.models._ttt import TTTEstimator

from .test_model_fixtures import label, population, windows


def ttt(**kw) -> TTTEstimator:
    return make_estimator("ttt", population=population(), **kw)


def test_uncalibrated_until_a_usable_label():
    est = ttt()
    w = windows(3)
    assert est.predict_one(w[0]).validity == Validity.UNCALIBRATED
    est.learn_one(w[0], label(130, 70, w[0].t_end_s, usable=False))
    assert est.predict_one(w[1]).validity == Validity.UNCALIBRATED
    est.learn_one(w[1], label(130, 70, w[1].t_end_s))
    e = est.predict_one(w[2])
    assert e.validity == Validity.VALID and e.sbp_mmhg is not None and e.sbp_sd_mmhg > 0


def test_anchor_window_predicts_its_own_label():
    est = ttt()
    w = windows(2)
    est.learn_one(w[0], label(141.0, 77.0, w[0].t_end_s))
    e = est.predict_one(w[0])
    assert abs(e.sbp_mmhg - 141.0) < 1e-3 and abs(e.dbp_mmhg - 77.0) < 1e-3


def _two_situations(**kw) -> tuple[TTTEstimator, np.ndarray]:
    """Two windows of different heart rate labelled 40 / 20 mmHg apart (SBP / DBP), labels repeated: the
    estimator after them, and the change a -> b its anchor terms predict with its personal layer."""
    est = ttt(**kw)
    a, b = windows(1, seed=2, heart_rate=60)[0], windows(1, seed=3, heart_rate=110)[0]
    b = type(b)(t_start_s=60.0, t_end_s=70.0, fs_hz=b.fs_hz, ecg=b.ecg, ppg=b.ppg)
    est.learn_one(a, label(110.0, 60.0, a.t_end_s))
    for _ in range(6):  # repeated labels of the same two situations
        est.learn_one(b, label(150.0, 80.0, b.t_end_s))
        est.learn_one(a, label(110.0, 60.0, a.t_end_s))
    pop = est.pop
    fixed, dfeat, _ = est.anchor_terms(pop.encode(b)[None], pop.encode(a)[None],
                                       np.array([[110.0, 60.0, np.nan]], np.float32), np.array([60.0]))
    return est, (fixed[0] + dfeat[0] @ est._weight().T)[:2]


def test_supervised_adaptation_moves_toward_labels():
    """The personal layer learns the labelled change: the change a -> b it predicts is closer to the labels'
    (40 / 20 mmHg) than the same estimator's without adaptation steps."""
    adapted, change = _two_situations(steps_per_label=5, lr=0.05)
    plain, change0 = _two_situations(steps_per_label=0, lr=0.05)
    assert plain.w_ is None and adapted.w_ is not None and not np.allclose(adapted.w_, population().feat_weight)
    target = np.array([40.0, 20.0])
    assert (np.abs(change - target) < np.abs(change0 - target) - 0.5).all(), (change, change0)


def test_l2sp_and_step_cap_keep_weights_near_population():
    def drift(l2sp: float) -> float:
        est = ttt(lr=1.0, rollback_window=1000, l2sp=l2sp)  # the estimator caps lr at 0.05; no rollback here
        assert est.lr <= 0.05
        ws = windows(10, seed=4)
        for k, w in enumerate(ws):
            est.learn_one(w, label(120.0 + 25 * (-1) ** k, 70.0, w.t_end_s))
        d = float(np.max(np.abs(est.w_ - population().feat_weight)))
        assert d <= 0.05 * est.steps_per_label * len(ws) + 1e-6  # the per-step cap
        return d

    anchored, free = drift(1.0), drift(0.0)
    assert anchored < 0.85 * free, (anchored, free)  # the L2-SP term pulls towards the population weights


def test_freeze_after_offset_step_drops_old_anchors():
    est = ttt()
    ws = windows(6)
    est.learn_one(ws[0], label(120, 70, ws[0].t_end_s))
    est.learn_one(ws[1], label(122, 71, ws[1].t_end_s))
    est.learn_one(ws[2], label(150, 95, ws[2].t_end_s, reasons=(Reason.ABP_OFFSET_STEP,)))
    assert len(est.lab_y_) == 1 and est.frozen_left_ > 0
    e = est.predict_one(ws[3])
    assert Reason.ADAPTATION_FROZEN in e.reasons
    n = est.n_updates_
    est.learn_one(ws[3], label(151, 95, ws[3].t_end_s))
    assert est.n_updates_ == n  # no adaptation while frozen


def test_rollback_when_worse_than_offset():
    est = ttt(rollback_window=2)
    ws = windows(8)
    est.learn_one(ws[0], label(120, 70, ws[0].t_end_s))
    est.w_ = np.full_like(population().feat_weight, 30.0)  # a badly adapted personal layer
    est.adam_m_ = np.zeros_like(est.w_)
    est.adam_v_ = np.zeros_like(est.w_)
    # offset (frozen + residual) errors are made small by construction: labels at frozen + const
    mu0, _ = population().absolute(population().encode(ws[0]))
    for w in ws[1:4]:
        mu, _ = population().absolute(population().encode(w))
        est.learn_one(w, label(float(mu[0, 0] - mu0[0, 0] + 120), float(mu[0, 1] - mu0[0, 1] + 70), w.t_end_s))
    assert est.rollbacks_ >= 1


def test_unusable_labels_and_windows_do_not_adapt():
    est = ttt()
    ws = windows(4)
    est.learn_one(ws[0], label(120, 70, ws[0].t_end_s, usable=False))
    assert len(est.lab_y_) == 0 and est.w_ is None


def test_unlabeled_queue_is_throttled_and_capped():
    est = ttt(unlabeled_every=2, max_unlabeled=3)
    ws = windows(12)
    est.learn_one(ws[0], label(120, 70, ws[0].t_end_s))
    for w in ws[1:]:
        est.learn_unlabeled(w)
    assert len(est.unl_t_) == 3
    assert np.all(np.diff(est.unl_t_) > 0)


def test_state_is_small_with_full_queues():
    est = ttt(unlabeled_every=1, ssl_every=3)
    ws = windows(40)
    for k, w in enumerate(ws):
        if k % 2:
            est.learn_one(w, label(120 + k % 7, 70, w.t_end_s))
        else:
            est.learn_unlabeled(w)
    assert len(est.lab_y_) == est.max_labels
    assert len(est.to_bytes()) <= 64 * 1024


def test_offset_estimator_adds_mean_residual():
    est = make_estimator("offset", population=population())
    frozen = make_estimator("frozen", population=population())
    ws = windows(3)
    est.learn_one(ws[0], label(150, 90, ws[0].t_end_s))
    f0 = frozen.predict_one(ws[0])
    f1 = frozen.predict_one(ws[1])
    e1 = est.predict_one(ws[1])
    assert abs(e1.sbp_mmhg - (f1.sbp_mmhg + 150 - f0.sbp_mmhg)) < 1e-4


def test_latest_anchor_blends_with_patient_level_and_uncertainty_grows_with_age():
    est = ttt()
    ws = windows(30)
    est.learn_one(ws[0], label(120.0, 70.0, ws[0].t_end_s))
    est.learn_one(ws[1], label(130.0, 80.0, ws[1].t_end_s))
    e = est.predict_one(ws[1])  # at the newest anchor the delta is zero: y_last + alpha (mean - y_last)
    assert abs(e.sbp_mmhg - (130.0 + 0.3 * (125.0 - 130.0))) < 1e-3
    assert abs(e.dbp_mmhg - (80.0 + 0.5 * (75.0 - 80.0))) < 1e-3
    later = est.predict_one(ws[29])
    assert later.sbp_sd_mmhg > e.sbp_sd_mmhg  # older calibration, wider interval
    assert abs(e.sbp_sd_mmhg - 3.0) < 1e-6  # sqrt(base) at age 0


def test_precision_combination_uses_every_anchor():
    est = ttt(combine="precision")
    ws = windows(3)
    est.learn_one(ws[0], label(120.0, 70.0, ws[0].t_end_s))
    est.learn_one(ws[1], label(160.0, 90.0, ws[1].t_end_s))
    e = est.predict_one(ws[1])
    assert 120.0 < e.sbp_mmhg < 160.0


def test_states_written_before_the_split_still_rebuild():
    """Frozen/offset moved from _ttt to _frozen; a format-1 changelog may hold states that name either path.
    States name tags now (``stream/core/_state_codec.py``); the known old paths map to them."""
    from bpstream.filters._stateful import state_class, tag_of
    from bpstream.models._frozen import FrozenEstimator, OffsetEstimator
    from bpstream.stream.core._state_codec import _LEGACY_PATHS

    assert state_class(_LEGACY_PATHS["bpstream.models._ttt:OffsetEstimator"]) is OffsetEstimator
    assert state_class(_LEGACY_PATHS["bpstream.models._ttt:FrozenEstimator"]) is FrozenEstimator
    assert state_class(_LEGACY_PATHS["bpstream.models._frozen:OffsetEstimator"]) is OffsetEstimator
    assert tag_of(make_estimator("offset")) == ("est.offset", 1)
