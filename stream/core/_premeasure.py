"""Batched input measures for the step: measure many windows at once, then step one by one.

The input filter's measurements (``measure_input``: integrity, QRS detectors, bSQI, PPG SQIs, beat
templates) are stateless and vectorized over windows, and cost about 7x less per window in batches of
64 than one at a time; only the decision after them is per patient (running template, amplitude).
So before stepping a batch of messages (the worker's micro-batch across patients, or a whole record
in ``validate``), the windows those messages will produce are cut ahead on copies of the windowers,
measured in one call, and kept in a memo keyed by window content; the step's input gate takes its
measures from the memo. A window's measures do not depend on the other windows of its batch, so the
step's outputs are identical with or without the memo (tests/test_bench_all.py checks it); a window
the memo does not hold is measured on its own, as before.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from typing import Iterable, Sequence

import numpy as np

from bpstream.filters import Chunk, ChunkError, Window, Windower

__all__ = ["window_key", "measure_windows", "measure_labels", "take_row", "cut_ahead", "premeasure_chunks"]


def window_key(window: Window) -> bytes:
    """Content key of a window's ECG, PPG and ABP (128-bit BLAKE2b over shape, dtype and samples)."""
    h = hashlib.blake2b(digest_size=16)
    for x in (window.ecg, window.ppg, window.abp):
        if x is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(x)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.digest()


def take_row(obj, i: int, n: int):
    """Window ``i`` of a batch result (dataclasses of per-window arrays), as a batch of one."""
    if dataclasses.is_dataclass(obj):
        return type(obj)(**{f.name: take_row(getattr(obj, f.name), i, n) for f in dataclasses.fields(obj)})
    if isinstance(obj, np.ndarray) and obj.ndim >= 1 and obj.shape[0] == n:
        return obj[i : i + 1]
    return obj


def measure_windows(windows: Sequence[Window], sampling_rate: float, thresholds, batch: int = 64,
                    keys: Sequence[bytes] | None = None) -> dict:
    """``{window_key: InputMeasures of that window alone}`` for ``windows``, measured in batches."""
    from bpstream.filters import measure_input

    out: dict[bytes, object] = {}
    todo: list[tuple[bytes, Window]] = []
    for w, k in zip(windows, keys if keys is not None else map(window_key, windows)):
        if k not in out:
            out[k] = None
            todo.append((k, w))
    for a in range(0, len(todo), batch):
        part = todo[a : a + batch]
        shapes = {(w.ecg.shape, w.ppg.shape) for _, w in part}
        if len(shapes) != 1:  # mixed lengths cannot stack: leave them to the step
            for k, _ in part:
                out.pop(k, None)
            continue
        m = measure_input(np.stack([w.ecg for _, w in part]), np.stack([w.ppg for _, w in part]), sampling_rate,
                          thresholds)
        for i, (k, _) in enumerate(part):
            out[k] = take_row(m, i, len(part))
    return {k: v for k, v in out.items() if v is not None}


def measure_labels(windows: Sequence[Window], keys: Sequence[bytes], batch: int = 64) -> dict:
    """``{window_key: (fs_hz, AbpMeasures)}`` for the windows with an arterial waveform: the stateless
    half of the label filter (``bpstream.filters.measure_abp``), batched by rate and shape."""
    from bpstream.filters import measure_abp

    groups: dict[tuple, list[tuple[bytes, Window]]] = {}
    seen: set[bytes] = set()
    for w, k in zip(windows, keys):
        if w.abp is None or k in seen or not (w.fs_hz and np.isfinite(w.fs_hz)):
            continue
        seen.add(k)
        ppg_ok = w.ppg is not None and np.shape(w.ppg) == np.shape(w.abp)
        groups.setdefault((float(w.fs_hz), np.shape(w.abp), ppg_ok), []).append((k, w))
    out: dict[bytes, tuple[float, object]] = {}
    for (fs, _, ppg_ok), items in groups.items():
        for a in range(0, len(items), batch):
            part = items[a : a + batch]
            abp = np.stack([np.asarray(w.abp, dtype=np.float64) for _, w in part])
            ppg = np.stack([np.asarray(w.ppg, dtype=np.float64) for _, w in part]) if ppg_ok else None
            for (k, _), m in zip(part, measure_abp(abp, fs, ppg)):
                if m is not None:
                    out[k] = (fs, m)
    return out


def cut_ahead(items: Iterable[tuple[object, Windower | None, int, int, Chunk]], make: callable) -> list[Window]:
    """Windows that chunks will produce, cut on copies of their patients' windowers (which stay untouched).

    ``items``: (patient key, the patient's windower or None for a new patient, last applied sequence
    number, chunk sequence number, chunk) in message order. Chunks the step would ignore as repeats
    are skipped; a chunk the windower refuses ends nothing here (the step will refuse it too).
    """
    copies: dict[object, tuple[Windower, int]] = {}
    windows: list[Window] = []
    for key, windower, last_seq, seq, chunk in items:
        if key not in copies:
            copies[key] = (copy.deepcopy(windower) if windower is not None else make(), last_seq)
        wd, last = copies[key]
        if seq <= last:
            continue
        try:
            windows.extend(wd.update(chunk))
        except ChunkError:
            continue
        copies[key] = (wd, seq)
    return windows


def premeasure_chunks(pipeline, chunks: Sequence[Chunk]) -> None:
    """One patient's chunks, in order from a fresh state (a record in ``validate``): measure their
    windows ahead into ``pipeline.premeasured``."""
    c = pipeline.config
    pipeline.premeasure(cut_ahead(((0, None, -1, seq, ch) for seq, ch in enumerate(chunks)),
                                  lambda: Windower(c.window_s, c.hop_s, c.fs_hz)))
