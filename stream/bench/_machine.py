"""What every bench report records: the machine it ran on, and where the records are."""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

__all__ = ["machine", "data_dir"]


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def data_dir(args: argparse.Namespace) -> Path:
    """``--data``, else ``$BPSTREAM_DATA``, else ``../shared/data/physionet2015`` (``find_data_dir``)."""
    from bpstream.stream.config import Settings
    from bpstream.stream.records import find_data_dir

    return find_data_dir(getattr(args, "data", None), Settings.from_env())
