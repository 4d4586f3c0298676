"""``calibration_suggested``: when the published estimator's own evidence says pressure has left the calibration.

Per window of a calibrated patient whose input passed, the published estimate is compared with the calibration
values the estimator is anchored to (``Estimator.calibration_mmhg``), for SBP and DBP. A window is *off* the
calibration when

* the estimator has a fitted change threshold (``Estimator.change_alarm_mmhg``; ``ttt`` and ``fusion``: fitted with
  the model on patients it never saw, see ``bpstream.models``' ``_suggest_fit``) and the estimated change exceeds it
  (reason ``predicted_change``), or else
* the estimate's 90 % interval (``value +- 1.645 sd``) excludes the carried value (``interval_left_calibration``).

It is *flagged* when it has been off for ``after_windows`` consecutive usable windows, or when the calibration is
older than ``max_age_s``. The event is sent at the first flagged window after each calibration (once per
calibration and reason), with the estimated change and the reason. A new calibration clears the run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bpstream.models import Estimate

__all__ = ["SuggestConfig", "SuggestReason", "suggest", "step"]

_Z90 = 1.6448536269514722


class SuggestReason(str, enum.Enum):
    INTERVAL = "interval_left_calibration"
    CHANGE = "predicted_change"
    AGE = "calibration_age"


@dataclass(frozen=True)
class SuggestConfig:
    after_windows: int = 3  # consecutive usable windows whose interval excludes the carried value
    max_age_s: float = 3600.0  # a calibration older than this is flagged too


def _off(value: float | None, sd: float | None, carried: float | None) -> bool:
    return value is not None and sd is not None and carried is not None and abs(value - carried) > _Z90 * sd


def _beyond(value: float | None, carried: float | None, threshold: float) -> bool:
    return value is not None and carried is not None and abs(value - carried) > threshold


def suggest(run: int, sent: list[str], config: SuggestConfig, est: Estimate,
            carried: tuple[float | None, ...], age_s: float | None,
            change_mmhg: tuple[float, float] | None = None) -> tuple[int, list[str], bool, str | None, dict]:
    """One usable window of a calibrated patient: (new run, new sent reasons, window flagged, reason to send
    now or None, event detail). ``run``/``sent``: plain data kept in the patient state; ``change_mmhg``: the
    estimator's fitted change threshold (SBP, DBP), or None for the interval rule."""
    if change_mmhg is not None:
        off = _beyond(est.sbp_mmhg, carried[0], change_mmhg[0]) or _beyond(est.dbp_mmhg, carried[1], change_mmhg[1])
    else:
        off = _off(est.sbp_mmhg, est.sbp_sd_mmhg, carried[0]) or _off(est.dbp_mmhg, est.dbp_sd_mmhg, carried[1])
    run = run + 1 if off else 0
    reason = None
    if run >= config.after_windows:
        reason = SuggestReason.CHANGE if change_mmhg is not None else SuggestReason.INTERVAL
    elif age_s is not None and age_s > config.max_age_s:
        reason = SuggestReason.AGE
    if reason is None:
        return run, sent, False, None, {}
    detail: dict = {"age_s": age_s, "reason": reason.value}
    for k, name in enumerate(("sbp", "dbp")):
        value = (est.sbp_mmhg, est.dbp_mmhg)[k]
        detail[f"{name}_change_mmhg"] = None if value is None or carried[k] is None else round(value - carried[k], 2)
    if reason.value in sent:
        return run, sent, True, None, detail
    return run, sent + [reason.value], True, reason.value, detail


def step(state, published: tuple[str, ...], config: SuggestConfig, estimates, usable: bool, age_s: float | None,
         t_s: float, outputs: list) -> bool:
    """The step's part: ``calibration_suggested`` for the published method on a usable calibrated window of
    ``state`` (a ``PatientState``); appends the event to ``outputs``; returns whether the window is flagged."""
    from ._messages import Event, EventKind

    if not usable or not published or state.calibrations == 0:
        return False
    if state.suggest_calibrations != state.calibrations:  # a new calibration clears the run
        state.suggest_run, state.suggest_sent, state.suggest_calibrations = 0, [], state.calibrations
    method = published[0]
    estimator = state.estimators[method]
    run, sent, flagged, reason, detail = suggest(state.suggest_run, state.suggest_sent, config, estimates[method],
                                                 estimator.calibration_mmhg(), age_s, estimator.change_alarm_mmhg())
    state.suggest_run, state.suggest_sent = run, sent
    if reason is not None:
        outputs.append(Event(EventKind.CALIBRATION_SUGGESTED, t_s, detail=detail))
    return flagged
