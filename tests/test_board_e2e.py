"""``bpstream board`` end to end in a real headless Chromium (Debian's /usr/bin/chromium driven by Selenium through
/usr/bin/chromedriver): a worker process, a replay of the first 90 s of a555l and f362s, the board process, the page.

Phase 1 replays the first 20 s (no calibration yet: every tile shows its validity and no number); phase 2 the rest
up to 90 s (both calibrated: the tiles' numbers and 90 % intervals must be those of the last estimates on the
topic); phase 3 sends 12 s of a555l with a flat PPG (its latest windows invalid: its tile drops the number). The page must fetch nothing but its own origin. The screenshot is written to ``deploy/board.png`` (the
README shows it; the replay's stream times are fixed, so a rerun draws the same page).

Without chromium or chromedriver this test fails (never skips): install them with
``apt-get install -y chromium chromium-driver`` (the README's test command does so where they are missing).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._data import ROOT, record
from ._kafka import WAIT_S, WorkerProcess, by_patient, read_topic, settings_for
from bpstream.stream.kafka._schemas import from_iso
from bpstream.stream.kafka._publish import replay

pytestmark = pytest.mark.kafka

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
RECORDS = ("a555l", "f362s")
START_S = 1_780_000_000.0  # record second 0 on the wire (fixed: the screenshot is reproducible)
SCREENSHOT = ROOT / "deploy" / "board.png"


class BoardProcess:
    """``bpstream board`` in a subprocess on a free loopback port (port 0); its URL from its first line."""

    def __init__(self, settings, workdir: Path):
        self.log_path = workdir / "board.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPSTREAM_")}
        env.update(settings.replace(board_port=0).to_env())
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "bpstream.stream.cli", "board"], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if m := re.search(r"serving (http://127\.0\.0\.1:\d+/)", self.log()):
                return m.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"board exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"board not serving within {timeout_s:g} s:\n{self.log()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


def _chromium():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver "
                    "(the board's end-to-end test runs in Debian's chromium; it never skips)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=860,560", "--force-device-scale-factor=1", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)  # no Selenium Manager download


def _last(settings, until_s: float, names=RECORDS) -> dict[str, dict]:
    """Each patient's last estimate on the topic once its stream has reached ``until_s``."""
    def done(docs):
        per = by_patient(docs)
        return all(any(from_iso(d["window_end"]) - START_S >= until_s for d in per.get(n, [])) for n in names)

    per = by_patient(read_topic(settings, settings.topic_estimates, done))
    return {n: max(per[n], key=lambda d: d["seq"]) for n in names}


def _flat_ppg(settings, path: Path, patient: str, bed: str, t_from_s: float, n: int) -> None:
    """``n`` more chunks of the record from ``t_from_s`` (seq continuing the replay's) with a constant PPG."""
    import numpy as np

    from bpstream.filters._types import Chunk
    from bpstream.stream.kafka._codec import encode_waveform
    from bpstream.stream.records._records import iter_chunks, read_record
    from bpstream.stream.kafka._topics import producer

    p = producer(settings)
    first = int(round(t_from_s / settings.chunk_s))
    for seq, chunk in enumerate(iter_chunks(read_record(path), settings.chunk_s, t0_s=START_S)):
        if first <= seq < first + n:
            signals = {**chunk.signals, "ppg": np.full_like(chunk.signals["ppg"], 0.5)}
            p.send(settings.topic_waveforms, key=patient.encode(),
                   value=encode_waveform(patient, seq, Chunk(chunk.t_start_s, chunk.fs_hz, signals), bed=bed))
    p.flush()
    p.close()


_READ = """
var out = {};
document.querySelectorAll('section.tile').forEach(function (t) {
  var text = {}, count = {};
  ['h2.label', '.validity', '.reasons', '.numbers', '.cal', '.quality',
   '.numbers .sbp', '.numbers .dbp', '.numbers .map', '.interval .sbp-lo', '.interval .sbp-hi',
   '.interval .dbp-lo', '.interval .dbp-hi', '.interval .map-lo', '.interval .map-hi'].forEach(function (q) {
    var e = t.querySelector(q); text[q] = e ? e.textContent : null; });
  ['svg.trend polyline.run.sbp', 'svg.trend rect.gap', 'svg.trend line.mark.calibration'].forEach(function (q) {
    count[q] = t.querySelectorAll(q).length; });
  out[t.dataset.label] = {status: t.dataset.status, seq: t.dataset.seq, text: text, count: count};
});
return out;
"""


