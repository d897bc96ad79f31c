"""The Ray Serve application: ``serve run voxgate.cluster.app:build models='["whisper/base"]'``, the Serve config
``deploy/serve.yaml``, or ``voxgate serve --ray`` for a cluster on this machine (:func:`run_local`).

Deployments:

* ``ingress`` — the same FastAPI app as ``voxgate serve`` (REST, OpenAI routes, WebSocket streams, jobs, console,
  ``/healthz``, ``/metrics``) behind Ray's HTTP proxy; autoscaled on ongoing requests (a stream counts as one for its
  whole life).
* ``model-<id>`` — one per model (``whisper/tiny.en`` → ``model-whisper-tiny-en``): its replicas decode for every
  ingress replica (:class:`~voxgate.cluster.model.ModelServer`); autoscaled on ongoing decodes.

Settings come from ``VOXGATE_*`` environment variables in every replica (``runtime_env.env_vars``), as for one
process. A shared job store (``VOXGATE_JOB_STORE=postgresql://...``) lets every ingress replica take every job.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

import voxgate
from voxgate.cluster.ingress import ClusterService
from voxgate.cluster.model import ModelServer
from voxgate.config import Settings
from voxgate.models.catalog import resolve
from voxgate.server.app import create_app

__all__ = ["ClusterConfig", "build", "deployment_name", "run_local"]

APP_NAME = "voxgate"


class ClusterConfig(BaseModel):
    """The application's arguments (``args:`` in the Serve config)."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    """Models served, each in a deployment of its own (``default``: ``VOXGATE_DEFAULT_MODEL``)."""
    model_min_replicas: int = Field(default=1, ge=0)
    model_max_replicas: int = Field(default=1, ge=1)
    """Equal to the minimum: a fixed count. Above it: autoscaled on ongoing decodes per replica."""
    model_target_ongoing: float = Field(default=4.0, gt=0)
    """Decodes queued or running per model replica that the autoscaler aims at."""
    model_max_ongoing: int = Field(default=64, ge=1)
    """Decodes one model replica accepts at once (its scheduler orders them); more wait in the caller."""
    model_cpus: float = Field(default=1.0, ge=0)
    """Ray CPUs reserved per model replica (set it to ``VOXGATE_CPU_THREADS``: CTranslate2 uses that many cores)."""
    ingress_min_replicas: int = Field(default=1, ge=1)
    ingress_max_replicas: int = Field(default=1, ge=1)
    ingress_target_ongoing: float = Field(default=50.0, gt=0)
    """Requests and streams open per ingress replica that the autoscaler aims at."""
    ingress_max_ongoing: int = Field(default=200, ge=1)
    ingress_cpus: float = Field(default=1.0, ge=0)


def deployment_name(model_id: str) -> str:
    return "model-" + re.sub(r"[^A-Za-z0-9]+", "-", model_id).strip("-").lower()


def _scaling(minimum: int, maximum: int, target: float) -> dict[str, Any]:
    if maximum <= minimum:
        return {"num_replicas": minimum}
    return {
        "autoscaling_config": {
            "min_replicas": minimum,
            "max_replicas": maximum,
            "target_ongoing_requests": target,
        }
    }


class Ingress:
    """An ingress replica: the single process's app on a :class:`ClusterService`."""

    def __init__(self, models: Mapping[str, DeploymentHandle[Any]]) -> None:
        self.service = ClusterService(Settings(), models)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.service.settings, service=self.service)


def build(args: Mapping[str, Any] | None = None) -> Application:
    """The application (Serve's builder: ``import_path: voxgate.cluster.app:build``)."""
    config = ClusterConfig.model_validate(dict(args or {}))
    default = Settings().default_model
    handles: dict[str, Application] = {}
    for model in config.models:
        model_id = resolve(model, default).id
        deployment = serve.deployment(
            name=deployment_name(model_id),
            max_ongoing_requests=config.model_max_ongoing,
            ray_actor_options={"num_cpus": config.model_cpus},
            **_scaling(config.model_min_replicas, config.model_max_replicas, config.model_target_ongoing),
        )(ModelServer)
        handles[model_id] = deployment.bind(model_id)
    ingress = serve.deployment(
        name="ingress",
        max_ongoing_requests=config.ingress_max_ongoing,
        ray_actor_options={"num_cpus": config.ingress_cpus},
        **_scaling(config.ingress_min_replicas, config.ingress_max_replicas, config.ingress_target_ongoing),
    )(serve.ingress()(Ingress))
    app: Application = ingress.bind(handles)
    return app


def run_local(config: ClusterConfig, *, host: str, port: int, ready: threading.Event | None = None) -> None:
    """A Ray cluster on this machine (head only), the application on it, until SIGINT or SIGTERM."""
    needed = (
        config.ingress_max_replicas * config.ingress_cpus
        + len(config.models) * config.model_max_replicas * config.model_cpus
    )
    env = {k: v for k, v in os.environ.items() if k.startswith("VOXGATE_")}
    # The replicas import the voxgate this process runs (a checkout, not only an installed package).
    source = str(Path(voxgate.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    # Logical CPUs: what the replicas reserve, at least the machine's (Ray schedules on them; the cores are shared).
    ray.init(
        num_cpus=max(int(needed + 0.999), os.cpu_count() or 1),
        include_dashboard=False,
        runtime_env={"env_vars": env},
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build(config.model_dump()), name=APP_NAME, route_prefix="/")
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        shutdown: Callable[[], None] = serve.shutdown
        shutdown()
        ray.shutdown()
