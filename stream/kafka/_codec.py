"""Bytes on Kafka <-> bpstream objects: JSON documents, base64 samples, output messages.

Samples travel as base64 of little-endian ``float32`` (physical units; every sample must be finite)
or ``int16`` with ``gain`` and ``offset`` in the WFDB convention: ``physical = (raw - offset) / gain``;
the raw value -32768 marks a missing sample (decoded as NaN, as WFDB does). A record's own ADC
``gain``/``offset`` make the round trip exact, so a replay through Kafka sees the very same floats as
an in-process replay.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Mapping

import msgspec
import numpy as np

from bpstream.filters import Chunk, Reason
from bpstream.models import Estimate

from bpstream.stream.core import MessageError
from bpstream.stream.core import ChunkMessage, Event, WindowResult
from ._schemas import (
    QUANTITIES,
    UNIT_MMHG,
    CommandMessage,
    Limits,
    check_patient_id,
    command_message,
    from_iso,
    to_iso,
)
from ._wire_decode import decode, prescan
from ._wire_in import ROLES, ChannelDoc, CommandDoc, WaveformDoc
from ._wire_out import (
    CalibrationDoc,
    DeadLetterDoc,
    EstimateDoc,
    EventDoc,
    ModelDoc,
    QualityDoc,
    QuantityDoc,
    SourceDoc,
)
from ._wire_types import COMMANDS, DEADLETTER, ESTIMATES, EVENTS, WAVEFORMS, finite

__all__ = [
    "dumps",
    "encode_channel",
    "WaveformMessage",
    "encode_waveform",
    "decode_waveform",
    "decode_command",
    "estimate_doc",
    "model_info",
    "event_doc",
    "deadletter_doc",
    "DEADLETTER_KEY_MAX",
]

INT16_MISSING = -32768
DEADLETTER_PAYLOAD_MAX = 65536  # bytes of the original message kept in a dead-letter record
DURATION_TOLERANCE_S = 0.1  # a chunk's channels cover the same time to less than this
DEADLETTER_KEY_MAX = 256  # bytes of the original key kept (a patient id has at most 64 characters)
_WAVEFORM = msgspec.json.Decoder(WaveformDoc)
_COMMAND = msgspec.json.Decoder(CommandDoc)


def dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


# -- samples ---------------------------------------------------------------------------------------
def encode_channel(x: np.ndarray, fs_hz: float, unit: str | None = None, *, gain: float | None = None,
                   offset: float = 0.0) -> dict:
    """One channel's wire form: int16 when ``gain`` is given and represents ``x`` exactly, else float32."""
    x = np.asarray(x, dtype=np.float64)
    ch: dict[str, Any] = {"fs_hz": float(fs_hz)}
    if unit:
        ch["unit"] = unit
    if gain:
        raw = np.where(np.isfinite(x), np.round(x * gain + offset), INT16_MISSING)
        if np.all((raw > INT16_MISSING) & (raw <= 32767) | ~np.isfinite(x)):
            back = (raw - offset) / gain
            if np.array_equal(back[np.isfinite(x)], x[np.isfinite(x)]):
                ch.update(encoding="int16", gain=float(gain), offset=float(offset),
                          samples=base64.b64encode(raw.astype("<i2").tobytes()).decode())
                return ch
    if not np.isfinite(x).all():
        raise ValueError("float32 samples must be finite (send int16 with -32768 for missing samples)")
    ch.update(encoding="float32", samples=base64.b64encode(x.astype("<f4").tobytes()).decode())
    return ch


