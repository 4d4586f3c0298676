"""Size and speed of the patient state codec (a measurement, not a test; run by hand).

Replays a few records (every registered estimator, arterial calibration every 60 s) and, at the end of
each record, writes the patient's state (``state_to_bytes``, the worker's table value) and reads it back
(``state_from_bytes``), ``--rounds`` times each on one core, printing the state's bytes (median and max
over the records; the size ``stream/bench/_bench_replay.state_bytes`` reports) and the encode and decode
microseconds per state (per record the minimum over the rounds, the least disturbed figure on a shared
machine, and the median; then the median over the records), with the machine and the date.

    .venv/bin/python tests/measure_state_codec.py [--records a555l,f362s,v370s,b330s,a123l] [--rounds 50]

``--codec FILE`` measures another version of ``stream/core/_state_codec.py`` instead (loaded as a sibling
module of the current one), e.g. format 2: ``git show b00db86:stream/core/_state_codec.py > /tmp/codec2.py``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import time


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                   "physionet2015"))
    ap.add_argument("--records", default="a555l,f362s,v370s,b330s,a123l")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--codec", help="a _state_codec.py file to measure instead of the current one")
    args = ap.parse_args()

    from bpstream.stream.bench._bench_replay import PREFERRED, factories, load_recordings, one_core
    from bpstream.stream import core
    from bpstream.stream.core import Pipeline, PipelineConfig, Schedule
    from bpstream.stream.evaluation import available_methods
    from bpstream.stream.records import iter_outputs

    codec = core
    if args.codec:
        spec = importlib.util.spec_from_file_location("bpstream.stream.core._measured_codec", args.codec)
        codec = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(codec)
    state_to_bytes, state_from_bytes = codec.state_to_bytes, codec.state_from_bytes

    methods = available_methods(PREFERRED)
    config = PipelineConfig(methods=methods, arterial_schedule=Schedule.parse("every:60"))
    facts, weights = factories(methods)
    sizes, enc_us, dec_us, enc_min_us, dec_min_us = [], [], [], [], []
    with one_core():
        for rec in load_recordings(args.data, args.records.split(",")):
            pipeline = Pipeline(config, facts)
            states: dict = {}
            for _ in iter_outputs(pipeline, rec, 2.0, states=states):
                pass
            state = states[rec.name]
            data = state_to_bytes(state)
            sizes.append(len(data))
            t_enc, t_dec = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                data = state_to_bytes(state)
                t1 = time.perf_counter()
                state_from_bytes(data, pipeline)
                t_dec.append(time.perf_counter() - t1)
                t_enc.append(t1 - t0)
            enc_us.append(1e6 * statistics.median(t_enc))
            dec_us.append(1e6 * statistics.median(t_dec))
            enc_min_us.append(1e6 * min(t_enc))
            dec_min_us.append(1e6 * min(t_dec))
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"), "codec": args.codec,
           "machine": {"nproc": os.cpu_count(), "cpu": _cpu_model()}, "methods": list(methods), "weights": weights,
           "records": args.records, "rounds": args.rounds, "magic": data[:4].decode("latin-1"),
           "state_bytes": sizes, "state_bytes_median": int(statistics.median(sizes)), "state_bytes_max": max(sizes),
           "encode_us_min": round(statistics.median(enc_min_us)), "decode_us_min": round(statistics.median(dec_min_us)),
           "encode_us_median": round(statistics.median(enc_us)), "decode_us_median": round(statistics.median(dec_us))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
