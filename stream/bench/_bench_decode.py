"""``bpstream bench decode``: the decode stage alone (seconds, not minutes).

The cost of ``decode_waveform`` (``bp.waveforms.v1`` bytes -> chunk: size and depth checks, parse,
validation, base64, samples) on one real record's chunks, in CPU ms per window as the ``decode`` stage of
``bpstream bench perf`` counts it (per chunk x hop / chunk length). The perf bench times one pass; here
the same messages are decoded ``--decode-rounds`` times and the minimum and the median are reported (the
machine is shared: the minimum is the least disturbed figure), for the float32 wire form (the stage's)
and the int16 one with the record's ADC gains.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from bpstream.stream.records import Recording, iter_chunks

__all__ = ["run_bench", "add_arguments", "decode_cost"]

_clock = time.thread_time  # CPU time of this thread (shared machine)
_EPOCH_SHIFT_S = 1.7e9  # records start at 0 s (1970); a live stream is dated now


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decode (bpstream bench decode)")
    g.add_argument("--decode-messages", type=int, default=300, help="chunks decoded per round")
    g.add_argument("--decode-rounds", type=int, default=7, help="rounds (min and median reported)")


def _messages(recording: Recording, chunk_s: float, n: int, gains: dict | None = None) -> list[bytes]:
    from bpstream.stream.kafka import encode_waveform

    msgs = []
    for seq, chunk in enumerate(iter_chunks(recording, chunk_s)):
        chunk = replace(chunk, t_start_s=chunk.t_start_s + _EPOCH_SHIFT_S)
        msgs.append(encode_waveform("bench-0001", seq, chunk, gains=gains))
        if len(msgs) >= n:
            break
    return msgs


def decode_cost(msgs: list[bytes]) -> float:
    """CPU seconds per message of one pass of ``decode_waveform`` over ``msgs``."""
    from bpstream.stream.kafka import decode_waveform

    t0 = _clock()
    for m in msgs:
        decode_waveform(m)
    return (_clock() - t0) / len(msgs)


def run_bench(args: argparse.Namespace) -> dict:
    from ._machine import data_dir, machine
    from ._bench_replay import one_core
    from bpstream.stream.records import list_records, read_record
    from bpstream.stream.kafka import adc_gains

    chunk_s, hop_s = 1.0, 2.0
    names = args.records.split(",") if getattr(args, "records", None) else None
    path = list_records([data_dir(args)], names)[0]
    rec = read_record(path)
    n, rounds = getattr(args, "decode_messages", 300), getattr(args, "decode_rounds", 7)
    out: dict = {"machine": machine(), "record": rec.name, "chunk_s": chunk_s, "hop_s": hop_s, "rounds": rounds}
    with one_core():
        for enc, gains in (("float32", None), ("int16", adc_gains(path, ("ecg", "ppg", "abp")) or None)):
            msgs = _messages(rec, chunk_s, n, gains)
            decode_cost(msgs)  # warm-up
            per_window = [1e3 * decode_cost(msgs) * hop_s / chunk_s for _ in range(rounds)]
            out[enc] = {"messages": len(msgs), "bytes_per_message": len(msgs[0]),
                        "ms_per_window_min": round(min(per_window), 4),
                        "ms_per_window_median": round(statistics.median(per_window), 4)}
    print(f"[decode] {out}", flush=True)
    return {"decode": out}
