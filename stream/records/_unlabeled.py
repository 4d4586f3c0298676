"""Unlabeled ECG + PPG windows for self-supervised pretraining (IO layer): the windows the step's input filter
passes, from records with or without an arterial line (``../shared/data/physionet2015-unlabeled``).

Like ``_dataset``, read from the step's own results, and cached as .npz under a git-ignored folder (derived data
never enters the repository). Arterial pressure is never read: a record's ABP channel, if any, is ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from bpstream.models import UnlabeledArrays, normalize_waveforms
from bpstream.stream.core import Pipeline, PipelineConfig, RecordError, WindowResult

from ._dataset import cached_arrays
from ._records import read_record
from ._stepped import iter_outputs

__all__ = ["build_unlabeled_arrays"]

_VERSION = "1"


def _record_windows(path: Path, fs_hz: float = 125.0, window_s: float = 10.0, hop_s: float = 2.0,
                    chunk_s: float = 2.0) -> dict[str, np.ndarray]:
    rec = read_record(path, roles=("ecg", "ppg"), required=("ecg", "ppg"))
    config = PipelineConfig(window_s=window_s, hop_s=hop_s, fs_hz=fs_hz, methods=("carry_forward",), keep_windows=True)
    ecg, ppg, ts = [], [], []
    for r in iter_outputs(Pipeline(config), rec, chunk_s):
        if isinstance(r, WindowResult) and r.window is not None and r.input_usable:
            ecg.append(np.asarray(r.window.ecg, np.float32))
            ppg.append(np.asarray(r.window.ppg, np.float32))
            ts.append(r.window.t_end_s)
    if not ecg:
        return {"x": np.zeros((0, 2, int(round(window_s * fs_hz))), np.float16), "t_s": np.zeros(0, np.float32)}
    return {"x": normalize_waveforms(np.stack(ecg), np.stack(ppg)).astype(np.float16),
            "t_s": np.asarray(ts, np.float32)}


def _code_digest() -> str:
    from ._dataset import code_digest  # the same filters and step decide these windows

    return hashlib.sha1((_VERSION + code_digest()).encode() + Path(__file__).read_bytes()).hexdigest()[:12]


def build_unlabeled_arrays(paths: Sequence[Path], cache_dir: str | Path | None = None) -> UnlabeledArrays:
    """The usable input windows of ``paths`` (records lacking ECG or PPG are skipped)."""
    cache = Path(cache_dir) if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    code = _code_digest() if cache else ""
    parts, names = [], []
    for path in map(Path, paths):
        try:
            arr = cached_arrays(path, cache, code, _record_windows, prefix="unlabeled-")
        except RecordError:
            continue
        if len(arr["t_s"]):
            parts.append(arr)
            names.append(path.name)
    if not parts:
        return UnlabeledArrays(np.zeros((0, 2, 1250), np.float16), np.zeros(0, int), np.zeros(0, np.float32), [])
    return UnlabeledArrays(x=np.concatenate([a["x"] for a in parts]),
                           record=np.concatenate([np.full(len(a["t_s"]), i) for i, a in enumerate(parts)]),
                           t_s=np.concatenate([a["t_s"] for a in parts]), names=names)
