"""``calibration_suggested`` on ``ttt``'s fitted change threshold: the fit (held-out records, a fixed grid, the
false-alarm cap), the step's rule and the estimator's side (anchor values, threshold from the population)."""

from __future__ import annotations

import copy

import numpy as np

from bpstream.models import Estimate, record_predictions
from bpstream.models._suggest_fit import SUGGEST_GRID, fit_suggest, flag_runs
from bpstream.stream.core._suggest import SuggestConfig, suggest

from .test_model_fixtures import label, population, windows
from .test_ttt import ttt

N_F = 9


def test_flag_runs_needs_a_sustained_run_of_either_quantity():
    change = np.array([[5, 0], [5, 0], [0, 0], [5, 0], [0, 3], [5, 0], [0, 0]], float)
    got = flag_runs(change, np.array([4.0, 2.0]), after_windows=3)
    assert got.tolist() == [False, False, False, False, False, True, False]
    assert flag_runs(change, np.array([4.0, 2.0]), after_windows=1).tolist() == [True, True, False, True, True,
                                                                                  True, False]


def _record(rng, moved: bool, w, n: int = 40, group: int = 0, with_w: bool = True):
    """A record with one window every 5 s; feature 0 drives SBP through ``w``; a moved record's pressure and
    feature 0 ramp after 100 s, a still one's stay put (feature noise only)."""
    t = 5.0 * np.arange(1, n + 1)
    ramp = np.clip((t - 100.0) / 50.0, 0.0, 1.0) if moved else np.zeros(n)
    feats = np.zeros((n, N_F))
    feats[:, 0] = 2.0 * ramp + rng.normal(0, 0.5, n)
    y = np.stack([120 + 30 * ramp, 60 + 10 * ramp, 80 + 15 * ramp], 1)
    z = np.hstack([np.zeros((n, 32)), feats])
    return record_predictions(t, np.full((n, 3), 100.0), y, z, group, w if with_w else None)


def test_fit_takes_the_smallest_grid_threshold_within_the_false_alarm_cap():
    w = np.zeros((3, N_F))
    w[0, 0], w[1, 0] = 6.0, 2.0  # 6 mmHg SBP, 2 mmHg DBP per unit of feature 0
    rng = np.random.default_rng(0)
    recs = [_record(rng, moved=i % 3 == 0, w=w, group=i % 2) for i in range(24)]
    fit = fit_suggest(recs, after_windows=3, max_false_alarm=0.04)["suggest"]
    thr = np.asarray(fit["ttt"])
    info = fit["fit"]["ttt"]
    c = info["c"]
    assert c in SUGGEST_GRID[1:] and np.allclose(thr, c * np.asarray(info["scale_mmhg"]))

    def rates(threshold):  # recomputed here from the records, not from the fit's own bookkeeping
        still, moved = [], []
        for r in recs:
            after = np.flatnonzero(r.t_s >= 30.0)
            a, later = after[0], after[1:]
            pred = (r.z[later, 32:] - r.z[a, 32:]) @ w[:2].T
            d = r.y[later, 0] - r.y[a, 0]
            f = flag_runs(pred, threshold, 3)
            still += list(f[np.abs(d) < 5])
            moved += list(f[np.abs(d) >= 15])
        return np.mean(still), np.mean(moved)

    fa, sens = rates(thr)
    assert fa <= 0.04 and abs(fa - info["false_alarm"]) < 1e-12 and abs(sens - info["sensitivity"]) < 1e-12
    assert sens > 0.5  # the ramps are seen
    smaller = SUGGEST_GRID[SUGGEST_GRID.index(c) - 1]
    assert rates(smaller * np.asarray(info["scale_mmhg"]))[0] > 0.04  # one step lower breaks the cap


def test_fit_uses_only_the_predicting_models_map_and_can_refuse():
    w = np.zeros((3, N_F))
    w[0, 0] = 6.0
    rng = np.random.default_rng(1)
    no_map = [_record(rng, moved=True, w=w, with_w=False) for _ in range(5)]
    assert fit_suggest(no_map)["suggest"]["ttt"] is None  # nothing to replay without the model's map
    # a map that says nothing about the pressure: no threshold keeps the false alarms of noise-only changes
    # under a cap of 0: the fit declines (the step then falls back to the interval rule)
    recs = [_record(rng, moved=False, w=w) for _ in range(6)]
    assert fit_suggest(recs, max_false_alarm=-1.0)["suggest"]["ttt"] is None


