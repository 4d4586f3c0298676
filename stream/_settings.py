"""The one frozen settings object: the only reader of the environment in bpstream.

Every field has an environment variable (``BPSTREAM_<FIELD>`` unless noted) and command-line tools
override single fields with ``settings.replace(...)``. Nothing else in bpstream calls ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Settings", "SettingsError"]

_PREFIX = "BPSTREAM_"


class SettingsError(ValueError):
    """A setting has a value bpstream cannot use (names the variable)."""


@dataclass(frozen=True)
class Settings:
    data_dir: str | None = None  # BPSTREAM_DATA: folder of WFDB records for demo/validate defaults

    # -- Kafka connection (passed through to faust/aiokafka and kafka-python) ------------------------
    broker: str = "kafka://localhost:9092"  # BPSTREAM_BROKER; "host:port[,host:port]" or "kafka://..."
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = dataclasses.field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "bpstream"

    # -- topics -------------------------------------------------------------------------------------
    topic_waveforms: str = "bp.waveforms.v1"
    topic_commands: str = "bp.commands.v1"
    topic_estimates: str = "bp.estimates.v1"
    topic_events: str = "bp.events.v1"
    topic_deadletter: str = "bp.deadletter.v1"
    partitions: int = 8  # waveforms, commands, outputs and the state changelog: all the same count
    replication: int = 1

    # -- worker -------------------------------------------------------------------------------------
    app_id: str = "bpstream"  # the consumer group and the prefix of internal topics
    store: str = "memory://"  # memory:// or rocksdb://
    datadir: str = "bpstream-data"  # worker-local files (rocksdb tables)
    session_timeout_s: float = 10.0
    methods: tuple[str, ...] = ("ttt",)  # the first is published (ttt: the product default)
    calibration: str = "off"  # arterial calibration from the stream's ABP: off | once | every:N
    command_hold_s: float = 3.0  # a command waits at most this long for its partition's waveforms
    batch_max: int = 16  # micro-batch: at most this many messages per executor call
    batch_within_s: float = 0.05  # ... gathered for at most this long
    max_chunk_bytes: int = 1_000_000  # a waveform message larger than this is dead-lettered
    max_chunk_s: float = 60.0  # a chunk longer than this is dead-lettered
    max_fs_hz: float = 2000.0
    log_level: str = "info"

    # -- replay -------------------------------------------------------------------------------------
    chunk_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read every field from ``env`` (default ``os.environ``), then apply ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = "BPSTREAM_DATA" if f.name == "data_dir" else _PREFIX + f.name.upper()
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(var, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (None values are ignored, so argparse defaults pass through)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> "Settings":
        if self.store.split("://")[0] not in ("memory", "rocksdb"):
            raise SettingsError(f"BPSTREAM_STORE must be memory:// or rocksdb://, not {self.store!r}")
        if self.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(f"BPSTREAM_SECURITY_PROTOCOL: unknown protocol {self.security_protocol!r}")
        if self.partitions < 1 or self.replication < 1:
            raise SettingsError("BPSTREAM_PARTITIONS and BPSTREAM_REPLICATION must be >= 1")
        if not self.methods:
            raise SettingsError("BPSTREAM_METHODS needs at least one estimator name")
        if not self.bootstrap_servers:
            raise SettingsError("BPSTREAM_BROKER is empty")
        return self

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce this object (fields that differ from the defaults)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default and value is not None:
                var = "BPSTREAM_DATA" if f.name == "data_dir" else _PREFIX + f.name.upper()
                out[var] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out

    # -- derived ------------------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> list[str]:
        """``kafka://a:9092;b:9092`` or ``a:9092,b:9092`` -> ``["a:9092", "b:9092"]``."""
        text = re.sub(r"^[a-z]+://", "", self.broker.strip())
        return [h.strip() for h in re.split(r"[;,]", text) if h.strip()]

    @property
    def faust_broker(self) -> str:
        return "kafka://" + ";".join(self.bootstrap_servers)

    def kafka_python_config(self) -> dict[str, Any]:
        """Connection keyword arguments for kafka-python clients (and aiokafka: same names)."""
        cfg: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id,
                               "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            cfg.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                       sasl_plain_password=self.sasl_password)
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                cfg[name] = getattr(self, name)
        return cfg

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for faust (None for PLAINTEXT)."""
        if self.security_protocol == "PLAINTEXT":
            return None
        import faust

        context = None
        if "SSL" in self.security_protocol:
            import ssl

            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        if self.sasl_mechanism:
            return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                         ssl_context=context, mechanism=self.sasl_mechanism)
        return faust.SSLCredentials(context)

    def topic_names(self) -> dict[str, str]:
        return {"waveforms": self.topic_waveforms, "commands": self.topic_commands,
                "estimates": self.topic_estimates, "events": self.topic_events,
                "deadletter": self.topic_deadletter}


def _parse(var: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(x.strip() for x in raw.split(",") if x.strip())
    except ValueError as exc:
        raise SettingsError(f"{var}={raw!r}: {exc}") from None
    return raw
