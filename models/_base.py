"""The estimator protocol (river style), estimates, the per-patient router, and the baselines.

An estimator models ONE patient: ``predict_one(window) -> Estimate`` never changes its state;
``learn_one(window, label)`` updates it. ``__init__`` only stores parameters; learned state lives in
attributes ending in ``_`` and round-trips through ``to_bytes``/``load_bytes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from bpstream.filters import Reason, Reference, Window
from bpstream.filters import register_state

from ._state import pack, unpack

__all__ = [
    "Validity",
    "Estimate",
    "Estimator",
    "MeanEstimator",
    "CarryForward",
    "PatientRouter",
    "ESTIMATORS",
    "make_estimator",
    "register",
]


class Validity(str, enum.Enum):
    """How far a consumer may trust an estimate (the ``validity`` of ``bp.estimates.v1``)."""

    VALID = "valid"
    QUESTIONABLE = "questionable"
    INVALID = "invalid"
    CALIBRATING = "calibrating"
    UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class Estimate:
    """SBP/DBP/MAP in mmHg with optional 1-sigma uncertainties (90 % interval = +-1.645 sd).

    Numbers are None when the estimator has none to give (uncalibrated, or input rejected);
    ``validity`` and ``reasons`` say why.
    """

    sbp_mmhg: float | None
    dbp_mmhg: float | None
    map_mmhg: float | None
    sbp_sd_mmhg: float | None = None
    dbp_sd_mmhg: float | None = None
    map_sd_mmhg: float | None = None
    validity: Validity = Validity.VALID
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def empty(cls, validity: Validity, reasons: tuple[Reason, ...]) -> "Estimate":
        return cls(None, None, None, validity=validity, reasons=tuple(reasons))

    @property
    def has_numbers(self) -> bool:
        return self.sbp_mmhg is not None or self.dbp_mmhg is not None or self.map_mmhg is not None


class Estimator:
    """Base class: parameters in ``__init__``, learned state in ``*_`` attributes."""

    name: ClassVar[str] = "estimator"
    # the stable name and layout version of the learned state (``bpstream.filters._stateful``); a subclass
    # that sets ``state_tag`` is registered by that line alone. One without its own tag is stored as
    # ``est.<name>`` at version 1 (no migrations).
    state_tag: ClassVar[str | None] = None
    state_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("state_tag"):
            register_state(cls, cls.__dict__["state_tag"], cls.__dict__.get("state_version", 1))

    def predict_one(self, window: Window) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError

    def learn_one(self, window: Window, label: Reference) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def learn_unlabeled(self, window: Window) -> None:
        """Hook for self-supervised updates on an accepted unlabeled window (default: nothing)."""

    def calibration_mmhg(self) -> tuple[float | None, float | None, float | None]:
        """The calibration values (SBP, DBP, MAP) the estimates are anchored to; None where there is none
        or the estimator is not calibration-anchored (the step's ``calibration_suggested`` compares them)."""
        return (None, None, None)

    def change_alarm_mmhg(self) -> tuple[float, float] | None:
        """The change from the calibration (SBP, DBP) beyond which the step's ``calibration_suggested`` flags a
        window (sustained), fitted with the model on patients it never saw; None (the default): the step uses
        the estimate's 90 % interval instead."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def to_bytes(self) -> bytes:
        return pack(self.state_dict())

    def load_bytes(self, data: bytes) -> "Estimator":
        self.load_state_dict(unpack(data))
        return self


def _field(label: Reference, name: str) -> float | None:
    v = getattr(label, name)
    return None if v is None or not np.isfinite(v) else float(v)


class MeanEstimator(Estimator):
    """The population level: the same SBP/DBP/MAP for every window.

    Its parameters come from the training records (``bpstream validate`` passes the centre of the
    training labels stored with the population weights of the fold that held the record out).
    """

    name = "mean"
    state_tag = "est.mean"

    def __init__(self, sbp_mmhg: float = 120.0, dbp_mmhg: float = 60.0, map_mmhg: float = 80.0):
        self.sbp_mmhg = sbp_mmhg
        self.dbp_mmhg = dbp_mmhg
        self.map_mmhg = map_mmhg

    def predict_one(self, window: Window) -> Estimate:
        return Estimate(self.sbp_mmhg, self.dbp_mmhg, self.map_mmhg)

    def learn_one(self, window: Window, label: Reference) -> None:
        return None


class CarryForward(Estimator):
    """The last accepted calibration label, carried forward (each of SBP/DBP/MAP separately)."""

    name = "carry_forward"
    state_tag = "est.carry_forward"

    def __init__(self) -> None:
        self.last_: list[float | None] = [None, None, None]

    def predict_one(self, window: Window) -> Estimate:
        sbp, dbp, map_ = self.last_
        if sbp is None and dbp is None and map_ is None:
            return Estimate.empty(Validity.UNCALIBRATED, (Reason.UNCALIBRATED,))
        return Estimate(sbp, dbp, map_)

    def learn_one(self, window: Window, label: Reference) -> None:
        new = [_field(label, n) for n in ("sbp_mmhg", "dbp_mmhg", "map_mmhg")]
        self.last_ = [n if n is not None else old for n, old in zip(new, self.last_)]

    def calibration_mmhg(self) -> tuple[float | None, float | None, float | None]:
        return tuple(self.last_)


ESTIMATORS: dict[str, Callable[..., Estimator]] = {
    "mean": MeanEstimator,
    "carry_forward": CarryForward,
}


def register(name: str, factory: Callable[..., Estimator]) -> None:
    ESTIMATORS[name] = factory


def make_estimator(name: str, **params: Any) -> Estimator:
    try:
        factory = ESTIMATORS[name]
    except KeyError:
        raise KeyError(f"unknown estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}") from None
    return factory(**params)


class PatientRouter:
    """One estimator per patient, created on first sight (like river's ``compose.Grouper``)."""

    def __init__(self, factory: Callable[[], Estimator]):
        self.factory = factory
        self.models_: dict[str, Estimator] = {}

    def _get(self, patient_id: str) -> Estimator:
        if patient_id not in self.models_:
            self.models_[patient_id] = self.factory()
        return self.models_[patient_id]

    def predict_one(self, patient_id: str, window: Window) -> Estimate:
        model = self.models_.get(patient_id)
        return (model or self.factory()).predict_one(window)

    def learn_one(self, patient_id: str, window: Window, label: Reference) -> None:
        self._get(patient_id).learn_one(window, label)

    def forget(self, patient_id: str) -> None:
        self.models_.pop(patient_id, None)
