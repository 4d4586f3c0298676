"""bpstream.stream.records."""

from ._datadir import find_data_dir
from ._dataset import build_arrays
from ._unlabeled import build_unlabeled_arrays
from ._folds import FOLDS_FILE, load_folds
from ._records import CHANNEL_NAMES, Recording, channel_index, iter_chunks, list_records, read_record
from ._stepped import iter_outputs, record_messages
from ._weights import read_population, write_population

__all__ = [
    "build_unlabeled_arrays",
    "CHANNEL_NAMES",
    "FOLDS_FILE",
    "Recording",
    "build_arrays",
    "channel_index",
    "find_data_dir",
    "iter_chunks",
    "iter_outputs",
    "list_records",
    "load_folds",
    "read_population",
    "read_record",
    "record_messages",
    "write_population",
]
