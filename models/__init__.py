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


def _model_factory(class_name: str):
    """Registry factory that imports torch only when a model estimator is first built."""

    def factory(**params):
        from . import _ttt

        return getattr(_ttt, class_name)(**params)

    factory.__name__ = f"make_{class_name}"
    return factory


register("frozen", _model_factory("FrozenEstimator"))
register("offset", _model_factory("OffsetEstimator"))
register("ttt", _model_factory("TTTEstimator"))


def load_population(path=None):
    """The explicit weight loader: a weights file from ``bpstream train``, or None for the shipped weights."""
    from ._population import load_population as _load

    return _load(None if path is None else str(path))

__all__ = [
    "ESTIMATORS",
    "CarryForward",
    "Estimate",
    "Estimator",
    "MeanEstimator",
    "PatientRouter",
    "StateError",
    "Validity",
    "load_population",
    "make_estimator",
    "pack",
    "register",
    "unpack",
]
