"""One conformance suite over EVERY estimator in the registry (river / scikit-learn style).

For each: inputs are not mutated; ``predict_one`` never changes state; state round-trips through
``to_bytes``/``load_bytes`` exactly (same bytes, same predictions after); the same seed and the same
stream give the same outputs; the state stays under 64 KB.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from bpstream.models import ESTIMATORS, Estimate, make_estimator

from .test_model_fixtures import label, population, windows

MODEL_ESTIMATORS = {"frozen", "offset", "ttt", "fusion"}
MAX_STATE_BYTES = 64 * 1024


def build(name: str, seed: int = 0):
    if name in MODEL_ESTIMATORS:
        return make_estimator(name, population=population(), seed=seed)
    return make_estimator(name)


def stream(n: int = 14):
    """(window, label-or-None) pairs: labels every 4th window, one unusable label, one partial label."""
    ws = windows(n, seed=1, heart_rate=75)
    out = []
    for k, w in enumerate(ws):
        lab = None
        if k % 4 == 1:
            lab = label(120.0 + k, 70.0 - 0.5 * k, w.t_end_s)
        if k == 7:
            lab = label(300.0, 10.0, w.t_end_s, usable=False)
        if k == 11:
            lab = dataclasses.replace(label(118.0, 68.0, w.t_end_s), sbp_mmhg=None)
        out.append((w, lab))
    return out


def drive(est, pairs):
    preds = []
    for w, lab in pairs:
        preds.append(est.predict_one(w))
        if lab is not None:
            est.learn_one(w, lab)
        else:
            est.learn_unlabeled(w)
    return preds


def as_tuple(e: Estimate):
    return (e.sbp_mmhg, e.dbp_mmhg, e.map_mmhg, e.sbp_sd_mmhg, e.dbp_sd_mmhg, e.map_sd_mmhg, e.validity, e.reasons)


# the package's estimators; test doubles that other test modules register (spies, drifters) are left out, so
# the parametrization does not depend on which test modules were imported first
NAMES = sorted(n for n, f in ESTIMATORS.items() if getattr(f, "__module__", "").startswith("bpstream."))


def test_registry_has_the_model_estimators():
    assert {"mean", "carry_forward", "frozen", "offset", "ttt"} <= set(ESTIMATORS)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_mutated(name):
    est = build(name)
    pairs = stream()
    before = [(w.ecg.copy(), w.ppg.copy(), copy.deepcopy(lab)) for w, lab in pairs]
    drive(est, pairs)
    for (w, lab), (ecg, ppg, lab0) in zip(pairs, before):
        np.testing.assert_array_equal(w.ecg, ecg)
        np.testing.assert_array_equal(w.ppg, ppg)
        assert lab == lab0


@pytest.mark.parametrize("name", NAMES)
def test_predict_one_never_changes_state(name):
    est = build(name)
    pairs = stream()
    for w, lab in pairs:
        before = est.to_bytes()
        first = as_tuple(est.predict_one(w))
        assert est.to_bytes() == before
        assert as_tuple(est.predict_one(w)) == first  # and is repeatable
        if lab is not None:
            est.learn_one(w, lab)
        else:
            est.learn_unlabeled(w)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_exactly(name):
    pairs = stream()
    est = build(name)
    drive(est, pairs[:9])
    data = est.to_bytes()
    assert len(data) <= MAX_STATE_BYTES
    clone = build(name).load_bytes(data)
    assert clone.to_bytes() == data
    # the clone and the original continue identically
    assert [as_tuple(p) for p in drive(clone, pairs[9:])] == [as_tuple(p) for p in drive(est, pairs[9:])]
    assert clone.to_bytes() == est.to_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    pairs = stream()
    a, b = build(name, seed=3), build(name, seed=3)
    assert [as_tuple(p) for p in drive(a, pairs)] == [as_tuple(p) for p in drive(b, pairs)]
    assert a.to_bytes() == b.to_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_estimates_are_estimates(name):
    for p in drive(build(name), stream()):
        assert isinstance(p, Estimate)
        if p.has_numbers:
            assert all(v is None or np.isfinite(v) for v in as_tuple(p)[:6])
