"""``bpstream quality PATH... [--records A,B] [--hop-s S] [--json FILE]``: what the filters reject.

Every record is replayed through the per-patient step (the record loop ``validate`` runs: reader ->
chunks -> windower -> the step's input and label gates, in order), and the command prints, over the
whole data set:

- the fraction of windows rejected per channel (ECG, PPG, either) and per reason;
- the fraction of arterial labels rejected, per reason;
- the consistency of the reference: the SD of the SBP change between adjacent windows of the same
  record (``hop_s`` apart, default 10 s, so adjacent windows share no samples), before label
  filtering (median SBP of every beat the arterial beat detector finds, no quality gate), after
  label filtering (usable labels only), and after label and input filtering (what is learned from).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpstream.stream.core import BpstreamError, RecordError

__all__ = ["add_parser", "run", "quality_report", "RecordQuality"]

WINDOW_S, FS_HZ = 10.0, 125.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quality", help="fraction of windows and labels the filters reject, and reference consistency")
    p.add_argument("paths", nargs="+", help="WFDB record files or folders")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--hop-s", type=float, default=10.0, help="hop between windows (default 10 s: adjacent windows do not overlap)")
    p.add_argument("--json", dest="json_path", help="write the results document here")
    p.set_defaults(func=run)


@dataclass
class RecordQuality:
    """Per-record tallies (plain numbers, so records can be summed)."""

    name: str
    windows: int = 0
    ecg_rejected: int = 0
    ppg_rejected: int = 0
    input_rejected: int = 0
    input_reasons: Counter = field(default_factory=Counter)
    labels: int = 0  # windows with an arterial channel
    label_rejected: int = 0
    label_reasons: Counter = field(default_factory=Counter)
    # SBP per window (NaN where none), in stream order, with the segment of each window
    sbp_before: list = field(default_factory=list)
    sbp_after_label: list = field(default_factory=list)
    sbp_after_both: list = field(default_factory=list)
    segments: list = field(default_factory=list)


def _naive_sbp(abp: np.ndarray | None, fs_hz: float) -> float:
    from bpstream.filters import abp_beats

    if abp is None or not np.isfinite(abp).all():
        return float("nan")
    beats = abp_beats(np.asarray(abp, dtype=np.float64), fs_hz)
    return float(np.median(beats.sbp_mmhg)) if len(beats) else float("nan")


def record_quality(path: Path, hop_s: float = 10.0) -> RecordQuality:
    """Replay one record through the per-patient step (``iter_outputs``, as ``validate`` does) and tally
    its gates' verdicts."""
    from bpstream.stream.core import Pipeline, PipelineConfig, WindowResult
    from bpstream.stream.records import iter_outputs, read_record

    rec = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    out = RecordQuality(name=rec.name)
    config = PipelineConfig(window_s=WINDOW_S, hop_s=hop_s, fs_hz=FS_HZ, methods=("carry_forward",), keep_windows=True)
    for r in iter_outputs(Pipeline(config), rec):
        if not isinstance(r, WindowResult):
            continue
        out.windows += 1
        out.ecg_rejected += not r.ecg_usable
        out.ppg_rejected += not r.ppg_usable
        out.input_rejected += not r.input_usable
        out.input_reasons.update(q.value for q in set(r.input_reasons))
        out.segments.append(r.segment)
        ref = r.reference
        if ref is None:
            for lst in (out.sbp_before, out.sbp_after_label, out.sbp_after_both):
                lst.append(float("nan"))
            continue
        out.labels += 1
        if not ref.usable:
            out.label_rejected += 1
            out.label_reasons.update(q.value for q in set(ref.reasons))
        sbp = ref.sbp_mmhg if (ref.usable and ref.sbp_mmhg is not None) else None
        out.sbp_before.append(_naive_sbp(r.window.abp, r.window.fs_hz))
        out.sbp_after_label.append(float("nan") if sbp is None else float(sbp))
        out.sbp_after_both.append(float("nan") if sbp is None or not r.input_usable else float(sbp))
    return out


def _adjacent_diffs(values: list, segments: list) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(segments)
    if v.size < 2:
        return np.zeros(0)
    d = v[1:] - v[:-1]
    ok = np.isfinite(d) & (s[1:] == s[:-1])
    return d[ok]


def _consistency(diffs: np.ndarray) -> dict:
    if diffs.size == 0:
        return {"pairs": 0, "sd_dsbp_mmhg": None, "median_abs_dsbp_mmhg": None, "frac_abs_dsbp_over_10": None}
    return {
        "pairs": int(diffs.size),
        "sd_dsbp_mmhg": round(float(np.std(diffs, ddof=1)) if diffs.size > 1 else 0.0, 2),
        "median_abs_dsbp_mmhg": round(float(np.median(np.abs(diffs))), 2),
        "frac_abs_dsbp_over_10": round(float(np.mean(np.abs(diffs) > 10.0)), 4),
    }


