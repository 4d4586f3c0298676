"""The example messages of the AsyncAPI document, built by the very functions the worker and the tools
use to write messages (so an example can never disagree with the code); the README shows the same
messages. Fixed values, no clock: the generated document is reproducible."""

from __future__ import annotations

import base64
import json

import numpy as np

from bpstream.filters import Chunk, Reason
from bpstream.models import Estimate, Validity

from ._codec import deadletter_doc, encode_waveform, estimate_doc, event_doc
from bpstream.stream.core import Calibrate, Event, EventKind, Reset, WindowResult
from ._schemas import command_doc, from_iso
from ._wire_types import COMMANDS, DEADLETTER, ESTIMATES, EVENTS, WAVEFORMS

__all__ = ["examples"]

_MODEL = {"name": "carry_forward", "version": "0.1.0", "weights_sha256": None}


def _t(text: str) -> float:
    return from_iso(text)


def _window(seq: int, estimate: Estimate, usable: bool) -> WindowResult:
    return WindowResult(seq=seq, t_start_s=_t("2026-05-28T20:28:22Z"), t_end_s=_t("2026-05-28T20:28:32Z"), segment=0,
                        input_usable=usable, input_reasons=() if usable else (Reason.PPG_FLAT,), ecg_score=0.93,
                        ppg_score=0.88 if usable else 0.0, reference=None, estimates={"carry_forward": estimate},
                        calibration_count=1, calibration_age_s=82.0)


def examples() -> dict[str, list[tuple[str, dict]]]:
    """topic -> [(name, message document)]."""
    chunk = Chunk(t_start_s=_t("2026-05-28T20:26:40Z"), fs_hz={"ecg": 250.0, "ppg": 250.0},
                  signals={"ecg": np.array([0.105, 0.11, 0.12]), "ppg": np.array([1.5, 1.52, 1.55], dtype=np.float32)})
    wave = json.loads(encode_waveform("a555l", 42, chunk, bed="ICU3-12", monitor_id="mon-7f3a",
                                      units={"ecg": "mV", "ppg": "NU"}, gains={"ecg": (200.0, 0.0)}))
    cal = command_doc("a555l", Calibrate("6f1c2d9e-1b7a-4c1e-9a55-0c3f2b8d7e41", _t("2026-05-28T20:28:15Z"), 128.0,
                                         74.0, None, "cuff"), _t("2026-05-28T20:28:17Z"), operator="rn-042")
    reset = command_doc("a555l", Reset("0b9e4c1a-77d2-4a4f-8f0e-5d2c9a1b3e77"), _t("2026-05-28T20:28:17Z"),
                        operator="rn-042")
    published = _t("2026-05-28T20:28:32.35Z")
    valid = estimate_doc("a555l", _window(57, Estimate(176.0, 82.1, 116.5), True), "carry_forward", model=_MODEL,
                         published_at_s=published, bed="ICU3-12", monitor_id="mon-7f3a")
    rejected = estimate_doc("a555l", _window(58, Estimate.empty(Validity.INVALID, (Reason.PPG_FLAT,)), False),
                            "carry_forward", model=_MODEL, published_at_s=published, bed="ICU3-12",
                            monitor_id="mon-7f3a")
    at = _t("2026-05-28T20:28:32Z")
    accepted = event_doc("a555l", Event(EventKind.CALIBRATION_ACCEPTED, at, None, "6f1c2d9e-1b7a-4c1e-9a55-0c3f2b8d7e41",
                                        {"source": "cuff", "t_s": _t("2026-05-28T20:28:15Z"), "late_s": 17.0}),
                         published_at_s=published)
    refused = event_doc("a555l", Event(EventKind.CALIBRATION_REJECTED, at, Reason.CUFF_IMPLAUSIBLE, "c-2"),
                        published_at_s=published)
    dead = deadletter_doc(Reason.MSG_NAN_SAMPLES, "ppg has 3 non-finite float32 samples", topic=WAVEFORMS, partition=5,
                          offset=18231, key=b"a555l", payload=base64.b64decode("eyJzY2hlbWEiOiJicC53YXZlZm9ybXMudjEiLC4uLn0="),
                          failed_at_s=_t("2026-05-28T20:28:40Z"))
    return {WAVEFORMS: [("chunk", wave)], COMMANDS: [("calibrate", cal), ("reset", reset)],
            ESTIMATES: [("valid", valid), ("rejected window", rejected)],
            EVENTS: [("calibration accepted", accepted), ("calibration rejected", refused)],
            DEADLETTER: [("non-finite samples", dead)]}
