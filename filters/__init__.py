"""bpstream.filters: pure signal processing (numpy, scipy): windowing, quality gates, references.

Never reads the environment, files, the clock or Kafka.
"""

from ._abp import JSQI_LIMITS, Beats, abp_beats, abp_onsets, abp_reference
from ._input_filter import InputFilter
from ._input_quality import InputQuality, QualityThresholds, input_quality
from ._resample import CausalResampler
from ._types import Chunk, Reason, Reference, Role, Window
from ._window import ChunkError, Windower

__all__ = [
    "JSQI_LIMITS",
    "Beats",
    "abp_beats",
    "abp_onsets",
    "abp_reference",
    "InputFilter",
    "InputQuality",
    "QualityThresholds",
    "input_quality",
    "CausalResampler",
    "Chunk",
    "ChunkError",
    "Reason",
    "Reference",
    "Role",
    "Window",
    "Windower",
]
