"""The ingress's service: the deployed models served through their deployments (capabilities asked once, before the
app serves), the default model one of them, everything else the single process's."""

from __future__ import annotations

from typing import Any

from tests.cluster.test_engine import Handle, Method, transcript
from voxgate.cluster.engine import ClusterEngine
from voxgate.cluster.ingress import ClusterService
from voxgate.config import Settings
from voxgate.engines.base import Capabilities
from voxgate.metrics import Metrics

TINY = "whisper/tiny.en"


class Deployed(Handle):
    def __init__(self, **methods: list[Any]) -> None:
        super().__init__(**methods)
        self.capabilities = Method([Capabilities(languages=("en",), max_batch=4)])


def test_deployed_models_are_served_through_their_deployment(settings: Settings) -> None:
    handle = Deployed(utterance=[transcript("from the replica")])
    service = ClusterService(
        settings.model_copy(update={"default_model": "whisper/base", "preload": []}), {TINY: handle}
    )
    try:
        assert service.settings.default_model == TINY  # whisper/base is not deployed: a request naming none gets tiny
        service.preload()
        engine = service.engine(None)
        assert isinstance(engine, ClusterEngine)
        assert engine.capabilities.remote
        assert engine.capabilities.max_batch == 4
        assert [m.id for m in service.list_models() if m.loaded] == [TINY]  # what /healthz lists
        assert engine.transcribe_utterance(*_clip()).text == "from the replica"
        assert len(handle.capabilities.calls) == 1
    finally:
        service.close()


def _clip() -> tuple[Any, Any]:
    import numpy as np

    from voxgate.types import TranscriptionOptions

    return np.zeros(1600, dtype=np.float32), TranscriptionOptions()


def test_metrics_serve_this_replica_and_its_peers(settings: Settings) -> None:
    """The ingress's /metrics: its own metrics as they are now, and the other replicas' latest, each labelled."""
    peer = Metrics()
    peer.models_loaded.set(1)
    peers = {"model-whisper-tiny-en/host/7": peer.exposition(), "ingress/host/1": b"# stale copy of this replica\n"}
    service = ClusterService(
        settings.model_copy(update={"preload": []}), {TINY: Deployed()}, replica="ingress/host/1", peers=lambda: peers
    )
    try:
        service.metrics.streams.set(3)
        text = service.exposition().decode()
        assert 'voxgate_models_loaded{replica="model-whisper-tiny-en/host/7"} 1.0' in text
        assert 'voxgate_streams{replica="ingress/host/1"} 3.0' in text  # its own, current, not the peers' copy
        assert "stale copy" not in text
    finally:
        service.close()


def test_metrics_still_answer_when_the_peers_cannot_be_reached(settings: Settings) -> None:
    def unreachable() -> dict[str, bytes]:
        raise TimeoutError("the board did not answer")

    service = ClusterService(
        settings.model_copy(update={"preload": []}), {TINY: Deployed()}, replica="ingress/h/1", peers=unreachable
    )
    try:
        service.metrics.streams.set(2)
        assert 'voxgate_streams{replica="ingress/h/1"} 2.0' in service.exposition().decode()
    finally:
        service.close()
