"""What the step is configured with (``PipelineConfig``) and what it keeps per patient (``PatientState``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bpstream.filters import Reference, Windower, stateful
from bpstream.models import Estimator

from ._gates import Gates, LabelMode
from ._schedule import Schedule
from ._suggest import SuggestConfig

__all__ = ["PatientState", "PipelineConfig"]


@dataclass(frozen=True)
class PipelineConfig:
    window_s: float = 10.0
    hop_s: float = 2.0
    fs_hz: float = 125.0
    methods: tuple[str, ...] = ("carry_forward",)  # the first is the one a service publishes
    arterial_schedule: Schedule = Schedule.off()
    pair_tolerance_s: float = 30.0  # a reading pairs with a usable window ending at most this long after it
    future_horizon_s: float = 600.0  # a reading further ahead of the stream is rejected
    questionable_after_s: float = 4 * 3600.0  # calibration older than this -> questionable
    max_seen_commands: int = 256
    max_waiting_readings: int = 32  # readings waiting for their window at once; more are rejected cuff_queue_full
    label_filter: LabelMode = LabelMode.FULL  # which arterial label gate (LabelMode)
    late_pairing_windows: int = 3  # estimator snapshot period: a reading arriving up to this many windows
    # after its window learns exactly as on time (up to twice that, depending on the phase; see _journal)
    reorder_s: float = 10.0  # stream time held behind a missing seq before the gap is given up (_order)
    reorder_max_chunks: int = 64  # ... or this many chunks held
    seq_jump_max: int = 1000  # a seq further ahead is dead-lettered msg_seq_gap ...
    seq_confirm: int = 3  # ... unless this many consecutive seqs confirm the jump
    suggest: SuggestConfig = SuggestConfig()  # when calibration_suggested is raised (see _suggest)
    keep_windows: bool = False  # WindowResult.window holds the window (offline readers of the step)


@stateful("patient", version=1)  # plain-data fields need nothing more; see _state_codec
@dataclass
class PatientState:
    windower: Windower
    estimators: dict[str, Estimator]
    gates: Gates
    last_seq: int = -1  # last applied chunk seq of this episode (-1: none yet)
    out_seq: int = 0  # estimate seq: never goes back for a patient id (kept across reset and discharge)
    seen_commands: list[str] = field(default_factory=list)
    t_origin_s: float | None = None
    next_due_s: float | None = None  # next arterial calibration, seconds after t_origin_s
    calibrations: int = 0
    last_calibration_t_s: float | None = None
    last_t_end_s: float | None = None
    pending: list[tuple[str, Reference]] = field(default_factory=list)  # (command id, label) awaiting their window
    # chunk order (_order): held chunks [seq, t_start_s, fs_hz, signals], given-up seq ranges, a far-ahead run
    held: list = field(default_factory=list)
    late_ranges: list = field(default_factory=list)
    seq_run: list | None = None
    recent: list = field(default_factory=list)  # [seq, t_start_s] of the last applied chunks
    episode_prev: list | None = None  # [last seq, recent] of the episode a reset/discharge closed
    discharged: bool = False
    # late pairing (_journal): recent windows, estimator snapshots, the newest window dropped from them
    n_windows: int = 0
    journal: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    journal_floor_s: float | None = None
    # calibration_suggested (_suggest): run of windows off the calibration, reasons sent, for which calibration
    suggest_run: int = 0
    suggest_sent: list = field(default_factory=list)
    suggest_calibrations: int = 0
