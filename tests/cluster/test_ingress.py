"""The ingress's service: the deployed models served through their deployments (capabilities asked once, before the
app serves), the default model one of them, everything else the single process's."""

from __future__ import annotations

from typing import Any

from tests.cluster.test_engine import Handle, Method, transcript
from voxgate.cluster.engine import ClusterEngine
from voxgate.cluster.ingress import ClusterService
from voxgate.config import Settings
from voxgate.engines.base import Capabilities

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
