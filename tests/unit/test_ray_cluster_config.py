"""`ray_cluster.yaml` is a real `ray up` config: it validates against the schema shipped in Ray."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())


def test_matches_the_schema_shipped_in_ray(cluster: dict) -> None:
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(cluster, schema)  # top level forbids unknown keys


def test_passes_rays_own_validation_after_defaults_are_filled(cluster: dict) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(cluster))


def test_installs_the_project_and_keeps_gcs_off_the_redis_port(cluster: dict) -> None:
    assert any("pip install" in c and "-e '." in c for c in cluster["setup_commands"])
    assert cluster["file_mounts"]["~/oof"] == "."
    head = " ".join(cluster["head_start_ray_commands"])
    assert "--head" in head and "--port=6380" in head
    assert all("6380" in c for c in cluster["worker_start_ray_commands"] if "--address" in c)
    workers = cluster["available_node_types"]["oof.worker"]
    assert workers["min_workers"] < workers["max_workers"] <= cluster["max_workers"]  # autoscaling


def test_nodes_get_python_3_11_with_headers_boto3_and_a_compiled_engine(cluster: dict) -> None:
    init = " ".join(cluster["initialization_commands"])
    assert "ppa:deadsnakes/ppa" in init  # Ubuntu 24.04 has no python3.11 package of its own
    assert all(pkg in init.split() for pkg in ("python3.11", "python3.11-venv", "python3.11-dev", "build-essential"))
    setup = cluster["setup_commands"]
    assert "python3.11 -m venv .venv" in setup[0] and "pip install -q -e '.[s3]'" in setup[0]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 's3 = [\n    "boto3==' in pyproject  # the extra the head's AWS autoscaler needs
    assert "_native.mode()" in setup[1] and "assert m == 'compiled'" in setup[1]


def test_the_schema_check_would_catch_a_typo(cluster: dict) -> None:
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cluster, "max_worker": 3}, schema)
