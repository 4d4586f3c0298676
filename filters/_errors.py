"""The root of bpstream's one exception tree (in the bottom layer, so every layer can raise its own branch).

    BpstreamError                          every error bpstream raises on purpose
    ├── ChunkError (ValueError)            bpstream.filters: a chunk cannot be windowed
    ├── StateError (ValueError)            bpstream.models: bytes that are not a patient state
    ├── SettingsError (ValueError)         bpstream.stream: a setting bpstream cannot use (names the variable)
    ├── RecordError (ValueError)           bpstream.stream: a waveform record cannot be used
    │   └── MissingChannelError                a role the caller needs is absent from a record
    ├── DataNotFoundError (FileNotFoundError)  no data folder (with a hint on how to download records)
    ├── MessageError (ValueError)          a Kafka message failed to decode or validate; carries its Reason
    ├── BrokerRefused (ConnectionError)    a broker refused the connection's authentication or TLS
    ├── TopicsMismatch                     existing topics disagree with the settings
    ├── TansuNotFound, KafkaUnavailable    a development broker cannot start here
    └── UsageError                         bpstream.stream.cli: options that cannot go together (exit 2)

``bpstream.stream`` re-exports all of them; ``bpstream`` commands exit 1 on a ``BpstreamError``, 2 on a
usage or settings error.
"""

from __future__ import annotations

__all__ = ["BpstreamError"]


class BpstreamError(Exception):
    """Base of every error bpstream raises on purpose."""
