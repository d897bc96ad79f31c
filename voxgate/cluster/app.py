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

Metrics: every replica sends its Prometheus metrics to a named Ray actor (a :class:`Board`) every few seconds, and any
ingress replica's ``/metrics`` serves them all, each sample labelled with its ``replica``: one scrape target.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
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
from voxgate.metrics import Metrics
from voxgate.models.catalog import resolve
from voxgate.server.app import create_app

__all__ = ["ClusterConfig", "build", "deployment_name", "run_local"]

APP_NAME = "voxgate"

log = logging.getLogger(__name__)


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


BOARD = "voxgate-metrics"
PUSH_SECONDS = 5.0
"""How often each replica sends its metrics to the board."""
STALE_SECONDS = 60.0
"""A replica silent this long (gone, or replaced by Ray) drops out of ``/metrics``."""


class Board:
    """Every replica's latest metrics (Prometheus text), for the ingress's ``/metrics``: one endpoint for the whole
    application, whichever ingress replica the proxy picks. A named actor, created by the first replica to ask."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[float, bytes]] = {}

    def put(self, replica: str, exposition: bytes) -> None:
        self._latest[replica] = (time.monotonic(), exposition)

    def collect(self) -> dict[str, bytes]:
        now = time.monotonic()
        self._latest = {k: v for k, v in self._latest.items() if now - v[0] < STALE_SECONDS}
        return {k: text for k, (_, text) in self._latest.items()}


MetricsBoard: Any = ray.remote(num_cpus=0)(Board)
"""The :class:`Board` as a Ray actor class."""


def _board() -> Any:
    return MetricsBoard.options(name=BOARD, namespace=APP_NAME, get_if_exists=True, lifetime="detached").remote()


def _replica_name(deployment: str) -> str:
    return f"{deployment}/{socket.gethostname()}/{os.getpid()}"


def _push_forever(replica: str, metrics: Metrics) -> None:
    """This replica's metrics to the board every few seconds, for as long as the replica lives (a daemon thread)."""
    board = _board()
    while True:
        try:
            board.put.remote(replica, metrics.exposition())
        except Exception:  # the board restarting, or Ray shutting down: try again next time
            log.debug("could not send %s's metrics", replica, exc_info=True)
        time.sleep(PUSH_SECONDS)


def _start_pushing(replica: str, metrics: Metrics) -> None:
    threading.Thread(target=_push_forever, args=(replica, metrics), name="voxgate-metrics", daemon=True).start()


class ModelReplica(ModelServer):
    """A model deployment's replica: the :class:`ModelServer`, its metrics sent to the board."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        _start_pushing(_replica_name(deployment_name(model_id)), self.metrics)


class Ingress:
    """An ingress replica: the single process's app on a :class:`ClusterService`, whose ``/metrics`` adds every other
    replica's (from the board)."""

    def __init__(self, models: Mapping[str, DeploymentHandle[Any]]) -> None:
        me = _replica_name("ingress")
        board = _board()

        def peers() -> dict[str, bytes]:
            latest: dict[str, bytes] = ray.get(board.collect.remote(), timeout=10)
            latest.pop(me, None)
            return latest

        self.service = ClusterService(Settings(), models, replica=me, peers=peers)
        _start_pushing(me, self.service.metrics)

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
        )(ModelReplica)
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
