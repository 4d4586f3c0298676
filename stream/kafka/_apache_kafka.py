"""Apache Kafka 4.x in KRaft mode, one node (broker + controller) on loopback, from Maven Central's jars.

The jars are those of ``stream/kafka/kafka_pom.xml`` (package data): ``mvn dependency:copy-dependencies``
copies them once into ``$XDG_CACHE_HOME/bpstream/kafka-<version>/libs`` (default ``~/.cache``); later
starts need only Java 17. Each start writes ``server.properties`` into its data directory, formats the
storage (``kafka.tools.StorageTool format``, a fresh cluster id unless the directory is already
formatted), runs ``kafka.Kafka`` and is ready when a metadata request answers. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

from bpstream.stream.core import BpstreamError
from ._tansu import free_port

__all__ = ["KAFKA_VERSION", "ApacheKafka", "KafkaUnavailable", "cache_dir", "fetch_jars", "unavailable"]

KAFKA_VERSION = "4.1.1"  # = <kafka.version> in kafka_pom.xml (tests/test_apache_kafka.py checks it)
_MAIN, _STORAGE_TOOL = "kafka.Kafka", "kafka.tools.StorageTool"


class KafkaUnavailable(BpstreamError):
    """Apache Kafka cannot run here: no Java, or no cached jars and no Maven to fetch them."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpstream" / f"kafka-{KAFKA_VERSION}"


def _libs(cache: Path) -> Path:
    return cache / "libs"


def _have_jars(cache: Path) -> bool:
    return (cache / "VERSION").is_file() and any(_libs(cache).glob(f"kafka_2.13-{KAFKA_VERSION}.jar"))


def unavailable(cache: Path | None = None) -> str | None:
    """Why Apache Kafka cannot run on this machine, or None when it can (Java 17+, and jars or Maven)."""
    cache = cache or cache_dir()
    if not shutil.which("java"):
        return "no `java` on PATH (Apache Kafka 4 needs Java 17 or newer)"
    if not _have_jars(cache) and not shutil.which("mvn"):
        return f"no `mvn` on PATH to fetch the Apache Kafka {KAFKA_VERSION} jars (none cached in {cache})"
    return None


def fetch_jars(cache: Path | None = None, timeout_s: float = 600.0) -> Path:
    """The jar folder, fetched from Maven Central on first use (about 45 MB, 20-60 s); safe to run concurrently."""
    cache = cache or cache_dir()
    if _have_jars(cache):
        return _libs(cache)
    why = unavailable(cache)
    if why:
        raise KafkaUnavailable(why)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache))
    try:
        pom = work / "pom.xml"
        pom.write_bytes(resources.files("bpstream.stream.kafka").joinpath("kafka_pom.xml").read_bytes())
        cmd = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={work / 'libs'}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise KafkaUnavailable(f"mvn did not fetch the Apache Kafka jars within {timeout_s:g} s") from None
        if done.returncode != 0 or not any((work / "libs").glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            tail = (done.stdout + done.stderr)[-2000:]
            raise KafkaUnavailable(f"mvn could not fetch the Apache Kafka {KAFKA_VERSION} jars:\n{tail}")
        try:
            os.rename(work / "libs", _libs(cache))
        except OSError:  # another process got there first
            if not _libs(cache).is_dir():
                raise
        (cache / "VERSION").write_text(f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _libs(cache)


def _cluster_id() -> str:
    """A random KRaft cluster id (URL-safe base64 of 16 bytes). Never one starting with "-": kafka-storage's
    argument parser would read it as an option (1 start in 64 failed so); Kafka's own Uuid avoids them too."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class ApacheKafka:
    """One Apache Kafka node (KRaft broker + controller) on loopback:
    ``with ApacheKafka() as k: k.bootstrap`` ("127.0.0.1:PORT").

    ``data_dir`` None: a temporary directory, removed on stop (like Tansu, nothing survives); a given
    directory is kept and reused (formatted only the first time). ``heap`` is the JVM's -Xmx.
    """

    engine = "kafka"

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: str | Path | None = None,
                 data_dir: str | Path | None = None, heap: str = "512m", log_level: str = "WARN",
                 cache: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.controller_port = free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self.keep_data = data_dir is not None
        self.data_dir = Path(data_dir) if data_dir else None
        self.heap, self.log_level, self.cache = heap, log_level, cache
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _properties(self) -> str:
        h = self.host
        return "\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@{h}:{self.controller_port}",
            f"listeners=PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{h}:{self.port}",
            "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={self.data_dir / 'logs'}",
            "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
            # topics come from the workers / deploy/create-topics.sh with explicit partition counts, as on
            # a managed cluster: a client asking for an unknown topic must not create it with 1 partition
            "auto.create.topics.enable=false", "num.partitions=1", "default.replication.factor=1",
            "min.insync.replicas=1", "log.retention.hours=168",
            # = the producers' max_request_size (2 x BPSTREAM_MAX_CHUNK_BYTES): an oversized chunk reaches the
            # worker and is dead-lettered there; Kafka's default (1 MiB) would refuse it at the producer
            "message.max.bytes=2097152", "",
        ])

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        libs = fetch_jars(self.cache)
        return ["java", f"-Xmx{heap or self.heap}", "-Xms64m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true", "-Dlog4j2.shutdownHookEnabled=false",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", str(libs / "*"), main, *args]

    def start(self, timeout_s: float = 90.0) -> "ApacheKafka":
        why = unavailable(self.cache)
        if why:
            raise KafkaUnavailable(why)
        for port in (self.port, self.controller_port):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((self.host, port))
                except OSError:
                    raise BpstreamError(f"port {port} on {self.host} is busy") from None
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="bpstream-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(self._properties())
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        fmt = subprocess.run(self._java(_STORAGE_TOOL, "format", "-t", _cluster_id(), "-c", str(config),
                                        "--ignore-formatted", heap="256m"),
                             capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise BpstreamError(f"kafka storage format failed:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
        out = open(self.log_path, "ab") if self.log_path else None  # None: the broker's log to our stdout
        self.process = subprocess.Popen(self._java(_MAIN, str(config)), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        if out is not None:
            out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise BpstreamError(f"kafka exited with code {code} (port {self.port} busy?)"
                                    + (f"; log: {self.log_path}" if self.log_path else ""))
            if self._answers():
                return self
            time.sleep(0.25)
        self.stop()
        raise BpstreamError(f"kafka did not answer a metadata request on {self.bootstrap} within {timeout_s:g} s")

    def _answers(self) -> bool:
        """A metadata request answers with this broker in it (kafka-python's admin client)."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:  # the listener first (quietly): the admin client logs every refused connection
            socket.create_connection((self.host, self.port), timeout=0.5).close()
        except OSError:
            return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000,
                                     client_id="bpstream-broker-check")
        except (KafkaError, OSError, ValueError):
            return False
        try:
            cluster = admin.describe_cluster()
            return any(int(b["broker_id"]) == 1 and not b.get("is_fenced") for b in cluster.get("brokers", []))
        except (KafkaError, OSError, ValueError, KeyError):
            return False
        finally:
            admin.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)  # controlled shutdown: flushes logs, closes the quorum
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        if self.data_dir is not None and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> "ApacheKafka":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