def _tiles_at(driver, last: dict[str, dict], timeout_s: float = WAIT_S) -> dict[str, dict]:
    """Wait until each patient's tile (found by its bed label) shows the seq of its last estimate; one snapshot
    of every tile, read in one script (the page replaces its tiles every 2 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        tiles = driver.execute_script(_READ)
        if all(d["bed"] in tiles and tiles[d["bed"]]["seq"] == str(d["seq"]) for d in last.values()):
            return {n: tiles[d["bed"]] for n, d in last.items()}
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not reach seqs { {d['bed']: d['seq'] for d in last.values()} }: "
                                 f"{ {k: v['seq'] for k, v in tiles.items()} }")
        time.sleep(0.3)


def _tail_prints_all(settings, monkeypatch, capsys, patient: str, n: int) -> None:
    import argparse
    import json

    from bpstream.stream.cli import tail

    for var, value in settings.to_env().items():
        monkeypatch.setenv(var, value)
    capsys.readouterr()
    args = argparse.Namespace(patient=patient, events=False, from_beginning=True, format="json", json=False,
                              max=n, timeout=20.0, broker=None)
    assert tail.run(args) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(d["seq"] for d in docs) == list(range(1, n + 1)) and {d["patient_id"] for d in docs} == {patient}


def _f0(x: float) -> str:
    return f"{x:.0f}"


@pytest.mark.parametrize("broker", ["tansu"], indirect=True)  # one engine: the page, not the broker, is tested
def test_board_shows_the_last_estimates_of_each_patient_in_chromium(broker, tmp_path, monkeypatch, capsys):
    settings = settings_for(broker, "board", methods=("fusion",))  # fusion: intervals to show
    worker = WorkerProcess(settings, tmp_path)
    board = BoardProcess(settings, tmp_path)
    driver = None
    try:
        driver = _chromium()
        url = board.url()
        worker.wait_ready()
        driver.get(url)
        assert "bpstream board" in driver.title
        paths = [record(n) for n in RECORDS]

        # phase 1: the first 20 s, before any calibration: validity and reasons, no number
        replay(settings, paths, speed=0, calibration="once", start_s=START_S, t_to_s=20.0)
        last = _last(settings, 20.0)
        tiles = _tiles_at(driver, last)
        for name, doc in last.items():
            assert doc["validity"] != "valid" and doc["sbp"] is None, doc  # the case this phase is about
            tile = tiles[name]
            assert tile["status"] == "no_numbers"
            assert tile["text"][".numbers"] is None and tile["text"][".numbers .sbp"] is None
            assert tile["text"][".validity"] == doc["validity"]
            for reason in doc["reasons"]:
                assert reason in tile["text"][".reasons"]
            assert not re.search(r"\d+\s*/\s*\d+", tile["text"][".validity"] + tile["text"][".reasons"])

        # phase 2: up to 90 s: calibrated (arterial, `once`) and valid; the page shows the topic's last numbers
        # (from 0 s again, not t_from_s=20: replay numbers the chunks of a part from seq 0, so a second part would
        # repeat seqs 0-9 and lose 20 s; from 0, the first 10 chunks are repeats the worker ignores)
        replay(settings, paths, speed=0, calibration="once", start_s=START_S, t_to_s=90.0)
        last = _last(settings, 90.0)
        tiles = _tiles_at(driver, last)
        events = by_patient(read_topic(settings, settings.topic_events, lambda d: all(
            any(e["type"] == "calibration_accepted" for e in by_patient(d).get(n, [])) for n in RECORDS)))
        for name, doc in last.items():
            assert doc["validity"] == "valid" and doc["sbp"]["sd"], doc
            tile = tiles[name]
            assert tile["text"]["h2.label"] == doc["bed"]
            assert tile["status"] == "numbers"
            for q in ("sbp", "dbp", "map"):
                assert tile["text"][f".numbers .{q}"] == _f0(doc[q]["value"]), (name, q)
                lo, hi = doc[q]["value"] - 1.645 * doc[q]["sd"], doc[q]["value"] + 1.645 * doc[q]["sd"]
                assert tile["text"][f".interval .{q}-lo"] == _f0(lo) and tile["text"][f".interval .{q}-hi"] == _f0(hi)
            assert f"calibrations: {doc['calibration']['count']}" in tile["text"][".cal"]
            assert f"ECG {doc['quality']['ecg']:.2f}" in tile["text"][".quality"]
            # the trend: lines of the valid windows, the uncalibrated start as a gap, the calibration marked
            assert tile["count"]["svg.trend polyline.run.sbp"] >= 1 and tile["count"]["svg.trend rect.gap"] >= 1
            n_cal = sum(e["type"] == "calibration_accepted" for e in events[name])
            assert tile["count"]["svg.trend line.mark.calibration"] == n_cal >= 1
        assert "a555l" not in driver.page_source and "f362s" not in driver.page_source  # bed labels only

        # nothing but the board's own origin was requested by the page
        import json

        urls = [m["params"]["request"]["url"] for m in
                (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
                if m.get("method") == "Network.requestWillBeSent"]
        assert urls and all(u.startswith(url) for u in urls), [u for u in urls if not u.startswith(url)]

        # phase 3: a555l's PPG goes flat after 90 s: its latest windows are invalid, and the tile drops the earlier
        # number for the validity and reasons; f362s keeps its numbers
        _flat_ppg(settings, record("a555l"), "a555l", last["a555l"]["bed"], t_from_s=90.0, n=6)
        flat = _last(settings, 102.0, names=("a555l",))
        doc = flat["a555l"]
        assert doc["validity"] == "invalid" and doc["sbp"] is None and doc["reasons"], doc
        tile = _tiles_at(driver, {**last, **flat})["a555l"]
        assert tile["status"] == "no_numbers" and tile["text"][".numbers"] is None
        assert tile["text"][".validity"] == "invalid" and _f0(last["a555l"]["sbp"]["value"]) not in tile["text"][".reasons"]
        assert all(r in tile["text"][".reasons"] for r in doc["reasons"])
        assert tile["count"]["svg.trend polyline.run.sbp"] >= 1  # the valid stretch stays in the trend

        # `bpstream tail`, whose consumer the board reuses, still prints every estimate of a patient
        _tail_prints_all(settings, monkeypatch, capsys, "a555l", last["a555l"]["seq"])

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT)) and SCREENSHOT.stat().st_size > 10_000
    finally:
        if driver is not None:
            driver.quit()
        worker.stop()
        rc = board.stop()
    assert rc == 0, board.log()[-3000:]
    for name in ("board", "worker"):
        log = board.log() if name == "board" else worker.log()
        assert "Traceback" not in log, log[-3000:]
    assert not any(n in board.log() for n in RECORDS), board.log()  # no patient id in the board's log
