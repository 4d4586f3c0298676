"""``bpstream board``'s HTTP side without a broker: the handler over a state fed directly (fast tier)."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import ThreadingHTTPServer

import pytest

from bpstream.stream.config._settings import Settings, SettingsError
from bpstream.stream.kafka._board_server import Board, _handler, is_loopback

from .test_board_state import T0, est


@pytest.fixture()
def server():
    board = Board()
    board.feed(est(1, T0, patient="mrn-0042", bed="ICU3-12", published=None), False)
    board.feed({"patient_id": "x", "seq": "not a number"}, False)  # counted, not shown, not fatal
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(board, loopback_only=True))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv, board
    finally:
        srv.shutdown()
        srv.server_close()


def _get(srv, path, method="GET", host=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
    c.putrequest(method, path, skip_host=True)
    c.putheader("Host", host or f"127.0.0.1:{srv.server_address[1]}")
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def test_page_tiles_and_json_are_served_with_privacy_headers(server):
    srv, board = server
    assert board.skipped == 1 and board.consumed == 1
    r, body = _get(srv, "/")
    assert r.status == 200 and b"bpstream board" in body
    assert "default-src 'none'" in r.getheader("Content-Security-Policy")
    assert r.getheader("Cache-Control") == "no-store" and r.getheader("Referrer-Policy") == "no-referrer"
    r, body = _get(srv, "/tiles")
    assert r.status == 200 and b'data-label="ICU3-12"' in body
    r, body = _get(srv, "/tiles.json")
    doc = json.loads(body)
    assert [t["label"] for t in doc] == ["ICU3-12"] and b"mrn-0042" not in body
    assert _get(srv, "/nothing")[0].status == 404


def test_read_only_and_loopback_names_only(server):
    srv, _ = server
    assert _get(srv, "/", method="POST")[0].status == 405
    assert _get(srv, "/tiles.json", host="evil.example:80")[0].status == 421  # DNS rebinding
    assert _get(srv, "/tiles.json", host=f"localhost:{srv.server_address[1]}")[0].status == 200


def test_board_settings_default_to_loopback():
    s = Settings.from_env({})
    assert (s.board_host, s.board_port) == ("127.0.0.1", 8765) and is_loopback(s.board_host)
    s = Settings.from_env({"BPSTREAM_BOARD_HOST": "::1", "BPSTREAM_BOARD_PORT": "0"})
    assert (s.board_host, s.board_port) == ("::1", 0) and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with pytest.raises(SettingsError, match="BPSTREAM_BOARD_PORT"):
        Settings.from_env({"BPSTREAM_BOARD_PORT": "70000"})
