"""``bpstream worker``: run the faust app (one worker process of the consumer group)."""

from __future__ import annotations

import argparse

from bpstream.stream.config import Settings, SettingsError

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
    p.add_argument("--log-format", dest="log_format", choices=("text", "json"),
                   help="text or json (one object a line) (default $BPSTREAM_LOG_FORMAT)")
    p.add_argument("--web-port", dest="web_port", type=int,
                   help="serve /metrics, /healthz and /readyz on this port; 0: off (default $BPSTREAM_WEB_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env().replace(
        broker=args.broker, store=args.store, datadir=args.datadir, app_id=args.app_id,
        methods=tuple(args.methods.split(",")) if args.methods else None,
        calibration=args.calibration, log_level=args.loglevel, log_format=args.log_format,
        web_port=args.web_port)
    from faust.worker import Worker

    from bpstream.stream.core import BpstreamError
    from bpstream.stream.kafka import logging_config
    from bpstream.stream.kafka import ensure_topics, has_transactions, wait_for_broker
    from bpstream.stream.kafka.app import create_app

    try:
        # the input and output topics must exist with BPSTREAM_PARTITIONS partitions before faust
        # subscribes: a broker that auto-creates topics on first use would pick its own count
        wait_for_broker(settings, timeout_s=60.0)
    except TimeoutError as exc:
        raise BpstreamError(str(exc)) from exc
    ensure_topics(settings)
    if settings.processing_guarantee == "exactly_once" and not has_transactions(settings):
        raise SettingsError(f"BPSTREAM_PROCESSING_GUARANTEE=exactly_once needs Apache Kafka (transactions); "
                            f"the broker at {settings.broker} has no transaction coordinator")

    if "SSL" in settings.security_protocol:
        settings.ssl_context()  # the TLS files load (their existence is checked with the settings)
    service = create_app(settings)
    worker = _bounded_stop(Worker)(service.app, loglevel=settings.log_level, quiet=True,
                                   logging_config=logging_config(settings.log_format, settings.log_level),
                                   stop_timeout_s=settings.stop_timeout_s)
    worker.execute_from_commandline()  # runs until SIGTERM/SIGINT, then stops the app cleanly
    return 0


def _bounded_stop(worker_cls: type) -> type:
    """faust's Worker whose stop on SIGTERM/SIGINT is bounded: the clean stop (commit the processed
    offsets, flush, leave the group) gets ``stop_timeout_s``; a stop still running then (a broker
    that has gone) ends the process, exit status 0: what was not committed is delivered again to
    whichever worker takes the partitions (at-least-once; the step ignores what it has applied)."""
    import logging
    import os
    import threading

    class BoundedStopWorker(worker_cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args, stop_timeout_s: float = 10.0, **kwargs):
            super().__init__(*args, **kwargs)
            self._stop_timeout_s = stop_timeout_s
            # no terminal spinner: at log level warning or above, faust's spinner sets the root logger to
            # DEBUG (its handler spins on every record), so every aiokafka/faust debug call built a
            # LogRecord: 7 % of a worker's busy time in `bench perf`, which runs workers at "warning"
            self.spinner = None

        def _schedule_shutdown(self, signal):  # noqa: ANN001 - mode's signature
            if not self._signal_stop_time:
                timer = threading.Timer(self._stop_timeout_s, self._give_up)
                timer.daemon = True
                timer.start()
            super()._schedule_shutdown(signal)

        def _give_up(self) -> None:
            logging.getLogger("bpstream.worker").warning(
                "stop did not finish within %.0f s (broker unreachable?); exiting now, uncommitted "
                "messages will be delivered again", self._stop_timeout_s)
            logging.shutdown()
            os._exit(0)

    return BoundedStopWorker