def quality_report(records: list[RecordQuality], skipped: dict[str, str], hop_s: float) -> dict:
    n = sum(r.windows for r in records)
    nl = sum(r.labels for r in records)
    in_reasons: Counter = sum((r.input_reasons for r in records), Counter())
    lab_reasons: Counter = sum((r.label_reasons for r in records), Counter())
    frac = (lambda k, tot: round(k / tot, 4) if tot else None)
    diffs = {
        key: np.concatenate([_adjacent_diffs(getattr(r, attr), r.segments) for r in records] or [np.zeros(0)])
        for key, attr in (("before", "sbp_before"), ("after_label", "sbp_after_label"), ("after_label_and_input", "sbp_after_both"))
    }
    return {
        "records": len(records),
        "skipped": skipped,
        "windows": n,
        "window_s": WINDOW_S,
        "hop_s": hop_s,
        "fs_hz": FS_HZ,
        "input": {
            "rejected_fraction": {
                "ecg": frac(sum(r.ecg_rejected for r in records), n),
                "ppg": frac(sum(r.ppg_rejected for r in records), n),
                "any": frac(sum(r.input_rejected for r in records), n),
            },
            "reasons": {k: frac(v, n) for k, v in in_reasons.most_common()},
        },
        "label": {
            "windows_with_abp": nl,
            "rejected_fraction": frac(sum(r.label_rejected for r in records), nl),
            "reasons": {k: frac(v, nl) for k, v in lab_reasons.most_common()},
        },
        "reference_consistency": {k: _consistency(v) for k, v in diffs.items()},
    }


def format_report(doc: dict) -> str:
    lines = [
        f"bpstream quality: {doc['records']} records, {doc['windows']} windows "
        f"({doc['window_s']:g} s every {doc['hop_s']:g} s at {doc['fs_hz']:g} Hz)"
        + (f", {len(doc['skipped'])} skipped" if doc["skipped"] else ""),
        "",
        "input windows rejected: " + "  ".join(f"{k.upper()} {100 * (v or 0):.1f} %" for k, v in doc["input"]["rejected_fraction"].items()),
    ]
    lines += [f"  {k:<24} {100 * v:6.1f} %" for k, v in doc["input"]["reasons"].items()]
    lab = doc["label"]
    lines += ["", f"arterial labels rejected: {100 * (lab['rejected_fraction'] or 0):.1f} % of {lab['windows_with_abp']} windows with ABP"]
    lines += [f"  {k:<24} {100 * v:6.1f} %" for k, v in lab["reasons"].items()]
    lines += ["", "reference consistency, SBP change between adjacent windows of a record:",
              f"  {'':<28}{'pairs':>7}{'SD':>9}{'median |d|':>12}{'|d| > 10':>10}"]
    names = {"before": "before label filtering", "after_label": "after label filtering", "after_label_and_input": "after label + input filters"}
    for k, c in doc["reference_consistency"].items():
        if c["pairs"]:
            lines.append(f"  {names[k]:<28}{c['pairs']:>7}{c['sd_dsbp_mmhg']:>9.2f}{c['median_abs_dsbp_mmhg']:>12.2f}{100 * c['frac_abs_dsbp_over_10']:>9.1f}%")
        else:
            lines.append(f"  {names[k]:<28}{0:>7}{'-':>9}{'-':>12}{'-':>10}")
    lines.append("  (SD and median in mmHg)")
    for name, why in doc["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from bpstream.filters import ChunkError

    from bpstream.stream.records import list_records
    from bpstream.stream.evaluation import iter_with_progress

    if not args.hop_s > 0:
        raise BpstreamError("--hop-s must be positive")
    paths = list_records(args.paths, args.records.split(",") if args.records else None)
    if not paths:
        raise BpstreamError("no WFDB records found in " + ", ".join(args.paths))
    results, skipped = [], {}
    for path in iter_with_progress(paths, len(paths)):
        try:
            results.append(record_quality(path, args.hop_s))
        except (RecordError, ChunkError) as exc:  # a bad record is reported, the others still count
            skipped[path.name] = str(exc)
    if not results:
        raise BpstreamError("no usable record: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    doc = quality_report(results, skipped, args.hop_s)
    print(format_report(doc))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(doc, indent=2) + "\n")
    return 0
