"""bpstream.stream.core."""

from ._errors import (
    BpstreamError,
    BrokerRefused,
    DataNotFoundError,
    MessageError,
    MissingChannelError,
    RecordError,
    UsageError,
)
from ._batch import measure_labels, measure_windows
from ._gates import Gates, LabelMode
from ._messages import Calibrate, ChunkMessage, DeadLetter, Discharge, Event, EventKind, Flush, Output, Reset, WindowResult
from ._schedule import Schedule, ScheduleKind
from ._state_codec import StateError, salvage_counters, state_from_bytes, state_to_bytes
from ._step import PatientState, Pipeline, PipelineConfig

__all__ = [
    "BpstreamError",
    "BrokerRefused",
    "Calibrate",
    "ChunkMessage",
    "DataNotFoundError",
    "DeadLetter",
    "Discharge",
    "Event",
    "EventKind",
    "Flush",
    "Gates",
    "LabelMode",
    "MessageError",
    "MissingChannelError",
    "Output",
    "PatientState",
    "Pipeline",
    "PipelineConfig",
    "RecordError",
    "Reset",
    "Schedule",
    "ScheduleKind",
    "UsageError",
    "StateError",
    "WindowResult",
    "measure_labels",
    "measure_windows",
    "salvage_counters",
    "state_from_bytes",
    "state_to_bytes",
]