def test_step_rule_uses_the_threshold_instead_of_the_interval():
    cfg = SuggestConfig(after_windows=3, max_age_s=600.0)
    carried = (120.0, 70.0, 88.0)
    small = Estimate(123.0, 70.5, 89.0, 0.5, 0.5, 0.5)  # outside its tight interval, within the threshold
    big = Estimate(126.0, 70.0, 90.0, 0.5, 0.5, 0.5)
    dbp_only = Estimate(121.0, 73.0, 89.0, 0.5, 0.5, 0.5)
    thr = (5.0, 2.5)
    run, sent = 0, []
    for _ in range(4):
        run, sent, flagged, reason, _ = suggest(run, sent, cfg, small, carried, 30.0, thr)
        assert not flagged
    # without a threshold the same estimates leave the interval: the old rule flags them
    assert suggest(2, [], cfg, small, carried, 30.0)[3] == "interval_left_calibration"
    outs = []
    for est in (big, big, dbp_only, small, big):
        run, sent, flagged, reason, detail = suggest(run, sent, cfg, est, carried, 30.0, thr)
        outs.append((flagged, reason))
    assert outs == [(False, None), (False, None), (True, "predicted_change"), (False, None), (False, None)]


def test_ttt_exposes_its_anchor_and_the_populations_threshold():
    pop = copy.deepcopy(population())
    est = ttt()
    assert est.calibration_mmhg() == (None, None, None) and est.change_alarm_mmhg() is None
    w = windows(3)
    est.learn_one(w[0], label(130.0, 70.0, w[0].t_end_s))
    est.learn_one(w[1], label(135.0, 72.0, w[1].t_end_s))
    sbp, dbp, _ = est.calibration_mmhg()
    assert (sbp, dbp) == (135.0, 72.0)
    pop.constants["suggest"] = {"ttt": [4.5, 2.0], "fusion": None}
    from bpstream.models import make_estimator

    assert make_estimator("ttt", population=pop).change_alarm_mmhg() == (4.5, 2.0)
    assert make_estimator("fusion", population=pop).change_alarm_mmhg() is None


def test_the_fits_fusion_change_is_the_estimators():
    """The change the fit replays for ``fusion`` equals ``FusionEstimator``'s estimate minus its calibration, window
    by window, under one calibration (same smoothing, map, dead band, gain and age gate)."""
    from bpstream.models import make_estimator
    from bpstream.models._suggest_fit import _fusion_change

    pop = copy.deepcopy(population())
    ws = windows(30, seed=4, heart_rate=80) + windows(30, seed=5, heart_rate=100)
    ws = [type(w)(t_start_s=2.0 * i, t_end_s=2.0 * i + 10.0, fs_hz=w.fs_hz, ecg=w.ecg, ppg=w.ppg) for i, w in enumerate(ws)]
    z = np.stack([pop.encode(w) for w in ws]).astype(np.float64)
    p = pop.absolute(z.astype(np.float32))[0]
    t = np.array([w.t_end_s for w in ws])
    rng = np.random.default_rng(2)
    fusion = {"tau_s": 10.0, "weights": rng.normal(0, 30.0, (3, 44)).tolist(), "gain": [1.2, 0.8, 1.0],
              "gain_age_half_s": [30.0, 0.0, 60.0], "deadband_mmhg": [0.05, 0.0, 0.0], "gain_prior_var": [0.0] * 3}
    pop.constants["fusion"] = fusion
    est = make_estimator("fusion", population=pop)
    a = int(np.flatnonzero(t >= 30.0)[0])
    got = []
    for i, w in enumerate(ws):
        if i < a:
            est.learn_unlabeled(w)
        elif i == a:
            est.learn_one(w, label(130.0, 70.0, w.t_end_s))
        else:
            e = est.predict_one(w)
            got.append((e.sbp_mmhg - 130.0, e.dbp_mmhg - 70.0))
            est.learn_unlabeled(w)
    rec = record_predictions(t, p, np.full((len(t), 3), 100.0), z)
    want = _fusion_change(fusion)(rec, a, np.arange(a + 1, len(ws)))
    # equal up to float32 rounding of the embeddings (encoded one by one there, in a batch here)
    assert np.abs(np.asarray(got) - want).max() < 1e-5 * np.abs(want).max() and np.abs(want).max() > 1.0
