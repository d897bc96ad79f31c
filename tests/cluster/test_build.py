"""The Serve application is built from its arguments without a cluster, and the Serve config shipped in the repository
(``deploy/serve.yaml``) is valid for Ray and for :class:`ClusterConfig`."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import pytest
import yaml

if importlib.util.find_spec("ray") is None:
    if os.environ.get("VOXGATE_REQUIRE_RAY") == "1":
        raise RuntimeError("VOXGATE_REQUIRE_RAY=1 but Ray is not installed (pip install -e '.[dev]')")
    pytest.skip("Ray is not installed (pip install 'voxgate[ray]')", allow_module_level=True)

with warnings.catch_warnings():  # Ray's own models use pydantic's deprecated Field(extra=...): not ours to fix
    warnings.simplefilter("ignore", DeprecationWarning)
    from ray.serve.schema import ServeDeploySchema

    from voxgate.cluster.app import ClusterConfig, build, deployment_name

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "serve.yaml"


def test_the_serve_config_is_valid() -> None:
    raw = yaml.safe_load(CONFIG.read_text())
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "voxgate.cluster.app:build"
    config = ClusterConfig.model_validate(app.args)
    assert config.model_max_replicas > config.model_min_replicas  # autoscaled
    assert app.runtime_env["env_vars"]["VOXGATE_JOB_STORE"].startswith("postgresql://")


def test_build_makes_an_ingress_and_a_deployment_per_model() -> None:
    app = build({"models": ["whisper/tiny.en", "whisper/base"], "model_min_replicas": 2, "model_max_replicas": 2})
    ingress = app._bound_deployment
    assert ingress.name == "ingress"
    (models,) = ingress.init_args
    assert sorted(models) == ["whisper/base", "whisper/tiny.en"]
    tiny = models["whisper/tiny.en"]._bound_deployment
    assert tiny.name == deployment_name("whisper/tiny.en") == "model-whisper-tiny-en"
    assert tiny.num_replicas == 2
    scaled = build({"models": ["whisper/tiny.en"], "model_max_replicas": 4})._bound_deployment.init_args[0]
    autoscaling = scaled["whisper/tiny.en"]._bound_deployment._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 4)
    with pytest.raises(ValueError, match="models"):
        build({"models": []})
