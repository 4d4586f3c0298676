"""Issue 10 on a real broker (Tansu): settings checked at start (8), graceful stop without a broker (9),
and the fuzz regression (6, 7, 11): thousands of malformed messages interleaved with a real patient,
every one dead-lettered and reconciled one for one by topic/partition/offset, the worker never dies,
the patient's estimates all come out.
"""

from __future__ import annotations

import base64
import math
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from ._data import record
from bpstream.filters import Windower
from ._kafka import WorkerProcess, read_topic, settings_for
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.core._messages import Calibrate
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.kafka._schemas import command_doc, to_iso
from bpstream.stream.kafka._tansu import Tansu
from bpstream.stream.kafka._topics import producer

pytestmark = pytest.mark.kafka


def _run_worker(env_settings, tmp_path, timeout_s: float = 20.0) -> tuple[int | None, str, float]:
    """``bpstream worker`` with these settings' environment (unvalidated: the worker must refuse them)."""
    import dataclasses
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("BPSTREAM_")}
    env.update(dataclasses.replace(env_settings, datadir=str(tmp_path / "data")).to_env())
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "bpstream.stream.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        rc = None
    return rc, out.decode(errors="replace"), time.monotonic() - t0


@pytest.mark.parametrize("changes, names", [
    (dict(security_protocol="SSL", ssl_cafile="/nonexistent/ca.pem"), "BPSTREAM_SSL_CAFILE"),
    (dict(security_protocol="SSL", ssl_certfile="/nonexistent/cert.pem", ssl_keyfile="/nonexistent/k.pem"),
     "BPSTREAM_SSL_CERTFILE"),
    (dict(security_protocol="SASL_SSL", sasl_mechanism="GSSAPI"), "BPSTREAM_SASL_MECHANISM"),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="FOO", sasl_username="u", sasl_password="p"),
     "BPSTREAM_SASL_MECHANISM"),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN"), "BPSTREAM_SASL_USERNAME"),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="u"),
     "BPSTREAM_SASL_PASSWORD"),
    (dict(security_protocol="SASL_PLAINTEXT"), "BPSTREAM_SASL_MECHANISM"),
])
def test_unusable_security_settings_exit_at_once_naming_the_setting(tansu, tmp_path, changes, names):
    rc, log, took = _run_worker(settings_for(tansu, "sec", **changes), tmp_path, timeout_s=10.0)
    assert rc not in (None, 0), log[-2000:]
    assert took < 10.0 and names in log, log[-2000:]
    assert "Traceback" not in log


def test_a_broker_refusing_sasl_is_reported_as_such_quickly(tansu, tmp_path):
    s = settings_for(tansu, "sasl", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                     sasl_username="u", sasl_password="secret-pw")
    rc, log, took = _run_worker(s, tmp_path, timeout_s=20.0)
    assert rc not in (None, 0) and took < 15.0, (rc, took, log[-2000:])
    assert "answered but" in log and "SASL" in log, log[-2000:]
    assert "secret-pw" not in log


def test_sigterm_stops_a_worker_whose_broker_has_gone(tmp_path):
    broker = Tansu(log_path=tmp_path / "tansu.log").start()
    try:
        s = settings_for(broker.bootstrap, "term", partitions=2)
        w = WorkerProcess(s, tmp_path)
        try:
            w.wait_ready()
            chunks = list(iter_chunks(read_record(record("a555l")), 2.0, t0_s=math.floor(time.time()) - 600))[:8]
            p = producer(s)
            for i, c in enumerate(chunks):
                p.send(s.topic_waveforms, key=b"term-1", value=encode_waveform("term-1", i, c))
            p.flush()
            p.close()
            read_topic(s, s.topic_estimates, lambda d: len(d) >= 1, timeout_s=60)
        finally:
            broker.stop()  # the broker goes away under the running worker
        time.sleep(2.0)
        t0 = time.monotonic()
        w.process.terminate()
        try:
            rc = w.process.wait(15.0)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        w.stop()
        assert rc is not None and took < 15.0, (took, w.log()[-3000:])
    finally:
        broker.stop()


# -- the fuzz regression ---------------------------------------------------------------------------
N_FUZZ = 5000


def _b64(x: np.ndarray) -> str:
    return base64.b64encode(x.astype("<f4").tobytes()).decode()


