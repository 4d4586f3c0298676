"""bpstream.stream.config."""

from ._settings import Settings, SettingsError

__all__ = [
    "Settings",
    "SettingsError",
]
