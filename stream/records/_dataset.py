"""Training arrays from WFDB records (IO layer): exactly the windows and references `validate` sees.

Each record goes through the same reader, chunker, windower and quality gates as the per-patient step;
a window enters training only when its input passed the filters and its arterial reference is usable.
Arrays can be cached as .npz under a git-ignored folder (derived data never enters the repository:
PhysioNet terms allow verbatim redistribution only).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bpstream.models import TrainArrays, normalize_waveforms, window_features
from bpstream.stream.core import Pipeline, PipelineConfig, RecordError, WindowResult

from ._records import read_record
from ._stepped import iter_outputs

__all__ = ["build_arrays", "record_arrays"]

_VERSION = "3"  # bump when the windowing, gates or features change (3: read from the step)


def record_arrays(path: str | Path, fs_hz: float = 125.0, window_s: float = 10.0, hop_s: float = 2.0,
                  chunk_s: float = 2.0) -> dict[str, np.ndarray]:
    """Usable labelled windows of one record: x (n, 2, L) float16, feats, y (n, 3), t_s, weight.

    Read from the step's own results (``iter_outputs``: the record loop ``validate`` runs): every window
    with finite ECG and PPG whose arterial reference the label filter passed, with the input gate's
    verdict and score beside it."""
    rec = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg", "abp"))
    config = PipelineConfig(window_s=window_s, hop_s=hop_s, fs_hz=fs_hz, methods=("carry_forward",), keep_windows=True)
    ecg, ppg, ys, ts, ws, usable, score = [], [], [], [], [], [], []
    for r in iter_outputs(Pipeline(config), rec, chunk_s):
        if not isinstance(r, WindowResult) or r.window is None or r.window.abp is None or r.reference is None:
            continue
        w, ref = r.window, r.reference
        if not (np.isfinite(w.ecg).all() and np.isfinite(w.ppg).all()):
            continue
        vals = (ref.sbp_mmhg, ref.dbp_mmhg, ref.map_mmhg)
        if not ref.usable or any(v is None or not np.isfinite(v) for v in vals):
            continue
        ecg.append(np.asarray(w.ecg, np.float32))
        ppg.append(np.asarray(w.ppg, np.float32))
        ys.append(vals)
        ts.append(w.t_end_s)
        ws.append(float(np.clip(ref.good_beat_fraction, 0.3, 1.0)))
        usable.append(bool(r.input_usable))
        score.append(float(min(r.ecg_score, r.ppg_score)))
    n_samples = int(round(window_s * fs_hz))
    if not ecg:
        return {"x": np.zeros((0, 2, n_samples), np.float16), "feats": np.zeros((0, 9), np.float32),
                "y": np.zeros((0, 3), np.float32), "t_s": np.zeros(0, np.float32), "weight": np.zeros(0, np.float32),
                "input_usable": np.zeros(0, bool), "input_score": np.zeros(0, np.float32)}
    e, p = np.stack(ecg), np.stack(ppg)
    return {
        "x": normalize_waveforms(e, p).astype(np.float16),
        "feats": window_features(e, p, fs_hz=fs_hz),
        "y": np.asarray(ys, np.float32),
        "t_s": np.asarray(ts, np.float32),
        "weight": np.asarray(ws, np.float32),
        "input_usable": np.asarray(usable, bool),
        "input_score": np.asarray(score, np.float32),
    }


def code_digest() -> str:
    """Digest of the code that decides which windows and labels a record yields (the record reader: channels,
    units; filters, the step, features; and the WFDB reader's version), so a cache built before any of them
    changed is never reused."""
    from importlib import metadata

    h = hashlib.sha1(_VERSION.encode())
    h.update(metadata.version("wfdb").encode())
    for f in digest_files():
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def digest_files() -> list[Path]:
    """The source files ``code_digest`` covers."""
    import inspect

    import bpstream.filters as filters_pkg

    return (sorted(Path(filters_pkg.__file__).parent.glob("*.py")) + sorted(Path(inspect.getfile(Pipeline)).parent.glob("*.py"))
            + [Path(__file__), Path(inspect.getfile(iter_outputs)), Path(inspect.getfile(window_features)),
               Path(inspect.getfile(read_record))])


def _cache_key(path: Path, code: str) -> str:
    """The record's name, the code digest, and size and time of every file of the record (header and signals)."""
    import glob

    files = sorted(f for f in path.parent.glob(glob.escape(path.stem) + ".*") if f.is_file())
    stats = [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]
    h = hashlib.sha1(json.dumps([code, path.name, stats]).encode()).hexdigest()[:12]
    return f"{path.name}-{h}.npz"


def cached_arrays(path: Path, cache: Path | None, code: str, build: Callable[[Path], dict], prefix: str = "") -> dict:
    """``build(path)``'s arrays, read from (or written to) ``cache`` under a key of the record and ``code`` (the
    digest of the code that decides them); ``RecordError`` from ``build`` passes through."""
    f = cache / (prefix + _cache_key(path, code)) if cache else None
    if f is not None and f.exists():
        with np.load(f) as d:
            return {k: d[k] for k in d.files}
    arr = build(path)
    if f is not None:
        np.savez(f, **arr)
    return arr


def build_arrays(paths: Sequence[Path], cache_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = None, unusable_input_weight: float = 0.3) -> TrainArrays:
    """Concatenate the labelled windows of ``paths`` (records lacking ABP/ECG/PPG are skipped).

    Every window has a usable arterial label. Windows whose ECG/PPG failed the input filter (but are finite)
    are kept with their sample weight multiplied by ``unusable_input_weight`` (0 drops them); ``usable``
    marks the windows that passed, the only ones used to fit test-time constants.
    """
    parts, names = [], []
    cache = Path(cache_dir) if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    code = code_digest() if cache else ""
    for path in paths:
        path = Path(path)
        try:
            arr = cached_arrays(path, cache, code, record_arrays)
        except RecordError as exc:
            if progress:
                progress(f"skip {path.name}: {exc}")
            continue
        if progress:
            progress(f"{path.name}: {len(arr['y'])} windows")
        if len(arr["y"]):
            parts.append(arr)
            names.append(path.name)
    if not parts:
        raise RecordError("no usable labelled windows in the given records")
    rec_idx = np.concatenate([np.full(len(a["y"]), i) for i, a in enumerate(parts)])
    usable = np.concatenate([a["input_usable"] for a in parts])
    weight = np.concatenate([a["weight"] for a in parts]) * np.where(usable, 1.0, unusable_input_weight)
    keep = weight > 0
    return TrainArrays(
        x=np.concatenate([a["x"] for a in parts]),
        feats=np.concatenate([a["feats"] for a in parts]),
        y=np.concatenate([a["y"] for a in parts]),
        record=rec_idx,
        t_s=np.concatenate([a["t_s"] for a in parts]),
        weight=weight.astype(np.float32),
        names=names,
        usable=usable,
    ).subset(keep)
