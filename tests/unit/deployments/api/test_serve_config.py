"""configs/serve.yaml, validated strictly: Ray's schema, and no key Ray would silently ignore."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
import yaml
from pydantic import BaseModel

from core.paths import project_root
from core.settings import Settings
from tests.unit.deployments.api.conftest import ray_keeps_its_hands_off_logging

with ray_keeps_its_hands_off_logging():
    from ray.serve.deployment import Application
    from ray.serve.schema import ServeDeploySchema

    from deployments.serve_app import (
        API_APP_NAME,
        DEPLOYMENT_NAME,
        BuilderArgs,
        app_builder,
        deployment_options,
        load_serve_config,
    )

SERVE_YAML = project_root() / "configs" / "serve.yaml"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models an annotation can hold: `X`, `Optional[X]`, `Union[Dict, X]`, `List[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType, list, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def unknown_keys(data: Any, model: type[BaseModel], where: str = "") -> list[str]:
    """Every key of `data` that is not a field of `model`, recursively (free-form dicts excepted)."""
    if not isinstance(data, dict):
        return []
    names = {name: field for name, field in model.model_fields.items()}
    names.update({field.alias: field for field in model.model_fields.values() if field.alias})
    problems: list[str] = []
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        field = names.get(key)
        if field is None:
            problems.append(path)
            continue
        nested = _models(field.annotation)
        if not nested:
            continue  # a scalar, or a free-form dict (runtime_env, args, user_config)
        for item_index, item in enumerate(value if isinstance(value, list) else [value]):
            item_path = f"{path}[{item_index}]" if isinstance(value, list) else path
            # in a Union[Dict, Model] the model is the stricter reading: use it
            problems.extend(unknown_keys(item, nested[-1], item_path))
    return problems


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(SERVE_YAML.read_text())


def test_serve_yaml_validates_against_rays_schema(raw: dict[str, Any]) -> None:
    ServeDeploySchema.model_validate(raw)
    assert unknown_keys(raw, ServeDeploySchema) == []


def test_the_strict_check_catches_what_ray_ignores(raw: dict[str, Any]) -> None:
    typo = yaml.safe_load(SERVE_YAML.read_text())
    typo["applications"][0]["deployments"][0]["max_concurent_queries"] = 10
    typo["applications"][0]["deployments"][0]["autoscaling_config"]["max_replica"] = 9
    typo["http_options"]["hots"] = "0.0.0.0"
    ServeDeploySchema.model_validate(typo)  # Ray accepts all three...
    assert unknown_keys(typo, ServeDeploySchema) == [  # ...we do not
        "http_options.hots",
        "applications[0].deployments[0].autoscaling_config.max_replica",
        "applications[0].deployments[0].max_concurent_queries",
    ]


def test_the_api_deployment_is_sized_for_two_cores(raw: dict[str, Any]) -> None:
    config = load_serve_config(SERVE_YAML)
    assert config.http_options.host == "127.0.0.1" and config.http_options.port == 8000
    (app,) = config.applications
    assert app.name == API_APP_NAME and app.import_path == "deployments.serve_app:app_builder"
    BuilderArgs.model_validate(app.args)  # forbids unknown args
    options = deployment_options(config)
    assert 0 < options["ray_actor_options"]["num_cpus"] < 1
    assert options["max_ongoing_requests"] > 5 and options["health_check_period_s"] > 0
    autoscaling = options["autoscaling_config"]
    assert autoscaling["max_replicas"] * options["ray_actor_options"]["num_cpus"] <= 2
    assert [d.name for d in app.deployments] == [DEPLOYMENT_NAME]


def test_serve_yaml_and_settings_agree_on_the_address() -> None:
    config, api = load_serve_config(SERVE_YAML), Settings().api
    assert (config.http_options.host, config.http_options.port) == (api.host, api.port)


def test_the_import_path_builds_the_application(raw: dict[str, Any]) -> None:
    assert isinstance(app_builder(raw["applications"][0]["args"]), Application)
    with pytest.raises(ValueError):
        app_builder({"config_file": "typo.yaml"})


def test_the_yaml_lives_where_serve_run_expects_it() -> None:
    assert Path("configs/serve.yaml") == SERVE_YAML.relative_to(project_root())
