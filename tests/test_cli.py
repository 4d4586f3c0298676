"""The command line: validate, demo, and the error for a record without PPG."""

from __future__ import annotations

import json

from bpstream.stream.cli import main

from ._data import MIMIC, PN2015


def test_validate_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    rc = main(["validate", str(PN2015), "--records", "a555l,f362s", "--methods", "mean,carry_forward",
               "--calibration", "every:60", "--json", str(out), "--plot", str(tmp_path / "plots")])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["protocol"]["calibration"] == "every:60" and doc["protocol"]["fs_hz"] == 125.0
    assert doc["records"] == 2 and doc["windows"] > 200
    for m in ("mean", "carry_forward"):
        entry = doc["methods"][m]
        assert entry["n"] == doc["windows"]
        for q in ("sbp", "dbp", "map"):
            assert set(entry[q]) >= {"me", "sd", "mae", "rmse", "within5", "within10", "within15"}
    assert doc["methods"]["carry_forward"]["sbp"]["mae"] < doc["methods"]["mean"]["sbp"]["mae"]
    assert "rejected" in doc and set(doc["rejected"]) >= {"input", "label"}
    table = capsys.readouterr().out
    assert "carry_forward" in table and "MAE" in table
    assert list((tmp_path / "plots").glob("*.png"))


def test_validate_record_without_ppg_is_a_clear_error(capsys):
    rc = main(["validate", str(MIMIC / "mimic2_s00001" / "3975656_0012"), "--methods", "carry_forward"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "3975656_0012" in err and "ppg" in err


def test_demo_runs_on_the_shared_data(capsys):
    rc = main(["demo", "--data", str(PN2015), "--records", "f362s", "--every", "20"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "f362s" in out and "SBP" in out


def test_demo_without_data_says_how_to_download(tmp_path, capsys):
    rc = main(["demo", "--data", str(tmp_path)])
    assert rc == 1
    assert "dl_database" in capsys.readouterr().err


def test_version_and_tail_help_without_wfdb():
    """``--version`` prints the installed version; a command imports only its own module, so ``tail`` works
    where wfdb is not installed (simulated: importing wfdb raises ImportError in that interpreter)."""
    import subprocess
    import sys
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "bpstream.stream.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"bpstream {version('bpstream')}"
    code = ("import sys; sys.modules['wfdb'] = None\n"
            "from bpstream.stream.cli import main\n"
            "main(['tail', '--help'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage: bpstream tail" in out.stdout and "--format" in out.stdout
    # and the check is real: reading a record needs wfdb (imported when a record is read, so even
    # `validate --help` works without it)
    code = code.replace("['tail', '--help']", f"['validate', {str(PN2015 / 'f362s')!r}, '--methods', 'carry_forward']")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode != 0


def test_worker_at_warning_level_builds_no_debug_records(tmp_path):
    """faust's terminal spinner (on at log level warning and above) sets the root logger to DEBUG, so every
    aiokafka/faust debug call would build a LogRecord; the worker runs without it. In a subprocess: mode's
    logging set-up replaces the process's logging configuration."""
    import subprocess
    import sys

    script = """
import logging
import sys
from faust import Worker
from bpstream.stream.cli.worker import _bounded_stop
from bpstream.stream.config import Settings
from bpstream.stream.kafka import logging_config
from bpstream.stream.kafka.app import create_app
for fmt in ("json", "text"):
    s = Settings().replace(log_level="warning", log_format=fmt)
    w = _bounded_stop(Worker)(create_app(s).app, loglevel=s.log_level, quiet=True,
                              logging_config=logging_config(s.log_format, s.log_level))
    w._setup_logging()
    lg = logging.getLogger("aiokafka.consumer.fetcher")
    with open(sys.argv[1], "a") as f:  # mode redirects stdout into logging
        print(fmt, lg.isEnabledFor(logging.DEBUG), lg.isEnabledFor(logging.WARNING),
              sorted(type(h).__name__ for h in logging.root.handlers), file=f)
"""
    found = tmp_path / "levels.txt"
    out = subprocess.run([sys.executable, "-c", script, str(found)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = found.read_text().splitlines()
    assert len(lines) == 2, lines
    for ln in lines:
        fmt, debug, warning, handlers = ln.split(" ", 3)
        assert (debug, warning) == ("False", "True"), ln
        assert "SpinnerHandler" not in handlers, ln
