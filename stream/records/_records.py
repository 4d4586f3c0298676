"""Reading recordings into per-role signals and monitor-like chunks: WFDB records (PhysioNet) and
VitalDB ``.vital`` files.

WFDB: single-segment and multi-segment records, any sampling rate. VitalDB: the waveform tracks of a
``.vital`` file (``SNUADC/ECG_II``, ``SNUADC/PLETH``, ``SNUADC/ART``, ...; each track at its own rate),
read with the ``vitaldb`` package. Channels (tracks) are mapped by name to roles (ecg, ppg, abp) with
one table; a device prefix (``SNUADC/``) is dropped and ``_`` reads as a space. A recording lacking a
role the caller needs raises MissingChannelError naming the recording and the channels it has.

A record is named by its base path without suffix (``dir/a555l`` for ``a555l.hea``, ``dir/0001`` for
``0001.vital``); ``read_record`` finds which format is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import wfdb

from bpstream.filters import Chunk

from bpstream.stream.core import MissingChannelError, RecordError

__all__ = ["Recording", "Segment", "read_record", "iter_chunks", "list_records", "role_of", "VITAL_SUFFIX"]

# Names seen on bedside monitors and in PhysioNet databases, in order of preference per role.
CHANNEL_NAMES: Mapping[str, tuple[str, ...]] = {
    "ecg": ("II", "ECG II", "ECG", "MLII", "ECG2", "ECGII", "LEAD II", "I", "V", "III", "AVR", "AVF", "AVL", "MLIII", "V5", "V1"),
    "ppg": ("PLETH", "PPG", "PLET", "SPO2 WAVE", "PULS", "PLETHYSMOGRAM"),
    "abp": ("ABP", "ART", "ART1", "AOBP", "ARTERIAL", "IBP1", "P1", "AO"),
}
_UNIT_SCALE = {"ecg": {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}, "abp": {"mmhg": 1.0, "kpa": 7.50062}}
VITAL_SUFFIX = ".vital"
_VITAL_WAVE = 1  # the track type of a waveform in a .vital file (2: numeric, 5: string)


def _channel_key(channel_name: str) -> str:
    """A channel or track name as CHANNEL_NAMES spells it: ``SNUADC/ECG_II`` -> ``ECG II``."""
    return channel_name.strip().upper().rsplit("/", 1)[-1].replace("_", " ").strip()


def role_of(channel_name: str) -> str | None:
    """The role (``"ecg"``, ``"ppg"``, ``"abp"``) of a channel name, or None."""
    name = _channel_key(channel_name)
    for role, names in CHANNEL_NAMES.items():
        if name in names:
            return role
    return None


@dataclass(frozen=True)
class Segment:
    """A contiguous stretch of a record. ``t_start_s`` is seconds from the record start."""

    t_start_s: float
    fs_hz: Mapping[str, float]
    signals: Mapping[str, np.ndarray]

    @property
    def duration_s(self) -> float:
        role = next(iter(self.signals))
        return len(self.signals[role]) / self.fs_hz[role]


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path
    channels: tuple[str, ...]
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        if not self.segments:
            return 0.0
        last = self.segments[-1]
        return last.t_start_s + last.duration_s

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.segments[0].signals) if self.segments else ()


def _record_base(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix in (".hea", ".dat", ".mat", VITAL_SUFFIX):
        p = p.with_suffix("")
    return p


def _vital_path(base: Path) -> Path:
    return base.parent / (base.name + VITAL_SUFFIX)


def _scaled(role: str, x: np.ndarray, unit: str | None) -> np.ndarray:
    """Samples in bpstream's units (ECG mV, ABP mmHg) from the channel's unit."""
    return np.asarray(x, dtype=np.float64) * _UNIT_SCALE.get(role, {}).get((unit or "").strip().lower(), 1.0)


def channel_index(names: Sequence[str], role: str) -> int | None:
    upper = [_channel_key(n) for n in names]
    for candidate in CHANNEL_NAMES[role]:
        if candidate in upper:
            return upper.index(candidate)
    return None


def _segment_from(rec: wfdb.Record, roles: Sequence[str], t_start_s: float) -> tuple[Segment, dict[str, int]]:
    fs_hz = float(rec.fs)
    signals: dict[str, np.ndarray] = {}
    picked: dict[str, int] = {}
    for role in roles:
        idx = channel_index(rec.sig_name or [], role)
        if idx is None:
            continue
        signals[role] = _scaled(role, rec.p_signal[:, idx], rec.units[idx])
        picked[role] = idx
    return Segment(t_start_s=t_start_s, fs_hz={r: fs_hz for r in signals}, signals=signals), picked


def read_record(
    path: str | Path,
    roles: Sequence[str] = ("ecg", "ppg", "abp"),
    required: Sequence[str] = ("ecg", "ppg"),
) -> Recording:
    """Read a WFDB record (``path`` with or without ``.hea``) into a Recording.

    Multi-segment records become several Segments with their start times; empty (``~``) segments
    are gaps. A ``.vital`` file (``path`` with or without the suffix) is read by ``read_vital``.
    Raises MissingChannelError when a ``required`` role is absent in every segment.
    """
    import wfdb  # here, not at import: commands that only talk to Kafka (tail, board) run without it

    base = _record_base(path)
    if _vital_path(base).is_file() and not base.with_name(base.name + ".hea").is_file():
        return read_vital(_vital_path(base), roles, required)
    try:
        header = wfdb.rdheader(str(base))
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise RecordError(f"cannot read record header {base}: {exc}") from exc
    segments: list[Segment] = []
    channels: list[str] = []
    if isinstance(header, wfdb.MultiRecord):
        t = 0.0
        fs_hz = float(header.fs)
        for seg_name, seg_len in zip(header.seg_name, header.seg_len):
            if seg_name != "~" and int(seg_len) > 0:
                rec = wfdb.rdrecord(str(base.parent / seg_name))
                channels.extend(n for n in rec.sig_name if n not in channels)
                seg, _ = _segment_from(rec, roles, t)
                if seg.signals:
                    segments.append(seg)
            t += int(seg_len) / fs_hz
    else:
        rec = wfdb.rdrecord(str(base))
        channels = list(rec.sig_name or [])
        seg, _ = _segment_from(rec, roles, 0.0)
        if seg.signals:
            segments.append(seg)
    present = set().union(*(s.signals for s in segments)) if segments else set()
    missing = tuple(r for r in required if r not in present)
    if missing:
        raise MissingChannelError(base.name, missing, tuple(channels))
    # keep only segments that carry every required role
    segments = [s for s in segments if all(r in s.signals for r in required)]
    return Recording(name=base.name, path=base, channels=tuple(channels), segments=tuple(segments))


def read_vital(path: str | Path, roles: Sequence[str] = ("ecg", "ppg", "abp"),
               required: Sequence[str] = ("ecg", "ppg")) -> Recording:
    """Read a VitalDB ``.vital`` file's waveform tracks into a one-segment Recording.

    Each role takes the first waveform track whose name maps to it (CHANNEL_NAMES' order of
    preference), at that track's own rate, from the file's start (``vitaldb.VitalFile.to_numpy``:
    samples where the track has no record are NaN, as missing WFDB samples are). Raises
    MissingChannelError, like a WFDB record, when a ``required`` role has no track.
    """
    path = Path(path)
    try:
        import vitaldb
    except ImportError as exc:  # pragma: no cover - vitaldb is a dependency
        raise RecordError("reading .vital files needs the vitaldb package (pip install vitaldb)") from exc
    try:
        vf = vitaldb.VitalFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError, struct_error) as exc:
        raise RecordError(f"cannot read VitalDB file {path}: {type(exc).__name__}") from exc
    waves = [name for name, trk in vf.trks.items() if trk.type == _VITAL_WAVE and trk.srate and trk.recs]
    name = path.name[: -len(VITAL_SUFFIX)] if path.name.endswith(VITAL_SUFFIX) else path.name
    signals: dict[str, np.ndarray] = {}
    fs_hz: dict[str, float] = {}
    for role in roles:
        idx = channel_index(waves, role)
        if idx is None:
            continue
        trk = vf.trks[waves[idx]]
        fs_hz[role] = float(trk.srate)
        signals[role] = _scaled(role, vf.to_numpy([waves[idx]], 1.0 / fs_hz[role])[:, 0], trk.unit)
    missing = tuple(r for r in required if r not in signals)
    if missing:
        raise MissingChannelError(name, missing, tuple(waves))
    segments = (Segment(t_start_s=0.0, fs_hz=fs_hz, signals=signals),) if signals else ()
    return Recording(name=name, path=path, channels=tuple(waves), segments=segments)


def iter_chunks(recording: Recording, chunk_s: float = 2.0, t0_s: float = 0.0) -> Iterator[Chunk]:
    """Cut a recording into chunks of ``chunk_s`` seconds (the last one of a segment may be shorter)."""
    if chunk_s <= 0:
        raise ValueError("chunk_s must be positive")
    for seg in recording.segments:
        roles = list(seg.signals)
        n_chunks = int(np.ceil(seg.duration_s / chunk_s - 1e-9))
        for i in range(n_chunks):
            sigs = {}
            for role in roles:
                fs_hz = seg.fs_hz[role]
                a, b = int(round(i * chunk_s * fs_hz)), int(round((i + 1) * chunk_s * fs_hz))
                sigs[role] = seg.signals[role][a:b]
            if min(len(v) for v in sigs.values()) == 0:
                continue
            yield Chunk(t_start_s=t0_s + seg.t_start_s + i * chunk_s, fs_hz=dict(seg.fs_hz), signals=sigs)


def list_records(paths: Iterable[str | Path], names: Sequence[str] | None = None) -> list[Path]:
    """Expand files and folders (WFDB headers, ``.vital`` files) into record base paths (each folder's
    sorted); ``names`` keeps only those records.

    Segment headers referenced by a multi-segment master header in the same folder are not listed
    on their own.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            heads = sorted(p.glob("*.hea"))
            segment_names: set[str] = set()
            for h in heads:
                first = h.read_text(errors="replace").split("\n", 1)[0].split()
                if first and "/" in first[0]:  # "name/nseg": a multi-segment master header
                    for line in h.read_text(errors="replace").splitlines()[1:]:
                        if line and not line.startswith("#"):
                            segment_names.add(line.split()[0])
            bases = [h.with_suffix("") for h in heads if h.stem not in segment_names]
            bases += [v.with_suffix("") for v in p.glob("*" + VITAL_SUFFIX) if not v.with_suffix(".hea").exists()]
            out.extend(sorted(bases))
        else:
            out.append(_record_base(p))
    if names:
        wanted = set(names)
        out = [p for p in out if p.name in wanted]
        found = {p.name for p in out}
        lost = sorted(wanted - found)
        if lost:
            raise RecordError(f"records not found: {', '.join(lost)}")
    return out
