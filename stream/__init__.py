"""bpstream.stream: the streaming service around the per-patient step (Kafka, records, evaluation, CLI).

Sub-packages, each importing only those below it (``lint-imports`` checks it in CI)::

    cli         main and one thin module per ``bpstream`` command (only the chosen one is imported)
    bench       every ``bpstream bench`` target
    kafka       faust app, agents, processor, topics, wire codec and contracts, brokers, replay publisher,
                FHIR, board state, metrics and probes
    evaluation  in-process replay, method resolution, score sheet, change tracking, plots, nested fitting
    records     WFDB / VitalDB reading, dataset building, folds, data-dir discovery
    config      Settings: the one reader of the environment
    core        the deterministic per-patient step: messages, gates, schedule, order, state codec
                (imports bpstream.filters and bpstream.models only)

Start reading at ``core/_step.py`` (``Pipeline.step``).

The exception tree (rooted in ``bpstream.filters``; every class is exported here)::

    BpstreamError                          every error bpstream raises on purpose
    ├── ChunkError (ValueError)            a chunk cannot be windowed
    ├── StateError (ValueError)            bytes that are not a patient state
    ├── SettingsError (ValueError)         a setting bpstream cannot use (names the variable)
    ├── RecordError (ValueError)           a waveform record cannot be used
    │   └── MissingChannelError                a role the caller needs is absent from a record
    ├── DataNotFoundError (FileNotFoundError)  no data folder (with a hint on how to download records)
    ├── MessageError (ValueError)          a message failed to decode or validate; ``.reason`` is its Reason
    ├── BrokerRefused (ConnectionError)    a broker refused the connection's authentication or TLS
    ├── TopicsMismatch                     existing topics disagree with the settings
    ├── TansuNotFound, KafkaUnavailable    a development broker cannot start here
    └── UsageError (ValueError)            options that cannot go together

``bpstream`` commands exit 1 on a ``BpstreamError`` (one line on stderr), 2 on a usage error (``UsageError``,
``SettingsError``, argparse's).
Kafka-side names (``create_app`` and the broker errors) load on first use, so importing this package does not
import faust.
"""

from bpstream.filters import BpstreamError, ChunkError
from bpstream.models import StateError

from .config import Settings, SettingsError
from .core import (
    BrokerRefused,
    DataNotFoundError,
    MessageError,
    MissingChannelError,
    PatientState,
    Pipeline,
    PipelineConfig,
    RecordError,
    UsageError,
)

_KAFKA = ("create_app", "TopicsMismatch", "TansuNotFound", "KafkaUnavailable")

__all__ = [
    "Pipeline",
    "PipelineConfig",
    "PatientState",
    "Settings",
    "create_app",
    "BpstreamError",
    "ChunkError",
    "StateError",
    "SettingsError",
    "RecordError",
    "MissingChannelError",
    "DataNotFoundError",
    "MessageError",
    "BrokerRefused",
    "TopicsMismatch",
    "TansuNotFound",
    "KafkaUnavailable",
    "UsageError",
]


def __getattr__(name: str):
    if name in _KAFKA:
        from bpstream.stream import kafka

        return getattr(kafka, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
