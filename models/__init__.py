"""bpstream.models: per-patient estimators (torch on the CPU) and evaluation metrics.

Never reads the environment, files (except shipped weights through an explicit loader), the clock
or Kafka.
"""

from ._base import (
    ESTIMATORS,
    CarryForward,
    Estimate,
    Estimator,
    MeanEstimator,
    PatientRouter,
    Validity,
    make_estimator,
    register,
)
from ._state import StateError, pack, unpack

__all__ = [
    "ESTIMATORS",
    "CarryForward",
    "Estimate",
    "Estimator",
    "MeanEstimator",
    "PatientRouter",
    "StateError",
    "Validity",
    "make_estimator",
    "pack",
    "register",
    "unpack",
]
