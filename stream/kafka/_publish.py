"""The replay publisher (``bpstream replay``): publishes WFDB records (or VitalDB ``.vital`` files) as ``bp.waveforms.v1`` chunks, interleaved across patients in stream time,
in real (``--speed 1``), accelerated (``--speed 20``) or unpaced (``--speed 0``) time. ``--patients N``
beyond the number of records loops them under distinct ids (``a555l``, ``a555l.1``, ...).

Calibrations: the arterial reference is labelled in-process with the very step ``validate`` runs
(same windows, filters and schedule), and each label is published as a ``calibrate`` command
(source ``arterial``) one chunk ahead of the waveform that completes its window. The step holds an
early reading until its window arrives, so the worker learns it right after predicting that
window, exactly as ``validate`` does. Use either these commands (worker ``--calibration off``, the
default) or the worker's own arterial schedule (``replay --calibration off``), not both.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ._codec import dumps, encode_waveform
from bpstream.stream.core import Calibrate, ChunkMessage, WindowResult
from bpstream.stream.records import CHANNEL_NAMES, channel_index, iter_chunks, read_record
from bpstream.stream.core import Schedule, ScheduleKind
from ._schemas import command_doc
from bpstream.stream.config import Settings
from bpstream.stream.core import Pipeline, PipelineConfig

__all__ = ["replay", "ReplayStats", "patient_ids", "arterial_calibrations"]

UNITS = {"ecg": "mV", "ppg": "NU", "abp": "mmHg"}


@dataclass
class ReplayStats:
    start_s: float
    patients: dict[str, str] = field(default_factory=dict)  # patient id -> record name
    chunks: int = 0
    commands: int = 0
    wall_s: float = 0.0


def patient_ids(records: Sequence[str], n: int | None) -> list[tuple[str, int]]:
    """(patient id, record index) for ``n`` patients: the records first, then loops as ``name.k``."""
    n = len(records) if n is None else n
    return [(records[i % len(records)] + ("" if i < len(records) else f".{i // len(records)}"), i % len(records))
            for i in range(n)]


def adc_gains(path: Path, roles: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Each role's ADC (gain, baseline) from a single-segment header (int16 on the wire, exact); none for
    a .vital file or a multi-segment record (float32 on the wire)."""
    import wfdb

    if not path.with_name(path.name + ".hea").is_file():
        return {}
    try:
        header = wfdb.rdheader(str(path))
    except Exception:
        return {}
    if isinstance(header, wfdb.MultiRecord) or not header.adc_gain:
        return {}
    gains = {}
    for role in roles:
        idx = channel_index(header.sig_name or [], role)
        if idx is not None and role in CHANNEL_NAMES:
            gains[role] = (float(header.adc_gain[idx]), float(header.baseline[idx]))
    return gains


def arterial_calibrations(recording, schedule: Schedule, start_s: float, chunk_s: float) -> list[tuple[float, Calibrate]]:
    """The schedule's arterial labels as commands: (window end time, command), times in epoch seconds."""
    if schedule.kind == ScheduleKind.OFF or "abp" not in recording.roles:
        return []
    pipeline = Pipeline(PipelineConfig(methods=(), arterial_schedule=schedule))
    state, out = None, []
    for seq, chunk in enumerate(iter_chunks(recording, chunk_s, t0_s=start_s)):
        try:
            state, outputs = pipeline.step(state, ChunkMessage(seq, chunk))
        except ValueError:
            continue
        for o in outputs:
            if isinstance(o, WindowResult):
                for label in o.labels:
                    if label.sbp_mmhg is None or label.dbp_mmhg is None:
                        # a partial arterial label (e.g. a damped line keeps only its MAP) has no
                        # bp.commands.v1 form (sbp and dbp are required): the in-stream schedule uses it,
                        # commands cannot; this is the one way the two calibration modes differ
                        continue
                    cmd = Calibrate(command_id=f"replay:{recording.name}:arterial:{len(out)}", measured_at_s=o.t_end_s,
                                    sbp_mmhg=label.sbp_mmhg, dbp_mmhg=label.dbp_mmhg, map_mmhg=label.map_mmhg,
                                    source="arterial")
                    out.append((o.t_end_s, cmd))
    return out


