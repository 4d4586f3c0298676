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

from bpstream.filters import BpstreamError

__all__ = ["Settings", "SettingsError"]

_PREFIX = "BPSTREAM_"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")  # with a username and a password
LOG_FORMATS = ("text", "json")
GUARANTEES = ("at_least_once", "exactly_once")  # exactly_once: Apache Kafka only (checked at worker start)


class SettingsError(BpstreamError, ValueError):
    """A setting has a value bpstream cannot use (names the variable)."""


@dataclass(frozen=True)
class Settings:
    data_dir: str | None = None  # BPSTREAM_DATA: folder of WFDB records for demo/validate defaults

    # -- Kafka connection (passed through to faust/aiokafka and kafka-python) ------------------------
    broker: str = "kafka://localhost:9092"  # BPSTREAM_BROKER; "host:port[,host:port]" or "kafka://..."
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (GSSAPI/OAUTHBEARER: not supported)
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
    fhir_output: bool = False  # BPSTREAM_FHIR_OUTPUT: the worker also sends each estimate as a FHIR R4 Observation ...
    topic_fhir: str = "bp.estimates.fhir.v1"  # ... to this topic (key = patient id, like the estimates)
    fhir_patient_system: str = ""  # URI of the patient identifier system: subjects by identifier (see _fhir)
    partitions: int = 8  # waveforms, commands, outputs and the state changelog: all the same count
    replication: int = 1

    # -- worker -------------------------------------------------------------------------------------
    app_id: str = "bpstream"  # the consumer group and the prefix of internal topics
    store: str = "memory://"  # memory:// or rocksdb://
    datadir: str = "bpstream-data"  # worker-local files (rocksdb tables)
    session_timeout_s: float = 10.0
    stop_timeout_s: float = 10.0  # SIGTERM: the clean stop gets this long, then the process exits anyway
    methods: tuple[str, ...] = ("fusion",)  # the first is published (fusion: chosen on inner folds, see selection in the README)
    calibration: str = "off"  # arterial calibration from the stream's ABP: off | once | every:N
    command_hold_s: float = 3.0  # a command waits at most this long for its partition's waveforms
    reorder_s: float = 10.0  # chunks held behind a missing seq (stream seconds) before the gap is given up
    processing_guarantee: str = "at_least_once"  # at_least_once | exactly_once (faust's; Kafka transactions)
    batch_max: int = 64  # micro-batch: at most this many messages per executor call
    batch_within_s: float = 0.2  # ... gathered for at most this long (64 / 0.2 s: measured in the README, issue 14)
    # a patient's state is written after this many changes (1: every message, the default; > 1 is experimental:
    # one CI run stalled a failover survivor's changelog recovery with 10, see README "What can be lost") ...
    state_every_chunks: int = 1
    state_max_age_s: float = 5.0  # ... or when its oldest unwritten change is this old (commands, calibrations: at once)
    state_cache_patients: int = 10_000  # decoded states a worker keeps in memory (least recently used dropped first)
    max_chunk_bytes: int = 1_000_000  # a waveform message larger than this is dead-lettered
    max_chunk_s: float = 60.0  # a chunk longer than this is dead-lettered
    max_fs_hz: float = 2000.0
    time_min: str = "2000-01-01T00:00:00Z"  # no time on the wire earlier than this ...
    time_max_ahead_s: float = 86400.0  # ... nor later than the worker's clock plus this
    log_level: str = "info"
    log_format: str = "text"  # text | json (one JSON object a line; the same messages, no patient identifiers)
    web_port: int = 0  # faust's web server (/metrics, /healthz, /readyz) on this port; 0: off
    web_bind: str = "0.0.0.0"  # the address the web server listens on

    # -- replay -------------------------------------------------------------------------------------
    chunk_s: float = 2.0

    # -- board (``bpstream board``) -----------------------------------------------------------------
    board_host: str = "127.0.0.1"  # loopback only by default: the page shows patient data
    board_port: int = 8765  # 0 = any free port (printed at start)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read every field from ``env`` (default ``os.environ``), then apply ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = _var(f.name)
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
        self.time_min_s  # noqa: B018 - raises SettingsError when it is not an ISO time
        if not 0 <= self.board_port <= 65535:
            raise SettingsError("BPSTREAM_BOARD_PORT must be 0-65535")
        if not self.board_host.strip():
            raise SettingsError("BPSTREAM_BOARD_HOST is empty")
        if self.state_every_chunks < 1 or not self.state_max_age_s >= 0:
            raise SettingsError("BPSTREAM_STATE_EVERY_CHUNKS must be >= 1 and BPSTREAM_STATE_MAX_AGE_S >= 0")
        if self.fhir_patient_system and not re.fullmatch(r"(urn:|https?://)\S+", self.fhir_patient_system):
            raise SettingsError("BPSTREAM_FHIR_PATIENT_SYSTEM must be an absolute URI (urn:..., http(s)://...)")
        if self.state_cache_patients < 1:
            raise SettingsError("BPSTREAM_STATE_CACHE_PATIENTS must be >= 1")
        if not self.time_max_ahead_s >= 0:
            raise SettingsError("BPSTREAM_TIME_MAX_AHEAD_S must be >= 0")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"BPSTREAM_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}")
        if self.processing_guarantee not in GUARANTEES:
            raise SettingsError(f"BPSTREAM_PROCESSING_GUARANTEE must be one of {', '.join(GUARANTEES)}, "
                                f"not {self.processing_guarantee!r}")
        if not 0 <= self.web_port <= 65535:
            raise SettingsError("BPSTREAM_WEB_PORT must be a TCP port (1-65535), or 0 for no web server")
        self._check_security()
        return self

    def _check_security(self) -> None:
        """Connection settings that cannot work are refused at start, naming the variable (never its secret)."""
        proto = self.security_protocol
        if proto.startswith("SASL_"):
            if not self.sasl_mechanism:
                raise SettingsError(f"BPSTREAM_SASL_MECHANISM is required with BPSTREAM_SECURITY_PROTOCOL={proto} "
                                    f"({', '.join(SASL_MECHANISMS)})")
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError(f"BPSTREAM_SASL_MECHANISM: {self.sasl_mechanism!r} is not supported "
                                    f"(supported: {', '.join(SASL_MECHANISMS)})")
            for var, value in (("BPSTREAM_SASL_USERNAME", self.sasl_username),
                               ("BPSTREAM_SASL_PASSWORD", self.sasl_password)):
                if not value:
                    raise SettingsError(f"{var} is required with BPSTREAM_SASL_MECHANISM={self.sasl_mechanism}")
        elif self.sasl_mechanism:
            raise SettingsError(f"BPSTREAM_SASL_MECHANISM is set but BPSTREAM_SECURITY_PROTOCOL={proto} uses no SASL")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if not path:
                continue
            var = _PREFIX + name.upper()
            if "SSL" not in proto:
                raise SettingsError(f"{var} is set but BPSTREAM_SECURITY_PROTOCOL={proto} uses no TLS")
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise SettingsError(f"{var}: no readable file at {path!r}")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise SettingsError("BPSTREAM_SSL_KEYFILE needs BPSTREAM_SSL_CERTFILE")

    def ssl_context(self) -> Any:
        """The TLS context of the SSL protocols (SettingsError naming the file setting that cannot be loaded)."""
        import ssl

        try:
            context = ssl.create_default_context(cafile=self.ssl_cafile)
        except (ssl.SSLError, OSError):
            raise SettingsError("BPSTREAM_SSL_CAFILE cannot be loaded as a CA bundle (PEM)") from None
        if self.ssl_certfile:
            try:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            except (ssl.SSLError, OSError):
                raise SettingsError("BPSTREAM_SSL_CERTFILE/BPSTREAM_SSL_KEYFILE cannot be loaded as a "
                                    "certificate and its key (PEM)") from None
        return context

    @property
    def time_min_s(self) -> float:
        from datetime import datetime

        try:
            dt = datetime.fromisoformat(self.time_min.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                raise ValueError
        except ValueError:
            raise SettingsError("BPSTREAM_TIME_MIN must be an ISO 8601 time with a UTC offset") from None
        return dt.timestamp()

    @classmethod
    def env_vars(cls) -> dict[str, str]:
        """Every environment variable ``from_env`` reads: variable -> field name."""
        return {_var(f.name): f.name for f in dataclasses.fields(cls)}

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce this object (fields that differ from the defaults)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default and value is not None:
                out[_var(f.name)] = ",".join(value) if isinstance(value, tuple) else str(value)
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

        context = self.ssl_context() if "SSL" in self.security_protocol else None
        if self.sasl_mechanism:
            return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                         ssl_context=context, mechanism=self.sasl_mechanism)
        return faust.SSLCredentials(context)

    def topic_names(self) -> dict[str, str]:
        names = {"waveforms": self.topic_waveforms, "commands": self.topic_commands,
                 "estimates": self.topic_estimates, "events": self.topic_events,
                 "deadletter": self.topic_deadletter}
        if self.fhir_output:
            names["fhir"] = self.topic_fhir
        return names


def _var(name: str) -> str:
    return "BPSTREAM_DATA" if name == "data_dir" else _PREFIX + name.upper()


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
