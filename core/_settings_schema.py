"""Walking the settings type tree, and turning pydantic errors into `ConfigProblem`s.

Shared by the layer readers (which need to know what a key or env name addresses) and by
`load_settings` (which needs to know whether a bad value is secret before echoing it).
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel, SecretStr

from core._redact import mask_url
from core.errors import ConfigProblem

__all__ = [
    "Loc",
    "unwrap",
    "is_model",
    "is_mapping",
    "is_sequence",
    "fields_of",
    "child_of",
    "annotation_at",
    "contains_secret",
    "suggest",
    "dotted",
    "validation_problems",
]

Loc = tuple[str | int, ...]


def unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to X."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return unwrap(members[0])
    return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def is_mapping(annotation: Any) -> bool:
    return annotation is dict or get_origin(annotation) in (dict, Mapping)


def is_sequence(annotation: Any) -> bool:
    return annotation in (list, tuple, set) or get_origin(annotation) in (list, tuple, set, frozenset, Sequence)


def fields_of(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Accepted input key -> (canonical input key, annotation); aliases and names both accepted."""
    keys: dict[str, tuple[str, Any]] = {}
    for name, info in model.model_fields.items():
        canonical = info.alias or name
        keys[name] = (canonical, info.annotation)
        keys[canonical] = (canonical, info.annotation)
    return keys


def child_of(annotation: Any, key: str | int, *, ignore_case: bool = False) -> tuple[str | int, Any] | None:
    """The input key and annotation one level below `annotation`, or None if there is no such child."""
    annotation = unwrap(annotation)
    if is_model(annotation):
        fields = fields_of(annotation)
        if isinstance(key, str) and key in fields:
            return fields[key]
        if ignore_case and isinstance(key, str):
            for accepted, found in fields.items():
                if accepted.lower() == key.lower():
                    return found
        return None
    if is_mapping(annotation):
        args = get_args(annotation)
        return key, (args[1] if args else Any)
    if is_sequence(annotation) and isinstance(key, int):
        args = get_args(annotation)
        return key, (args[0] if args else Any)
    return None


def annotation_at(model: type[BaseModel], loc: Loc) -> list[Any] | None:
    """Annotations along `loc` (one per step), or None when `loc` leaves the type tree."""
    found: list[Any] = []
    annotation: Any = model
    for part in loc:
        step = child_of(annotation, part)
        if step is None:
            return None
        annotation = step[1]
        found.append(annotation)
    return found


def contains_secret(annotation: Any) -> bool:
    """True for `SecretStr` and any container of it (`list[SecretStr]`, `dict[str, list[SecretStr]]`)."""
    if annotation is SecretStr:
        return True
    return any(contains_secret(arg) for arg in get_args(annotation))


def suggest(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dotted(path: Loc) -> str:
    """`("solana", "wallets", 1)` -> `solana.wallets[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "settings"


def _origin_for(loc: Loc, origins: Mapping[Loc, str]) -> str | None:
    """Who set `loc`, else who set anything under it, else under its parent (for "Field required")."""
    for end in range(len(loc), 0, -1):
        prefix = loc[:end]
        if prefix in origins:
            return origins[prefix]
        below = sorted({origin for path, origin in origins.items() if path[:end] == prefix})
        if below:
            return ", ".join(below)
    return None


def _shown_input(model: type[BaseModel], loc: Loc, value: Any) -> str | None:
    """The offending value for the message, or None when it is structured, unknown or secret."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    annotations = annotation_at(model, loc)
    if annotations is None or any(contains_secret(annotation) for annotation in annotations):
        return None
    text = mask_url(value) if isinstance(value, str) and "://" in value else value
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def validation_problems(
    model: type[BaseModel], exc: pydantic.ValidationError, origins: Mapping[Loc, str]
) -> list[ConfigProblem]:
    """One `ConfigProblem` per pydantic error, naming the source and never echoing a secret."""
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        else:
            shown = _shown_input(model, loc, error.get("input"))
            if shown is not None:
                message += f" (got {shown})"
        problems.append(ConfigProblem(dotted(loc), message, _origin_for(loc, origins)))
    return problems
