"""bpstream.filters: pure signal processing (numpy, scipy): windowing, quality gates, references.

Never reads the environment, files, the clock or Kafka.
"""

from ._resample import CausalResampler
from ._types import Chunk, Reason, Reference, Role, Window
from ._window import ChunkError, Windower

__all__ = [
    "CausalResampler",
    "Chunk",
    "ChunkError",
    "Reason",
    "Reference",
    "Role",
    "Window",
    "Windower",
]
