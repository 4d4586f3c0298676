"""``bpstream worker``: run the faust app (one worker process of the consumer group)."""

from __future__ import annotations

import argparse
import sys

from ._settings import Settings, SettingsError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a streaming worker (consumes waveforms and commands, publishes estimates)")
    p.add_argument("--broker", help="Kafka bootstrap servers, e.g. kafka://host:9092 (default $BPSTREAM_BROKER)")
    p.add_argument("--store", help="table store: memory:// or rocksdb:// (default $BPSTREAM_STORE)")
    p.add_argument("--datadir", help="worker-local data folder (default $BPSTREAM_DATADIR)")
    p.add_argument("--app-id", dest="app_id", help="consumer group / app id (default $BPSTREAM_APP_ID)")
    p.add_argument("--methods", help="comma-separated estimators, the first is published (default $BPSTREAM_METHODS)")
    p.add_argument("--calibration", help="arterial calibration from the stream's ABP: off | once | every:N")
    p.add_argument("--loglevel", default=None, help="debug | info | warning")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env().replace(
            broker=args.broker, store=args.store, datadir=args.datadir, app_id=args.app_id,
            methods=tuple(args.methods.split(",")) if args.methods else None,
            calibration=args.calibration, log_level=args.loglevel)
    except SettingsError as exc:
        print(f"bpstream worker: {exc}", file=sys.stderr)
        return 2
    from faust.worker import Worker

    from ._errors import BpstreamError
    from ._topics import ensure_topics, wait_for_broker
    from .app import create_app

    try:
        # the input and output topics must exist with BPSTREAM_PARTITIONS partitions before faust
        # subscribes: a broker that auto-creates topics on first use would pick its own count
        wait_for_broker(settings, timeout_s=60.0)
        ensure_topics(settings)
    except (BpstreamError, TimeoutError) as exc:
        print(f"bpstream worker: {exc}", file=sys.stderr)
        return 2

    service = create_app(settings)
    worker = Worker(service.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # runs until SIGTERM/SIGINT, then stops the app cleanly
    return 0
