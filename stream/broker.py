"""``bpstream broker [--port P]``: the development broker (Tansu) on loopback. Development only.

Everything is kept in memory and lost on exit; no authentication, no TLS, no transactions. For a
hospital deployment run workers against Apache Kafka (see deploy/README.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._errors import BpstreamError
from ._tansu import Tansu

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="start the development Kafka broker (Tansu, in memory, loopback only)")
    p.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        broker = Tansu(port=args.port).start()
    except BpstreamError as exc:
        print(f"bpstream broker: {exc}", file=sys.stderr)
        return 2
    print(f"development broker (Tansu, in memory) on kafka://{broker.bootstrap}; Ctrl-C stops it", flush=True)
    try:
        while not stop.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                print("bpstream broker: tansu exited", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0
