"""The five detectors, one module each, all built on `core.detectors.base.Detector`."""

from core.detectors.bad_route import BadRoute
from core.detectors.base import Detector, Leg, LegRole, ShardContext
from core.detectors.bhd import BagHolderDrawdown
from core.detectors.idle_yield import IdleYield
from core.detectors.rug import RugPull
from core.detectors.s2e import SoldTooEarly

__all__ = [
    "DETECTORS",
    "Detector",
    "Leg",
    "LegRole",
    "ShardContext",
    "SoldTooEarly",
    "BagHolderDrawdown",
    "BadRoute",
    "IdleYield",
    "RugPull",
]

# The order a shard runs them in (their outputs are put in canonical order per slot anyway).
DETECTORS: tuple[type[Detector], ...] = (SoldTooEarly, BagHolderDrawdown, BadRoute, IdleYield, RugPull)
