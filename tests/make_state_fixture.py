"""How ``tests/fixtures/state_v0_synthetic.bin`` was made (run once; kept, never regenerated).

A SYNTHETIC patient (NeuroKit2's simulated ECG and PPG at 70 bpm, an arterial pulse shaped like the
PPG, 120/70 mmHg; no recorded data) is stepped for 40 s through a pipeline running ``carry_forward``
and ``ttt`` with the arterial schedule ``once``, then its state is written with the state codec of
commit 02a7ee8 (the ``module:qualname`` format, "v0" here). ``state_v0_synthetic.json`` keeps what
the state held, so the test can check what a later codec reads back.

    .venv/bin/python tests/make_state_fixture.py OUT.bin     # writes OUT.bin and OUT.json

Rerunning it with today's code writes today's format, not v0: the committed v0 file is the fixture.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

FS = 125.0
METHODS = ("carry_forward", "ttt")


def synthetic_chunks(seconds: float, chunk_s: float = 2.0, t0: float = 1_780_000_000.0):
    import neurokit2 as nk

    from bpstream.filters import Chunk
    from bpstream.stream.core._messages import ChunkMessage

    n = int(seconds * FS)
    rng = np.random.default_rng(0)
    ecg = nk.ecg_simulate(duration=seconds, sampling_rate=FS, heart_rate=70, heart_rate_std=0, random_state=0, noise=0.0)
    ecg = ecg[:n] + 0.01 * rng.standard_normal(n)
    ppg = nk.ppg_simulate(duration=seconds, sampling_rate=FS, heart_rate=70, random_state=0, motion_amplitude=0,
                          powerline_amplitude=0, burst_amplitude=0, drift=0, ibi_randomness=0)[:n]
    pulse = (ppg - ppg.min()) / (ppg.max() - ppg.min())
    abp = 70 + 50 * pulse
    step = int(chunk_s * FS)
    for i, a in enumerate(range(0, n, step)):
        b = a + step
        yield ChunkMessage(i, Chunk(t0 + a / FS, {"ecg": FS, "ppg": FS, "abp": FS},
                                    {"ecg": ecg[a:b], "ppg": ppg[a:b], "abp": abp[a:b]}))


def pipeline():
    from bpstream.stream.core._schedule import Schedule
    from bpstream.stream.core._step import Pipeline, PipelineConfig

    return Pipeline(PipelineConfig(methods=METHODS, arterial_schedule=Schedule.parse("once")))


def main(out: str) -> None:
    p = pipeline()
    state = None
    for m in synthetic_chunks(40.0):
        state, _ = p.step(state, m)
    from bpstream.stream.core._state_codec import state_to_bytes

    blob = state_to_bytes(state)
    Path(out).write_bytes(blob)
    facts = {"last_seq": state.last_seq, "out_seq": state.out_seq, "calibrations": state.calibrations,
             "last_t_end_s": state.last_t_end_s, "carry_forward_last": state.estimators["carry_forward"].last_,
             "ttt_state_sha256": hashlib.sha256(state.estimators["ttt"].to_bytes()).hexdigest(),
             "bytes": len(blob)}
    Path(out).with_suffix(".json").write_text(json.dumps(facts, indent=1) + "\n")
    print(facts)


if __name__ == "__main__":
    main(sys.argv[1])
