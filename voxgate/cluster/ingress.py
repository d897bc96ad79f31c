"""The ingress replica's :class:`~voxgate.service.Service`: the single process's, with the deployed models' engines
replaced by :class:`~voxgate.cluster.engine.ClusterEngine` (the decodes run on the model deployments). Everything
else (streams' sessions and turn detection, the VAD, the file pipeline, jobs, the API and console) runs here as in
one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from voxgate.cluster.engine import ClusterEngine, ModelHandle
from voxgate.config import Settings
from voxgate.engines.base import Capabilities
from voxgate.metrics import merge_expositions
from voxgate.models.catalog import resolve
from voxgate.service import Service

__all__ = ["ClusterService", "DeployedModel"]

log = logging.getLogger(__name__)


class _Response(Protocol):
    def result(self, *, timeout_s: float | None = None) -> Any: ...


class _Method(Protocol):
    def remote(self, *args: Any) -> _Response: ...


class DeployedModel(ModelHandle, Protocol):
    """A handle to a model deployment that can also say what its model can do."""

    @property
    def capabilities(self) -> _Method: ...


class ClusterService(Service):
    def __init__(
        self,
        settings: Settings,
        models: Mapping[str, DeployedModel],
        *,
        replica: str = "ingress",
        peers: Callable[[], Mapping[str, bytes]] | None = None,
    ) -> None:
        """``models``: model id → its deployment's handle. The default model is the settings' when it is deployed,
        else the first deployed model (so a request naming no model never loads one inside the ingress).
        ``replica`` names this replica in the merged metrics; ``peers`` gives the other replicas' latest expositions
        (by replica name), which ``/metrics`` serves with this one's."""
        if not models:
            raise ValueError("a cluster needs at least one model deployment")
        ids = {resolve(m, settings.default_model).id: handle for m, handle in models.items()}
        if resolve("", settings.default_model).id not in ids:
            settings = settings.model_copy(update={"default_model": next(iter(ids))})
        super().__init__(settings)
        self.deployed = ids
        self.replica = replica
        self._peers = peers

    def exposition(self) -> bytes:
        parts: dict[str, bytes] = {}
        if self._peers is not None:
            try:
                parts.update(self._peers())
            except Exception:  # the board unreachable (restarting): this replica's metrics are still worth serving
                log.warning("the other replicas' metrics are unavailable", exc_info=True)
        parts[self.replica] = self.metrics.exposition()  # this replica's own, current one
        return merge_expositions(parts)

    def preload(self) -> None:
        """Before the app serves (off the event loop): ask each deployment for its model's capabilities and serve
        the model through it; then the single process's preload (the VAD and turn detector are loaded here)."""
        for model_id, handle in self.deployed.items():
            capabilities: Capabilities = handle.capabilities.remote().result(timeout_s=600)
            retried = self.metrics.decode_retries.labels(model_id).inc
            self.engines.adopt(ClusterEngine(model_id, capabilities, handle, on_retry=retried))
        super().preload()
