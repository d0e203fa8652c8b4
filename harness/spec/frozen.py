"""Read-only copies of nested JSON-like values (records cannot change after they are made), and back."""

from __future__ import annotations

from collections import abc
from types import MappingProxyType
from typing import Any

_SCALARS = frozenset((float, int, str, bool, type(None)))


def freeze(value: Any) -> Any:
    """Read-only copies of nested dicts and lists, so a record cannot be changed after it is made."""
    kind = type(value)
    if kind in _SCALARS:  # most of a results file (its samples): no isinstance through typing's ABC machinery
        return value
    if kind is dict or isinstance(value, abc.Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        if all(type(item) in _SCALARS for item in value):  # a list of samples
            return tuple(value)
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, abc.Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value
