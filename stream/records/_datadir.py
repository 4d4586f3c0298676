"""Where the records are: a command-line path, ``$BPSTREAM_DATA``, or ``../shared/data`` beside the checkout."""

from __future__ import annotations

from pathlib import Path

from bpstream.stream.core import DataNotFoundError
from bpstream.stream.config import Settings

__all__ = ["find_data_dir", "DOWNLOAD_HINT"]

DOWNLOAD_HINT = (
    "No waveform data found. Pass --data DIR or set BPSTREAM_DATA to a folder of PhysioNet WFDB records with\n"
    "ECG, PPG (PLETH) and ABP, for example the PhysioNet/CinC Challenge 2015 training set:\n"
    "  python -c \"import wfdb; wfdb.dl_database('challenge-2015/1.0.0/training', 'physionet2015', "
    "records=['a555l','f362s','v370s','b330s'])\"\n"
    "  bpstream demo --data physionet2015"
)


def find_data_dir(cli_value: str | None, settings: Settings) -> Path:
    candidates = [cli_value, settings.data_dir]
    if not cli_value and not settings.data_dir:
        here = Path(__file__).resolve()  # stream/records/_datadir.py
        candidates += [str(p / "shared" / "data" / "physionet2015") for p in here.parents[2:4]]
        candidates += [str(Path.cwd().parent / "shared" / "data" / "physionet2015")]
    for c in candidates:
        if c and Path(c).is_dir() and (any(Path(c).glob("*.hea")) or any(Path(c).glob("*.vital"))):
            return Path(c)
    raise DataNotFoundError(DOWNLOAD_HINT)