def _messages(path: Path, patient: str, order: int, settings: Settings, schedule: Schedule, start_s: float,
              with_abp: bool, t_from_s: float, t_to_s: float | None) -> Iterator[tuple[float, int, str, bytes]]:
    """(publish time after start, order, topic, value) for one patient, in time order."""
    roles = ("ecg", "ppg", "abp") if with_abp else ("ecg", "ppg")
    recording = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    gains = adc_gains(path, roles)
    cals = arterial_calibrations(recording, schedule, start_s, settings.chunk_s)
    ci, seq = 0, -1
    for chunk in iter_chunks(recording, settings.chunk_s, t0_s=start_s):
        t_rel = chunk.t_start_s - start_s
        if not with_abp:
            chunk = type(chunk)(chunk.t_start_s, {r: chunk.fs_hz[r] for r in roles},
                                {r: chunk.signals[r] for r in roles})
        if any(r not in gains and not np.isfinite(x).all() for r, x in chunk.signals.items()):
            continue  # missing samples without an int16 form (a gap in a .vital file): a monitor sends nothing
        # seq counts every chunk the record would send, replayed now or not, so a replay in parts
        # (--from/--to) numbers its chunks as one whole replay does
        seq += 1
        if t_rel < t_from_s - 1e-9 or (t_to_s is not None and t_rel >= t_to_s - 1e-9):
            while ci < len(cals) and cals[ci][0] <= chunk.t_start_s + 2 * settings.chunk_s:
                ci += 1  # that part of the record is not replayed now
            continue
        # a calibration goes out one chunk ahead of the chunk that completes its window
        while ci < len(cals) and cals[ci][0] <= chunk.t_start_s + 2 * settings.chunk_s:
            yield t_rel, order, settings.topic_commands, _command(patient, cals[ci][1], start_s + t_rel)
            ci += 1
        value = encode_waveform(patient, seq, chunk, bed=f"replay-{order}", monitor_id="bpstream-replay",
                                units={r: UNITS[r] for r in chunk.signals}, gains=gains)
        yield t_rel + chunk.duration_s(), order, settings.topic_waveforms, value


def _command(patient: str, cmd: Calibrate, issued_at_s: float) -> bytes:
    from dataclasses import replace

    return dumps(command_doc(patient, replace(cmd, command_id=cmd.command_id.replace("replay:", f"replay:{patient}:", 1)),
                             issued_at_s, operator="bpstream-replay"))


def replay(settings: Settings, paths: Sequence[Path], *, speed: float = 1.0, patients: int | None = None,
           calibration: str = "once", start_s: float | None = None, with_abp: bool = True,
           t_from_s: float = 0.0, t_to_s: float | None = None, producer=None, quiet: bool = True,
           ids: Sequence[str] | None = None) -> ReplayStats:
    """Publish the records; returns what was sent. ``t_from_s``/``t_to_s`` replay part of each record;
    ``ids`` names the patients (default: record names, looped as ``name.k``)."""
    from ._topics import ensure_topics
    from ._topics import producer as make_producer

    schedule = Schedule.parse(calibration)
    start_s = float(math.floor(time.time())) if start_s is None else float(start_s)
    stats = ReplayStats(start_s)
    names = [p.name for p in paths]
    streams = []
    for order, (patient, idx) in enumerate(patient_ids(names, patients)):
        patient = ids[order] if ids is not None else patient
        stats.patients[patient] = names[idx]
        streams.append(_messages(paths[idx], patient, order, settings, schedule, start_s, with_abp, t_from_s, t_to_s))
    ensure_topics(settings)
    own = producer is None
    producer = producer or make_producer(settings)
    keys = [p.encode() for p in stats.patients]
    wall0 = time.monotonic()
    try:
        for t_rel, order, topic, value in heapq.merge(*streams, key=lambda m: (m[0], m[1])):
            if speed > 0:
                delay = wall0 + (t_rel - t_from_s) / speed - time.monotonic()
                if delay > 0:
                    producer.flush()
                    time.sleep(delay)
            producer.send(topic, key=keys[order], value=value)
            if topic == settings.topic_waveforms:
                stats.chunks += 1
            else:
                stats.commands += 1
            if not quiet and stats.chunks % 500 == 0 and topic == settings.topic_waveforms:
                print(f"replay: {stats.chunks} chunks, {stats.commands} calibrations, t={t_rel:.0f} s", flush=True)
        producer.flush()
    finally:
        if own:
            producer.close()
    stats.wall_s = time.monotonic() - wall0
    return stats
