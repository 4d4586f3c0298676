"""Stable names for what a patient state holds: tags, versions and migrations (no imports by path).

Every class whose instances live in a per-patient state declares a **tag** (a short name that never
changes when the code moves: ``"filters.windower"``, ``"est.ttt"``) and a **version** (an integer,
bumped when the meaning or layout of its attributes changes). The state codec
(``bpstream.stream.core._state_codec``) writes the tag and version beside the attributes and looks the
class up here on read, so moving or renaming a module or a class never loses a patient.

Registering a class is one line::

    @stateful("est.my_model", version=1)
    class MyModel(Estimator): ...

(an ``Estimator`` subclass may instead just set ``state_tag = "est.my_model"``; it registers itself).
Changing the attributes of a registered class: bump ``version`` and register a migration from the
previous one, a function on the attribute dict::

    @migrates("est.my_model", from_version=1)
    def _add_count(values: dict) -> dict:
        return {**values, "count_": 0}

This module is the bottom of the layering (filters import nothing from bpstream): models and stream
register here too.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["stateful", "register_state", "migrates", "renames", "state_class", "tag_of", "migrate", "STATE_CLASSES"]

STATE_CLASSES: dict[str, type] = {}  # tag -> class
_MIGRATIONS: dict[tuple[str, int], Callable[[dict], dict]] = {}  # (tag, from version) -> upgrade


def register_state(cls: type, tag: str, version: int = 1) -> type:
    if not tag or not isinstance(version, int) or version < 1:
        raise ValueError("a state tag is a non-empty string and its version an integer >= 1")
    known = STATE_CLASSES.get(tag)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"state tag {tag!r} is taken by {known.__qualname__}")  # (the same class again: reloaded)
    type.__setattr__(cls, "state_tag", tag)  # type.__setattr__: works on Enum classes too
    type.__setattr__(cls, "state_version", version)
    STATE_CLASSES[tag] = cls
    return cls


def stateful(tag: str, version: int = 1) -> Callable[[type], type]:
    """Class decorator: instances of the class may live in a patient state under ``tag``."""
    return lambda cls: register_state(cls, tag, version)


def migrates(tag: str, from_version: int) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:
    """Register ``fn(values) -> values`` upgrading the attributes of ``tag`` from ``from_version`` to the next."""
    def deco(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        _MIGRATIONS[(tag, from_version)] = fn
        return fn

    return deco


def renames(tag: str, from_version: int, old: str, new: str) -> None:
    """Register the migration of ``tag`` from ``from_version`` that renames attribute ``old`` to ``new``."""
    def rename(values: dict) -> dict:
        out = {k: v for k, v in values.items() if k != old}
        if old in values:
            out[new] = values[old]
        return out

    _MIGRATIONS[(tag, from_version)] = rename


def tag_of(obj: Any) -> tuple[str, int] | None:
    """The (tag, version) the object's own class declared, else None (inherited tags do not count)."""
    cls = obj if isinstance(obj, type) else type(obj)
    tag = cls.__dict__.get("state_tag")
    if tag is None or STATE_CLASSES.get(tag) is not cls:
        return None
    return tag, cls.__dict__.get("state_version", 1)


def state_class(tag: str) -> type | None:
    return STATE_CLASSES.get(tag)


def migrate(tag: str, version: int, values: dict) -> dict:
    """``values`` written at ``version`` -> the current version of ``tag`` (KeyError: no path)."""
    cls = STATE_CLASSES[tag]
    current = cls.__dict__.get("state_version", 1)
    if version > current:
        raise KeyError(f"{tag} v{version} is newer than this code (v{current})")
    while version < current:
        values = _MIGRATIONS[(tag, version)](values)
        version += 1
    return values
