"""The one frozen settings object: the only reader of the environment in bpstream."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    data_dir: str | None = None  # BPSTREAM_DATA: folder of WFDB records for demo/validate defaults

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(data_dir=env.get("BPSTREAM_DATA") or None)