def decode_channel(role: str, ch: ChannelDoc, limits: Limits) -> tuple[float, np.ndarray]:
    """Post-validation of one decoded channel: rate limit, base64, whole values, finiteness, gain, length."""
    fs_hz = ch.fs_hz
    if not fs_hz <= limits.max_fs_hz:
        raise MessageError(Reason.MSG_INVALID, f"{role}.fs_hz must be in (0, {limits.max_fs_hz:g}]")
    try:  # strict base64 (the schema's pattern): whole padded groups, no "=" beyond the padding
        if len(ch.samples) % 4 or ch.samples.endswith("==="):
            raise ValueError
        raw = base64.b64decode(ch.samples, validate=True)
    except (binascii.Error, ValueError):
        raise MessageError(Reason.MSG_INVALID, f"{role}.samples is not base64") from None
    itemsize = 4 if ch.encoding == "float32" else 2
    if len(raw) % itemsize:
        raise MessageError(Reason.MSG_INVALID, f"{role}.samples is not a whole number of {ch.encoding} values")
    if ch.encoding == "float32":
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise MessageError(Reason.MSG_NAN_SAMPLES, f"{role} has {bad} non-finite float32 samples")
    else:
        gain, offset = ch.gain, ch.offset or 0.0
        if gain is None or not finite(gain) or not finite(offset):
            raise MessageError(Reason.MSG_INVALID, f"{role}.gain and {role}.offset must be finite numbers")
        if gain == 0:
            raise MessageError(Reason.MSG_INVALID, f"{role}.gain must not be 0")
        d = np.frombuffer(raw, dtype="<i2")
        x = (d.astype(np.float64) - offset) / gain
        x[d == INT16_MISSING] = np.nan
    if x.size == 0:
        raise MessageError(Reason.MSG_INVALID, f"{role} has no samples")
    if x.size / fs_hz > limits.max_chunk_s:
        raise MessageError(Reason.MSG_OVERSIZED, f"{role} covers more than {limits.max_chunk_s:g} s")
    return fs_hz, x


# -- waveforms -------------------------------------------------------------------------------------
class WaveformMessage:
    """A decoded ``bp.waveforms.v1`` message: who, where, and the chunk for the step."""

    __slots__ = ("patient_id", "bed", "monitor_id", "message")

    def __init__(self, patient_id: str, bed: str | None, monitor_id: str | None, message: ChunkMessage):
        self.patient_id, self.bed, self.monitor_id, self.message = patient_id, bed, monitor_id, message


def encode_waveform(patient_id: str, seq: int, chunk: Chunk, *, bed: str | None = None,
                    monitor_id: str | None = None, units: Mapping[str, str] | None = None,
                    gains: Mapping[str, tuple[float, float]] | None = None) -> bytes:
    """``gains`` maps a role to its ADC ``(gain, offset)`` (int16 wire form when exact)."""
    channels = {}
    for role, x in chunk.signals.items():
        gain, offset = (gains or {}).get(role, (None, 0.0))
        channels[role] = encode_channel(x, chunk.fs_hz[role], (units or {}).get(role), gain=gain, offset=offset)
    doc = {"schema": WAVEFORMS, "patient_id": check_patient_id(patient_id), "seq": int(seq),
           "start_time": to_iso(chunk.t_start_s), "channels": channels}
    if bed:
        doc["bed"] = bed
    if monitor_id:
        doc["monitor_id"] = monitor_id
    return dumps(doc)


def decode_waveform(data: bytes | None, limits: Limits = Limits(), now_s: float | None = None) -> WaveformMessage:
    """``now_s``: the caller's clock (the IO layer's), for the upper bound of the plausible time range."""
    doc: WaveformDoc = decode(prescan(data, limits.max_chunk_bytes, limits.max_depth), _WAVEFORM, WAVEFORMS)
    t0 = limits.check_time(from_iso(doc.start_time, "start_time"), "start_time", now_s)
    fs_hz, signals = {}, {}
    for role in ROLES:
        ch = getattr(doc.channels, role)
        if ch is not msgspec.UNSET:
            fs_hz[role], signals[role] = decode_channel(role, ch, limits)
    # same duration: to less than one sample period of the slowest channel (same rate: same sample count),
    # and never by 0.1 s or more (a channel at a very low rate must not carry another's long tail: the
    # reorder buffer counts a held chunk's duration by its ECG)
    durations = [len(signals[r]) / fs_hz[r] for r in signals]
    if max(durations) - min(durations) >= min((1.0 - 1e-9) / min(fs_hz.values()), DURATION_TOLERANCE_S):
        raise MessageError(Reason.MSG_INVALID, "channels of the chunk cover different durations "
                                               "(they must agree to less than one sample period and 0.1 s)")
    chunk = Chunk(t_start_s=t0, fs_hz=fs_hz, signals=signals)
    return WaveformMessage(doc.patient_id, doc.bed, doc.monitor_id, ChunkMessage(doc.seq, chunk))


