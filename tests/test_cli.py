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


def test_validate_refuses_fold_weights_through_kafka(tmp_path, capsys):
    """The workers of ``--broker`` run the shipped weights: with ``--folds`` the scores would look nested and be
    in-sample, so the pair is a usage error, before any record or broker is touched."""
    rc = main(["validate", str(tmp_path), "--folds", str(tmp_path), "--broker", "127.0.0.1:1"])
    assert rc == 2 and "--folds" in capsys.readouterr().err


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


_LOGGING_PROBE = """
import logging
import sys
from faust import Worker
from bpstream.stream.cli.worker import _bounded_stop
from bpstream.stream.config import Settings
from bpstream.stream.kafka import logging_config
from bpstream.stream.kafka.app import create_app
level, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for fmt in ("json", "text"):
    s = Settings().replace(log_level=level, log_format=fmt)
    w = _bounded_stop(Worker)(create_app(s).app, loglevel=s.log_level, quiet=True,
                              logging_config=logging_config(s.log_format, s.log_level))
    w._setup_logging()
    enabled = [(logging.getLogger(n).isEnabledFor(logging.DEBUG), logging.getLogger(n).isEnabledFor(logging.WARNING))
               for n in names]
    with open(out, "a") as f:  # mode redirects stdout into logging
        print(fmt, *(f"{d}/{w}" for d, w in enabled), "+".join(sorted(type(h).__name__ for h in logging.root.handlers)),
              file=f)
"""


def _worker_logging(tmp_path, level: str, names: list[str]) -> list[list[str]]:
    """For each log format, a worker's logging as set up at ``level`` (in a subprocess: mode's set-up replaces
    the process's logging configuration): [format, "debug?/warning?" per logger name, root handler types]."""
    import subprocess
    import sys

    found = tmp_path / f"levels-{level}.txt"
    out = subprocess.run([sys.executable, "-c", _LOGGING_PROBE, level, str(found), *names], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln.split(" ") for ln in found.read_text().splitlines()]
    assert [ln[0] for ln in lines] == ["json", "text"], lines
    return lines


def test_worker_at_warning_level_builds_no_debug_records(tmp_path):
    """faust's terminal spinner (on at log level warning and above) sets the root logger to DEBUG, so every
    aiokafka/faust debug call would build a LogRecord; the worker runs without it."""
    for fmt, fetcher, handlers in _worker_logging(tmp_path, "warning", ["aiokafka.consumer.fetcher"]):
        assert fetcher == "False/True", (fmt, fetcher)
        assert "SpinnerHandler" not in handlers, (fmt, handlers)


def test_at_debug_level_no_logger_writes_message_contents(tmp_path):
    """faust and aiokafka log every record they send (key and value: patient ids, estimates) at debug level;
    with the worker at ``--loglevel debug`` those loggers stay at info, bpstream's own go to debug."""
    names = ["faust.topics", "aiokafka.producer.producer", "faust.tables.table", "kafka.producer", "bpstream.worker"]
    for fmt, *levels, _ in _worker_logging(tmp_path, "debug", names):
        assert levels == ["False/True"] * 4 + ["True/True"], (fmt, levels)
