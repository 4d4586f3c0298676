"""bpstream.filters: pure signal processing (numpy, scipy): windowing, quality gates, references.

Never reads the environment, files, the clock or Kafka.
"""

from ._abp import JSQI_LIMITS, Beats, abp_beats, abp_onsets, abp_reference
from ._resample import CausalResampler
from ._types import Chunk, Reason, Reference, Role, Window
from ._window import ChunkError, Windower

__all__ = [
    "JSQI_LIMITS",
    "Beats",
    "abp_beats",
    "abp_onsets",
    "abp_reference",
    "CausalResampler",
    "Chunk",
    "ChunkError",
    "Reason",
    "Reference",
    "Role",
    "Window",
    "Windower",
]
