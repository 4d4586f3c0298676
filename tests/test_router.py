"""The per-patient router: one estimator per patient, created on first label, never shared."""

from __future__ import annotations

import numpy as np

from bpstream.filters import Reference, Window
from bpstream.models import CarryForward, PatientRouter, Validity


def _window(t: float) -> Window:
    z = np.zeros(1250, dtype=np.float32)
    return Window(t - 10.0, t, 125.0, z, z)


def test_router_keeps_patients_apart_and_predicting_creates_nothing():
    router = PatientRouter(CarryForward)
    assert router.predict_one("bed-1", _window(10)).validity == Validity.UNCALIBRATED
    assert router.models_ == {}  # predicting for an unseen patient leaves no state behind
    router.learn_one("bed-1", _window(10), Reference(120.0, 70.0, 90.0, usable=True))
    router.learn_one("bed-2", _window(10), Reference(95.0, 50.0, 65.0, usable=True))
    assert router.predict_one("bed-1", _window(12)).sbp_mmhg == 120.0
    assert router.predict_one("bed-2", _window(12)).sbp_mmhg == 95.0
    assert router.predict_one("bed-3", _window(12)).sbp_mmhg is None
    router.forget("bed-1")
    assert router.predict_one("bed-1", _window(14)).sbp_mmhg is None
    assert router.predict_one("bed-2", _window(14)).sbp_mmhg == 95.0
