"""The board's server (``bpstream board``): a read-only web page of every patient's latest estimate, fed by
one consumer of the estimates and events topics."""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bpstream.stream.core import BpstreamError
from bpstream.stream.config import Settings

from ._board_html import CSP, page, tiles_html, tiles_json
from ._board_state import BoardState

__all__ = ["Board", "serve", "is_loopback"]


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class Board:
    """The state behind a lock, fed by the consumer thread, read by the HTTP threads."""

    def __init__(self) -> None:
        self.state = BoardState()
        self.lock = threading.Lock()
        self.skipped = 0  # documents of another shape (counted; their content is never logged)
        self.consumed = 0

    def feed(self, doc: Any, is_event: bool) -> None:
        with self.lock:
            try:
                self.state.add(doc, is_event)
                self.consumed += 1
            except (KeyError, TypeError, ValueError, BpstreamError):
                self.skipped += 1

    def tiles(self) -> list:
        with self.lock:
            return self.state.tiles(now_s=time.time())


def _consume(board: Board, settings: Settings, stop: threading.Event) -> None:
    from ._tail import documents

    topics = [settings.topic_estimates, settings.topic_events]
    while not stop.is_set():
        try:
            for topic, _key, doc in documents(settings, topics, from_beginning=True, stop=stop):
                board.feed(doc, topic == settings.topic_events)
            return
        except Exception as exc:  # noqa: BLE001 - a broker fault: say what kind, wait, start again
            print(f"bpstream board: consumer stopped ({type(exc).__name__}); reconnecting in 5 s",
                  file=sys.stderr, flush=True)
            stop.wait(5.0)  # the tiles stay as they were (and go stale); reading starts again from the oldest


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _handler(board: Board, loopback_only: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bpstream-board"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no request log (paths, clients)
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            if loopback_only and host not in _LOOPBACK_NAMES:
                return self._send(421, b"this board answers loopback names only\n", "text/plain; charset=utf-8")
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(200, page(board.tiles()).encode(), "text/html; charset=utf-8")
            if path == "/tiles":
                return self._send(200, tiles_html(board.tiles()).encode(), "text/html; charset=utf-8")
            if path == "/tiles.json":
                return self._send(200, json.dumps(tiles_json(board.tiles())).encode(), "application/json")
            return self._send(404, b"not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET

        def _read_only(self) -> None:
            self._send(405, b"read-only\n", "text/plain; charset=utf-8")

        do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

    return Handler


def serve(settings: Settings) -> tuple[ThreadingHTTPServer, threading.Event, threading.Thread]:
    """Bind the server and start the consumer thread (the caller runs ``serve_forever`` and stops both)."""
    board = Board()
    server = ThreadingHTTPServer((settings.board_host, settings.board_port),
                                 _handler(board, is_loopback(settings.board_host)))
    server.daemon_threads = True
    stop = threading.Event()
    thread = threading.Thread(target=_consume, args=(board, settings, stop), name="board-consumer", daemon=True)
    thread.start()
    return server, stop, thread
