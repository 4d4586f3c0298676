"""How ``tests/fixtures/state_v0_synthetic.bin`` and ``state_v2_synthetic.bin`` were made (run once each; kept).

A SYNTHETIC patient (NeuroKit2's simulated ECG and PPG at 70 bpm, an arterial pulse shaped like the
PPG, 120/70 mmHg; no recorded data) is stepped for 40 s through a pipeline running ``carry_forward``
and ``ttt`` with the arterial schedule ``once``, then its state is written with the state codec of
commit 02a7ee8 (the ``module:qualname`` format, "v0" here). ``state_v0_synthetic.json`` keeps what
the state held, so the test can check what a later codec reads back.

``state_v2_synthetic.bin`` is the same patient stepped through every estimator (``--all``: fusion, ttt,
offset, frozen, carry_forward, mean), written by the format-2 codec (JSON header and raw buffers through
``bpstream.models.pack``) of commit b00db86, the last before format 3; its ``.json`` adds the SHA-256 of
every estimator's ``to_bytes()``.

    .venv/bin/python tests/make_state_fixture.py OUT.bin [--all]    # writes OUT.bin and OUT.json

Rerunning it with today's code writes today's format: the committed files are the fixtures.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

FS = 125.0
METHODS = ("carry_forward", "ttt")
ALL_METHODS = ("fusion", "ttt", "offset", "frozen", "carry_forward", "mean")


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


def pipeline(methods: tuple[str, ...] = METHODS):
    from bpstream.stream.core._schedule import Schedule
    from bpstream.stream.core._step import Pipeline, PipelineConfig

    return Pipeline(PipelineConfig(methods=methods, arterial_schedule=Schedule.parse("once")))


def main(out: str, methods: tuple[str, ...] = METHODS) -> None:
    p = pipeline(methods)
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
    if methods != METHODS:
        facts["estimator_sha256"] = {m: hashlib.sha256(e.to_bytes()).hexdigest() for m, e in state.estimators.items()}
    Path(out).with_suffix(".json").write_text(json.dumps(facts, indent=1) + "\n")
    print(facts)


if __name__ == "__main__":
    main(sys.argv[1], ALL_METHODS if "--all" in sys.argv[2:] else METHODS)
