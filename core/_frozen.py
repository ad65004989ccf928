"""Building frozen slots dataclasses fast, for the few the engine makes by the hundred thousand.

A frozen dataclass's `__init__` sets every field through `object.__setattr__` (its own
`__setattr__` refuses), which costs about 100 ns a field. `builder(cls)` returns a plain
twin class with the very same `__slots__`: the hot path creates a twin, fills its slots with
ordinary attribute stores and then turns it into a `cls` by assigning `__class__` (allowed
between classes of identical layout). The result *is* a `cls` instance — same type, fields,
equality, hash and repr as `cls(...)`, and frozen from then on.
"""

from __future__ import annotations

from typing import Any

__all__ = ["builder"]


def builder(cls: type) -> type:
    """A mutable twin of the frozen slots class `cls`; raises TypeError if the layouts differ."""
    twin: type = type(f"_{cls.__name__}Builder", (), {"__slots__": tuple(cls.__slots__)})  # type: ignore[attr-defined]
    probe: Any = object.__new__(twin)
    probe.__class__ = cls  # fails at import time, not in the hot path, if the layouts ever differ
    return twin
