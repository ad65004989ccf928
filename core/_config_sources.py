"""Raw configuration layers (YAML files, an environment mapping) and their problems.

Every layer remembers which file or variable set each value, so a validation error can
say where the bad value came from. Nothing here reads `os.environ`: the mapping is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from core._settings_schema import Loc, child_of, dotted, fields_of, is_mapping, is_model, is_sequence, suggest, unwrap
from core.errors import ConfigProblem

__all__ = ["Layer", "yaml_layer", "env_layer", "value_layer", "merge_layers"]


@dataclass
class Layer:
    """Raw values from one source, where each leaf came from, and what could not be read."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, str] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)


def _record(origins: dict[Loc, str], path: Loc, value: Any, origin: str) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _record(origins, (*path, key), item, origin)
    else:
        origins[path] = origin


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


# --- YAML ------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable key; the base constructor reports it
                    continue
                if duplicate:
                    problem = f"found duplicate key {key!r}"
                    raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _known_keys_only(
    annotation: Any, data: dict[Any, Any], path: Loc, source: str, problems: list[ConfigProblem]
) -> dict[Any, Any]:
    """Drop (and report) keys the settings schema does not have, at every depth."""
    annotation = unwrap(annotation)
    cleaned: dict[Any, Any] = {}
    for key, value in data.items():
        if is_model(annotation):
            fields = fields_of(annotation)
            if not isinstance(key, str) or key not in fields:
                names = [info.alias or name for name, info in annotation.model_fields.items()]
                message = "unknown setting" + suggest(str(key), names)
                problems.append(ConfigProblem(dotted((*path, str(key))), message, source))
                continue
            child = fields[key][1]
        else:
            step = child_of(annotation, key)
            child = step[1] if step else Any
        inner = unwrap(child)
        if isinstance(value, dict) and (is_model(inner) or is_mapping(inner)):
            value = _known_keys_only(inner, value, (*path, key), source, problems)
        cleaned[key] = value
    return cleaned


def yaml_layer(model: type[BaseModel], path: Path) -> Layer:
    """One YAML file as a layer; an unreadable or malformed file is a problem, never an exception."""
    layer = Layer()
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        layer.problems.append(ConfigProblem(where, "file not found"))
        return layer
    except UnicodeDecodeError:
        layer.problems.append(ConfigProblem(where, "file is not UTF-8 text"))
        return layer
    except OSError as exc:
        layer.problems.append(ConfigProblem(where, f"cannot read file ({exc.strerror or type(exc).__name__})"))
        return layer
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        # Only the position and the problem: the offending line could hold a secret.
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        layer.problems.append(ConfigProblem(where, f"invalid YAML{at}: {exc.problem}"))
        return layer
    except yaml.YAMLError:
        layer.problems.append(ConfigProblem(where, "invalid YAML"))
        return layer
    if data is None:  # an empty or all-comments file sets nothing
        return layer
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        message = f"must be a mapping of sections (database:, solana:, ...), not {kind}"
        layer.problems.append(ConfigProblem(where, message))
        return layer
    layer.data = _known_keys_only(model, data, (), where, layer.problems)
    _record(layer.origins, (), layer.data, where)
    return layer


# --- environment -----------------------------------------------------------------------


def _resolve_env_name(model: type[BaseModel], parts: Sequence[str]) -> tuple[tuple[str, ...], Any] | str:
    """Map `DATABASE`, `POOL_MAX` to (("database", "pool_max"), int), or explain why not."""
    keys: list[str] = []
    annotation: Any = model
    for part in parts:
        inner = unwrap(annotation)
        step = child_of(inner, part, ignore_case=True)
        if step is None or not part:
            where = ".".join(keys) or "settings"
            if is_model(inner):
                names = [info.alias or name for name, info in inner.model_fields.items()]
                return f"unknown setting {part.lower()!r} in {where}" + suggest(part.lower(), names)
            return f"{where} has no nested settings"
        key, annotation = step
        if is_mapping(inner) and isinstance(key, str) and key.isupper():
            # Env names are shouted: POLICIES__ANALYZE means "analyze"; mixed case (a mint) is kept.
            key = key.lower()
        keys.append(str(key))
    return tuple(keys), annotation


def _decode_env_value(raw: str, annotation: Any) -> tuple[Any, str | None]:
    """Lists take JSON or `a,b,c`; mappings and sections take JSON; scalars stay strings for pydantic."""
    inner = unwrap(annotation)
    structured = is_model(inner) or is_mapping(inner)
    listy = is_sequence(inner)
    if listy and not raw.lstrip().startswith("["):
        return [item.strip() for item in raw.split(",") if item.strip()], None
    if not (listy or structured):
        return raw, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        # The message names the position only, never the value (it may be a secret).
        return None, f"is not valid JSON ({exc.msg} at column {exc.colno})"
    if listy and not isinstance(value, list):
        return None, "expected a JSON array or a comma-separated list"
    if structured and not isinstance(value, dict):
        return None, "expected a JSON object"
    return value, None


def _assign(data: dict[str, Any], keys: Sequence[str], value: Any) -> bool:
    target = data
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            return False
    last = keys[-1]
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        target[last] = _deep_merge(target[last], value)
    else:
        target[last] = value
    return True


def env_layer(
    model: type[BaseModel],
    environ: Mapping[str, str],
    *,
    prefix: str,
    delimiter: str,
    aliases: Mapping[str, tuple[str, ...]],
) -> Layer:
    """Settings addressed by `<PREFIX><SECTION><DELIM><FIELD>` variables plus a few conventional names.

    Empty values count as unset. A prefixed variable whose name is not a settings field and has
    no delimiter (e.g. `OOF_CONFIG`) is not a setting and is ignored; anything deeper must resolve.
    """
    layer = Layer()
    entries: list[tuple[int, int, str, Sequence[str]]] = []
    for rank, (name, path) in enumerate(aliases.items()):
        if environ.get(name):
            entries.append((0, rank, name, path))
    for name, raw in environ.items():
        if not raw or not name.upper().startswith(prefix.upper()) or name in aliases:
            continue
        parts = name[len(prefix) :].split(delimiter)
        if len(parts) == 1 and child_of(model, parts[0], ignore_case=True) is None:
            continue
        # Shallow variables first, so OOF_DATABASE__POOL_MAX refines a JSON OOF_DATABASE.
        entries.append((len(parts), 0, name, parts))
    for _, _, name, parts in sorted(entries, key=lambda entry: (entry[0], entry[1], entry[2])):
        resolved = _resolve_env_name(model, parts)
        if isinstance(resolved, str):
            layer.problems.append(ConfigProblem(name, resolved))
            continue
        keys, annotation = resolved
        value, error = _decode_env_value(environ[name], annotation)
        if error is not None:
            layer.problems.append(ConfigProblem(dotted(keys), error, name))
        elif not _assign(layer.data, keys, value):
            layer.problems.append(ConfigProblem(name, f"conflicts with a non-object value set for {keys[0]}"))
        else:
            _record(layer.origins, keys, value, name)
    return layer


def value_layer(data: Mapping[str, Any], origin: str) -> Layer:
    """Explicit values (e.g. init kwargs) as a layer."""
    layer = Layer(data=_deep_merge({}, data))
    _record(layer.origins, (), layer.data, origin)
    return layer


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[Loc, str]]:
    """Later layers win; mappings merge key by key, everything else is replaced whole."""
    data: dict[str, Any] = {}
    origins: dict[Loc, str] = {}
    for layer in layers:
        data = _deep_merge(data, layer.data)
        origins.update(layer.origins)
    return data, origins
