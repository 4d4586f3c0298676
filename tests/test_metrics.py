"""Metrics against small hand-computed cases, grade bounds and NaN/empty handling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpstream.models._metrics import (
    Z90,
    Grade,
    aami_pass,
    bhs_grade,
    error_stats,
    ieee1708_grade,
    score,
)


def test_symmetric_errors_hand_computed():
    m = score([101.0, 99.0, 103.0, 97.0], [100.0] * 4)
    assert m.n == 4 and m.n_ref == 4
    assert m.me == pytest.approx(0.0)
    assert m.mae == pytest.approx(2.0)
    assert m.rmse == pytest.approx(math.sqrt(5.0))
    assert m.sd == pytest.approx(math.sqrt(20.0 / 3.0))  # sample SD, ddof=1
    assert (m.within5, m.within10, m.within15) == (1.0, 1.0, 1.0)
    assert m.bhs is Grade.A and m.ieee1708 is Grade.A and m.aami_pass is True
    assert m.coverage90 is None and m.n_coverage == 0


def test_mixed_errors_hand_computed():
    ref = np.full(5, 80.0)
    err = np.array([0.0, 5.0, -10.0, 15.0, 20.0])
    m = score(ref + err, ref)
    assert m.me == pytest.approx(6.0)
    assert m.mae == pytest.approx(10.0)
    assert m.rmse == pytest.approx(math.sqrt(150.0))
    assert m.sd == pytest.approx(math.sqrt(((err - 6.0) ** 2).sum() / 4))
    assert (m.within5, m.within10, m.within15) == (0.4, 0.6, 0.8)
    assert m.bhs is Grade.D and m.ieee1708 is Grade.D and m.aami_pass is False


def test_within_bound_is_inclusive_despite_float_noise():
    assert 128.3 - 113.3 > 15.0  # the float noise this guards against
    m = score([128.3, 118.3, 130.0], [113.3, 113.3, 113.3])
    assert m.within5 == pytest.approx(1 / 3) and m.within15 == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "w, grade",
    [
        ((0.60, 0.85, 0.95), Grade.A),
        ((0.59, 0.85, 0.95), Grade.B),
        ((1.00, 1.00, 0.94), Grade.B),
        ((0.50, 0.75, 0.90), Grade.B),
        ((0.50, 0.74, 0.90), Grade.C),
        ((0.40, 0.65, 0.85), Grade.C),
        ((0.40, 0.65, 0.84), Grade.D),
        ((0.39, 1.00, 1.00), Grade.D),
        ((0.0, 0.0, 0.0), Grade.D),
    ],
)
def test_bhs_grade_bounds(w, grade):
    assert bhs_grade(*w) is grade


def test_bhs_grade_from_counts_at_the_bound():
    # 20 windows: 12 (60 %) within 5, 17 (85 %) within 10, 19 (95 %) within 15 -> exactly A
    err = [0.0] * 12 + [7.0] * 5 + [12.0] * 2 + [30.0]
    m = score(np.add(100.0, err), [100.0] * 20)
    assert (m.within5, m.within10, m.within15) == (0.6, 0.85, 0.95)
    assert m.bhs is Grade.A
    err[0] = 5.5  # one fewer within 5 -> 55 % -> B
    assert score(np.add(100.0, err), [100.0] * 20).bhs is Grade.B


@pytest.mark.parametrize(
    "mae, grade",
    [(0.0, Grade.A), (5.0, Grade.A), (5.01, Grade.B), (6.0, Grade.B), (6.5, Grade.C), (7.0, Grade.C), (7.01, Grade.D)],
)
def test_ieee1708_grade_bounds(mae, grade):
    assert ieee1708_grade(mae) is grade


@pytest.mark.parametrize(
    "me, sd, ok",
    [(5.0, 8.0, True), (-5.0, 8.0, True), (0.0, 0.0, True), (5.01, 8.0, False), (-5.01, 1.0, False), (0.0, 8.01, False)],
)
def test_aami_bounds(me, sd, ok):
    assert aami_pass(me, sd) is ok


def test_grade_helpers_undefined_inputs():
    assert bhs_grade(None, 0.9, 0.9) is None
    assert ieee1708_grade(None) is None
    assert aami_pass(1.0, None) is None


def test_nan_estimate_counts_as_abstention_nan_reference_drops_window():
    est = [101.0, np.nan, 103.0, None, 150.0]
    ref = [100.0, 100.0, 100.0, 100.0, np.nan]
    m = score(est, ref)
    assert m.n_ref == 4  # the window without reference is not scored at all
    assert m.n == 2  # two abstentions are counted in n_ref only
    assert m.me == pytest.approx(2.0) and m.mae == pytest.approx(2.0)


@pytest.mark.parametrize("est, ref", [([], []), ([np.nan, np.nan], [100.0, 90.0]), ([1.0], [np.nan])])
def test_empty_or_all_nan_gives_none_not_error(est, ref):
    m = score(est, ref, sd=[np.nan] * len(est), record_ids=["r"] * len(est))
    assert m.n == 0
    for key in ("me", "sd", "mae", "rmse", "within5", "within10", "within15", "coverage90",
                "bhs", "ieee1708", "aami_pass", "per_record"):
        assert getattr(m, key) is None, key
    json.dumps(m.to_dict(), allow_nan=False)


def test_single_window_has_no_sd():
    m = score([104.0], [100.0])
    assert m.n == 1 and m.me == 4.0 and m.mae == 4.0 and m.rmse == 4.0
    assert m.sd is None and m.aami_pass is None
    assert m.ieee1708 is Grade.A


def test_coverage90():
    sd = 2.0
    half = Z90 * sd  # 3.29 mmHg
    ref = [100.0, 100.0 + half - 0.01, 100.0 - half - 0.01, 100.0 + 10.0, 100.0]
    m = score([100.0] * 5, ref, sd=[sd, sd, sd, sd, np.nan])
    assert m.n_coverage == 4  # the window without uncertainty is not in the base
    assert m.coverage90 == pytest.approx(2 / 4)
    assert score([100.0] * 5, ref).coverage90 is None
    assert score([100.0] * 5, ref, sd=[np.nan] * 5).coverage90 is None


def test_per_record_average_differs_from_pooled():
    est = [102.0, 102.0, 110.0, np.nan]
    ref = [100.0, 100.0, 100.0, 100.0]
    rec = ["a", "a", "b", "c"]  # c has no scored window and is left out of the average
    m = score(est, ref, record_ids=rec)
    assert m.mae == pytest.approx(14.0 / 3.0)
    pr = m.per_record
    assert pr.records == 2 and pr.n == 3
    assert pr.mae == pytest.approx(6.0)
    assert pr.me == pytest.approx(6.0)
    assert pr.sd == pytest.approx(0.0)  # b's SD (one window) is undefined and left out
    assert pr.within5 == pytest.approx(0.5) and pr.within10 == pytest.approx(1.0)
    assert pr.ieee1708 is Grade.B  # 6.0 is on the B bound
    assert pr.aami_pass is False  # |ME| 6 > 5
    assert score(est, ref).per_record is None


def test_to_dict_is_strict_json_with_grade_strings():
    m = score([101.0, 99.0, 110.0], [100.0, 100.0, 100.0], sd=[1.0, 1.0, 1.0], record_ids=["a", "a", "b"])
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert {"n", "me", "sd", "mae", "rmse", "within5", "within10", "within15"} <= set(d)
    assert d["bhs"] in "ABCD" and d["ieee1708"] in "ABCD"
    assert isinstance(d["aami_pass"], bool)
    assert d["per_record"]["records"] == 2


def test_misaligned_inputs_raise():
    with pytest.raises(ValueError):
        score([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        score([1.0, 2.0], [1.0, 2.0], sd=[1.0])
    with pytest.raises(ValueError):
        score([1.0, 2.0], [1.0, 2.0], record_ids=["a"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-60, 60, allow_nan=False), min_size=2, max_size=40))
def test_identities_hold(errors):
    err = np.asarray(errors)
    s = error_stats(100.0 + err, np.full(err.size, 100.0))
    n = err.size
    assert s.rmse ** 2 == pytest.approx(s.me ** 2 + s.sd ** 2 * (n - 1) / n, abs=1e-6)
    assert s.mae <= s.rmse + 1e-9
    assert s.within5 <= s.within10 <= s.within15


def test_coverage90_of_a_calibrated_gaussian_is_about_90_percent():
    rng = np.random.default_rng(7)
    n = 20000
    sd = rng.uniform(2.0, 12.0, n)
    ref = rng.normal(110.0, 20.0, n)
    est = ref + rng.normal(0.0, sd)
    assert score(est, ref, sd=sd).coverage90 == pytest.approx(0.90, abs=0.01)
    assert score(est, ref, sd=sd / 2).coverage90 == pytest.approx(0.59, abs=0.02)  # over-confident
