"""Pure domain logic: models, parsing, positions, prices, detectors. No I/O.

The engine's hot modules may be compiled with mypyc (`core._native`): installed first,
so a stale binary never shadows an edited source.
"""

from core import _native

_native.install()