def decode_command(data: bytes | None, limits: Limits = Limits(), now_s: float | None = None) -> CommandMessage:
    doc = decode(prescan(data, limits.max_command_bytes, limits.max_depth), _COMMAND, COMMANDS)
    return command_message(doc, limits, now_s)


# -- outputs ---------------------------------------------------------------------------------------
def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _quantity(name: str, value: float | None, sd: float | None) -> QuantityDoc | None:
    value = _num(value)
    if value is None:
        return None
    return QuantityDoc(value=value, unit=UNIT_MMHG, sd=_num(sd), **QUANTITIES[name])


def model_info(method: str) -> dict:
    """The ``model`` block of every estimate the worker publishes with ``method``: name, version, weights digest."""
    from importlib import metadata

    from bpstream.models import make_estimator

    try:
        version = metadata.version("bpstream")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "unknown"
    est = make_estimator(method)
    return {"name": method, "version": getattr(est, "version", version),
            "weights_sha256": getattr(est, "weights_sha256", None)}


def estimate_doc(patient_id: str, result: WindowResult, method: str, *, model: Mapping[str, Any],
                 published_at_s: float, bed: str | None = None, monitor_id: str | None = None) -> dict:
    """The ``bp.estimates.v1`` document (an ``EstimateDoc``, as builtins) for one window and the published method."""
    est: Estimate = result.estimates[method]
    return msgspec.to_builtins(EstimateDoc(
        schema=ESTIMATES, patient_id=patient_id, bed=bed, monitor_id=monitor_id,
        seq=result.seq, window_start=to_iso(result.t_start_s), window_end=to_iso(result.t_end_s),
        segment=result.segment, method="estimated-ecg-ppg", status="preliminary",
        validity=est.validity, reasons=list(est.reasons),
        quality=QualityDoc(input_usable=result.input_usable, ecg=_num(result.ecg_score), ppg=_num(result.ppg_score),
                           input_reasons=list(result.input_reasons)),
        sbp=_quantity("sbp", est.sbp_mmhg, est.sbp_sd_mmhg),
        dbp=_quantity("dbp", est.dbp_mmhg, est.dbp_sd_mmhg),
        map=_quantity("map", est.map_mmhg, est.map_sd_mmhg),
        model=ModelDoc(**model),
        calibration=CalibrationDoc(count=result.calibration_count, age_s=_num(result.calibration_age_s)),
        published_at=to_iso(published_at_s),
    ))


def event_doc(patient_id: str, event: Event, *, published_at_s: float) -> dict:
    detail = {k: (_num(v) if isinstance(v, float) else v) for k, v in (event.detail or {}).items() if k != "t_s"}
    if (event.detail or {}).get("t_s") is not None:  # the reading's time: an ISO time like every time on the wire
        detail["measured_at"] = to_iso(event.detail["t_s"])
    return msgspec.to_builtins(EventDoc(
        schema=EVENTS, patient_id=patient_id, type=event.kind, at=None if event.t_s is None else to_iso(event.t_s),
        reason=event.reason, command_id=event.command_id, detail=detail, published_at=to_iso(published_at_s)))


def deadletter_doc(reason: Reason | str, detail: str, *, topic: str, partition: int | None, offset: int | None,
                   key: bytes | None, payload: bytes | None, failed_at_s: float) -> dict:
    payload = payload or b""
    kept = payload[:DEADLETTER_PAYLOAD_MAX]
    return msgspec.to_builtins(DeadLetterDoc(
        schema=DEADLETTER, reason=getattr(reason, "value", reason), detail=detail[:500],
        source=SourceDoc(topic=topic, partition=partition, offset=offset,
                         key=None if key is None else key[:DEADLETTER_KEY_MAX].decode("utf-8", "replace")),
        payload_b64=base64.b64encode(kept).decode(), payload_bytes=len(payload),
        payload_truncated=len(kept) < len(payload), failed_at=to_iso(failed_at_s)))
