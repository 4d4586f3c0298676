"""Per-patient streaming windower: chunks of any length and rate in, fixed windows out."""

from __future__ import annotations

import math

from ._stateful import stateful

import numpy as np

from ._errors import BpstreamError
from ._resample import CausalResampler
from ._types import Chunk, Window

__all__ = ["Windower", "ChunkError"]

REQUIRED_ROLES = ("ecg", "ppg")
OPTIONAL_ROLES = ("abp",)


class ChunkError(BpstreamError, ValueError):
    """A chunk cannot be windowed (missing channel, inconsistent lengths, bad rate)."""


@stateful("filters.windower", version=1)
class Windower:
    """Cut one patient's stream into ``window_s`` windows every ``hop_s`` at ``fs_hz``.

    Resampling is causal and chunk-invariant: the same stream cut differently gives identical
    windows. A time gap (or overlap) larger than ``max_jitter_s`` between the end of the last chunk
    and the start of the next one, or a change of channels or rates, starts a new segment: the
    buffer is dropped and the next window ends ``window_s`` after the new segment starts.
    """

    def __init__(self, window_s: float = 10.0, hop_s: float = 2.0, fs_hz: float = 125.0, max_jitter_s: float = 0.1):
        self.window_s = window_s
        self.hop_s = hop_s
        self.fs_hz = fs_hz
        self.max_jitter_s = max_jitter_s
        self.segment_: int = -1
        self.t0_s_: float = 0.0
        self.t_next_s_: float | None = None
        self.layout_: tuple[tuple[str, float], ...] = ()
        self.resamplers_: dict[str, CausalResampler] = {}
        self.buffers_: dict[str, np.ndarray] = {}
        self.count_: int = 0  # output samples produced per channel in this segment (min over channels)
        self.buf_start_: int = 0  # segment sample index of buffers_[*][0]

    @property
    def window_n(self) -> int:
        return int(round(self.window_s * self.fs_hz))

    @property
    def hop_n(self) -> int:
        return int(round(self.hop_s * self.fs_hz))

    def check(self, chunk: Chunk) -> None:
        """Raise ChunkError if ``update`` would refuse ``chunk`` (changes nothing)."""
        self.check_chunk(chunk)

    @staticmethod
    def check_chunk(chunk: Chunk) -> tuple[tuple[str, float], ...]:
        """Raise ChunkError if any windower would refuse ``chunk`` (the check needs no state); else its
        channel layout."""
        for role in REQUIRED_ROLES:
            if role not in chunk.signals:
                raise ChunkError(f"chunk has no {role} channel")
        roles = [r for r in (*REQUIRED_ROLES, *OPTIONAL_ROLES) if r in chunk.signals]
        durations, layout = [], []
        for role in roles:
            fs_hz = float(chunk.fs_hz.get(role, 0.0))
            if not math.isfinite(fs_hz) or fs_hz <= 0:
                raise ChunkError(f"{role} has no finite positive sampling rate")
            x = chunk.signals[role]
            n = x.shape if isinstance(x, np.ndarray) else np.shape(x)
            if len(n) != 1:
                raise ChunkError(f"{role} samples must be one-dimensional")
            durations.append(n[0] / fs_hz)
            layout.append((role, fs_hz))
        if max(durations) - min(durations) > 1.5 / min(fs for _, fs in layout):
            raise ChunkError("channels of one chunk cover different durations")
        if not np.isfinite(chunk.t_start_s):
            raise ChunkError("chunk start time is not finite")
        return tuple(layout)

    def _reset(self, chunk: Chunk, layout: tuple[tuple[str, float], ...]) -> None:
        self.segment_ += 1
        self.t0_s_ = float(chunk.t_start_s)
        self.layout_ = layout
        self.resamplers_ = {r: CausalResampler(fs_hz, self.fs_hz) for r, fs_hz in layout}
        self.buffers_ = {r: np.empty(0, dtype=np.float32) for r, _ in layout}
        self.count_ = 0
        self.buf_start_ = 0

    def update(self, chunk: Chunk) -> list[Window]:
        """Feed one chunk; return the windows it completes (possibly none)."""
        layout = self.check_chunk(chunk)
        gap = None if self.t_next_s_ is None else abs(chunk.t_start_s - self.t_next_s_)
        if layout != self.layout_ or gap is None or gap > self.max_jitter_s:
            self._reset(chunk, layout)
        ecg_fs = dict(layout)["ecg"]
        n_in_before = self.resamplers_["ecg"].n_in_
        self.t_next_s_ = self.t0_s_ + (n_in_before + len(chunk.signals["ecg"])) / ecg_fs
        for role, _ in layout:
            out = self.resamplers_[role].update(np.asarray(chunk.signals[role], dtype=np.float64))
            self.buffers_[role] = np.concatenate((self.buffers_[role], out.astype(np.float32)))
        count = min(self.buf_start_ + len(b) for b in self.buffers_.values())
        windows = self._emit(self.count_, count)
        self.count_ = count
        # keep only what a future window can still need
        keep_from = max(self.buf_start_, count - self.window_n + 1)
        for role in self.buffers_:
            self.buffers_[role] = self.buffers_[role][keep_from - self.buf_start_ :]
        self.buf_start_ = keep_from
        return windows

    def _emit(self, before: int, now: int) -> list[Window]:
        wn, hn = self.window_n, self.hop_n
        first_end = wn if before < wn else wn + (-(-(before + 1 - wn) // hn)) * hn
        windows = []
        for end in range(first_end, now + 1, hn):
            a = end - wn - self.buf_start_
            sl = {r: self.buffers_[r][a : a + wn].copy() for r in self.buffers_}
            windows.append(
                Window(
                    t_start_s=self.t0_s_ + (end - wn) / self.fs_hz,
                    t_end_s=self.t0_s_ + end / self.fs_hz,
                    fs_hz=self.fs_hz,
                    ecg=sl["ecg"],
                    ppg=sl["ppg"],
                    abp=sl.get("abp"),
                    segment=self.segment_,
                )
            )
        return windows
