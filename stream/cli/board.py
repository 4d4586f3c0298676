"""``bpstream board [--host H] [--port P] --broker URL``: a read-only web page of the estimates, one tile per patient.

A background thread consumes ``bp.estimates.v1`` and ``bp.events.v1`` from their oldest retained message with the
consumer of ``bpstream tail`` (no group, no commits) and folds every document into the pure ``BoardState``; a
stdlib HTTP server on loopback (``BPSTREAM_BOARD_HOST``/``BPSTREAM_BOARD_PORT``) serves the page, an HTML
fragment of the tiles the page polls (``/tiles``) and the same tiles as JSON (``/tiles.json``).

Privacy: the page loads nothing from elsewhere (CSP ``default-src 'none'``, no external script, style or font);
the process sends nothing anywhere but its HTTP answers; on a loopback address it answers only requests whose
``Host`` is a loopback name (no DNS rebinding); answers are ``no-store``; logs never carry a patient id or a label.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from bpstream.stream.core import BpstreamError
from bpstream.stream.config import Settings
from bpstream.stream.kafka import serve, is_loopback

__all__ = ["add_parser", "run"]













def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("board", help="a read-only web page of the estimates on loopback, one tile per patient")
    p.add_argument("--host", help="address to bind (default $BPSTREAM_BOARD_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default $BPSTREAM_BOARD_PORT, 8765; 0 = any free port)")
    p.add_argument("--broker", help="Kafka bootstrap servers (default $BPSTREAM_BROKER)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env().replace(broker=args.broker, board_host=args.host, board_port=args.port)
    try:
        server, stop, thread = serve(settings)
    except OSError as exc:  # the port is taken, the address is not ours
        raise BpstreamError(f"cannot serve on {settings.board_host}:{settings.board_port}: {exc}") from exc
    host, port = server.server_address[:2]
    where = f"[{host}]" if ":" in host else host
    if not is_loopback(settings.board_host):
        print(f"bpstream board: WARNING bound to {host}, not loopback: anyone who reaches this address sees "
              "the patients' estimates", file=sys.stderr)
    print(f"bpstream board: serving http://{where}:{port}/ (read-only; {settings.topic_estimates}, "
          f"{settings.topic_events})", flush=True)

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        thread.join(5.0)
    return 0