def _malformed(rng: random.Random, start: float) -> list[tuple[str, bytes, bytes, set[str]]]:
    """(topic kind, key, value, accepted reasons): every one must be dead-lettered."""
    zeros = np.zeros(500)
    ch = {"fs_hz": 250.0, "encoding": "float32", "samples": _b64(zeros)}

    def wave(pid="fz-0", **over):
        doc = {"schema": "bp.waveforms.v1", "patient_id": pid, "seq": 0, "start_time": to_iso(start),
               "channels": {"ecg": dict(ch), "ppg": dict(ch)}}
        doc.update(over)
        return doc

    nan = zeros.copy()
    nan[3] = np.nan
    cmd = command_doc("fz-0", Calibrate("c-1", start + 10, 120.0, 70.0), start + 11, operator="rn-1")
    inv, nj = {"msg_invalid"}, {"msg_not_json"}
    kinds = [
        ("w", lambda i: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), nj | inv),
        ("w", lambda i: b"{not json " + str(i).encode(), nj),
        ("w", lambda i: dumps(wave(schema="bp.waveforms.v2")), {"msg_schema_version"}),
        ("w", lambda i: b"[1, 2, 3]", inv),
        ("w", lambda i: dumps(wave(channels={"ecg": {**ch, "samples": "@@not base64@@"}, "ppg": ch})), inv),
        ("w", lambda i: dumps(wave(channels={"ecg": ch, "ppg": {**ch, "samples": _b64(nan)}})), {"msg_nan_samples"}),
        ("w", lambda i: dumps(wave(seq="7")), inv),
        ("w", lambda i: dumps(wave(channels=[ch, ch])), inv),
        ("w", lambda i: dumps(wave(channels={"ecg": {**ch, "fs_hz": "250"}, "ppg": ch})), inv),
        ("w", lambda i: dumps(wave()).replace(b'"seq":0', b'"seq":' + str(2 ** rng.choice((63, 64, 200))).encode()), inv),
        ("w", lambda i: b'{"schema":"bp.waveforms.v1","x":' + b"[" * 1000 + b"]" * 1000 + b"}", inv | nj),
        ("w", lambda i: dumps(wave(start_time=rng.choice(["9999-12-31T23:59:40Z", "1970-01-01T00:00:00Z",
                                                          "PATIENT-ZZ-9931-secret"]))), inv),
        ("w", lambda i: dumps(wave(pid=rng.choice(["../../etc/passwd", ".x", "a b", "x" * 80]))), inv),
        ("w", lambda i: dumps(wave(channels={"ecg": {**ch, "samples": _b64(np.zeros(100))},
                                             "ppg": {**ch, "samples": _b64(np.zeros(101))}})), inv),
        ("w", lambda i: dumps(wave(pid="fz-other")), inv),  # key is not the patient id
        ("c", lambda i: b"\xff\xfe" + str(i).encode(), nj),
        ("c", lambda i: dumps({**cmd, "type": "recalibrate"}), inv),
        ("c", lambda i: dumps({**cmd, "measured_at": "9999-12-31T23:59:40Z"}), inv),
        ("c", lambda i: dumps({k: v for k, v in cmd.items() if k != "sbp_mmhg"}), inv),
        ("c", lambda i: dumps({**cmd, "schema": "bp.commands.v0"}), {"msg_schema_version"}),
        ("c", lambda i: dumps({**cmd, "command_id": f"u-{i}"}), {"msg_unknown_patient"}),
    ]
    out = []
    for i in range(N_FUZZ):
        kind, make, reasons = kinds[i % len(kinds)]
        value = make(i)
        key = b"fz-0" if b'"patient_id":"fz-0"' in value or kind == "c" else f"fz-{i % 7}".encode()
        out.append((kind, key, value, reasons))
    big = dumps(wave(channels={"ecg": {**ch, "samples": _b64(np.zeros(40_000))},
                               "ppg": {**ch, "samples": _b64(np.zeros(40_000))}}))
    out += [("w", b"fz-0", big, {"msg_oversized"})] * 5
    rng.shuffle(out)
    return out


def test_fuzz_thousands_of_malformed_messages_reconcile_one_for_one(tansu, tmp_path):
    s = settings_for(tansu, "fuzz", max_chunk_bytes=200_000, batch_max=64)
    worker = WorkerProcess(s, tmp_path)
    try:
        worker.wait_ready()
        start = math.floor(time.time()) - 3600
        chunks = list(iter_chunks(read_record(record("a555l")), 2.0, t0_s=start))
        bad = _malformed(random.Random(0), start)
        topic = {"w": s.topic_waveforms, "c": s.topic_commands}
        p = producer(s)
        sent, every = [], max(1, len(bad) // len(chunks))
        real = iter(enumerate(chunks))
        for i, (kind, key, value, reasons) in enumerate(bad):
            if i % every == 0:
                n = next(real, None)
                if n is not None:
                    p.send(s.topic_waveforms, key=b"real-1", value=encode_waveform("real-1", n[0], n[1]))
            sent.append((p.send(topic[kind], key=key, value=value), topic[kind], reasons))
        for seq, c in real:
            p.send(s.topic_waveforms, key=b"real-1", value=encode_waveform("real-1", seq, c))
        p.flush()
        expected = {}
        for future, name, reasons in sent:
            md = future.get(30)
            expected[(name, md.partition, md.offset)] = reasons
        p.close()
        dead = read_topic(s, s.topic_deadletter, lambda d: len(d) >= len(expected), timeout_s=180,
                          linger_s=5.0)  # and 5 s more: a second dead letter for one message would be seen
        got = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d for d in dead}
        assert len(dead) == len(got) == len(expected)  # one for one: none missing, none twice, none extra
        assert set(got) == set(expected)
        wrong = [(k, got[k]["reason"], r) for k, r in expected.items() if got[k]["reason"] not in r]
        assert not wrong, wrong[:5]
        assert not any("secret" in d["detail"].lower() or "passwd" in d["detail"] for d in dead)
        # the real patient: every window estimated, in order, nothing lost
        windower = Windower(10.0, 2.0, 125.0)  # the windows the step cuts from these chunks
        n_windows = sum(len(windower.update(c)) for c in chunks)
        est = read_topic(s, s.topic_estimates, lambda d: sum(x["patient_id"] == "real-1" for x in d) >= n_windows,
                         timeout_s=120)
        mine = sorted(x["seq"] for x in est if x["patient_id"] == "real-1")
        assert mine == list(range(1, n_windows + 1))
        assert worker.process.poll() is None, "the worker died"
    finally:
        worker.stop()
    log = worker.log()
    assert "Traceback" not in log and "secret" not in log.lower() and "passwd" not in log
    print(f"fuzz: {len(expected)} malformed, {len(mine)} estimates", file=sys.stderr)
