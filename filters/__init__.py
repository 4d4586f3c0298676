"""bpstream.filters: pure signal processing (numpy, scipy): windowing, quality gates, references.

Never reads the environment, files, the clock or Kafka.
"""

from ._abp import JSQI_BEAT_TO_BEAT, JSQI_LIMITS, Beats, abp_beats, abp_onsets, abp_reference
from ._abp_events import EVENT_THRESHOLDS, AbpEvent, abp_events
from ._abp_measures import AbpMeasures, measure_abp
from ._errors import BpstreamError
from ._cuff import CUFF_LIMITS, CuffReading, cuff_plausibility, cuff_reference
from ._label_crossmodal import CROSSMODAL_THRESHOLDS, ppg_abp_correlation
from ._label_quality import EVENT_HOLD_S, LabelFilter
from ._input_filter import InputFilter
from ._beats import sosfiltfilt_rows
from ._input_quality import DEFAULT_THRESHOLDS, InputQuality, QualityThresholds, input_quality, measure_input
from ._resample import CausalResampler, antialias_sos
from ._stateful import migrate, migrates, register_state, renames, state_class, stateful, tag_of
from ._types import Chunk, Reason, Reference, Role, Window
from ._window import ChunkError, Windower

__all__ = [
    "BpstreamError",
    "JSQI_LIMITS",
    "JSQI_BEAT_TO_BEAT",
    "EVENT_THRESHOLDS",
    "EVENT_HOLD_S",
    "CROSSMODAL_THRESHOLDS",
    "AbpEvent",
    "abp_events",
    "ppg_abp_correlation",
    "LabelFilter",
    "AbpMeasures",
    "measure_abp",
    "CUFF_LIMITS",
    "CuffReading",
    "cuff_plausibility",
    "cuff_reference",
    "Beats",
    "abp_beats",
    "abp_onsets",
    "abp_reference",
    "InputFilter",
    "InputQuality",
    "QualityThresholds",
    "input_quality",
    "CausalResampler",
    "antialias_sos",
    "Chunk",
    "ChunkError",
    "Reason",
    "Reference",
    "Role",
    "Window",
    "Windower",
    "migrates",
    "stateful",
    "migrate",
    "register_state",
    "renames",
    "state_class",
    "tag_of",
    "DEFAULT_THRESHOLDS",
    "measure_input",
    "sosfiltfilt_rows",
]
