"""One model's replica in a cluster: the model loaded from the package as in the single process, and the single
process's :class:`~voxgate.scheduler.Scheduler` in front of it, now fed by every ingress replica.

* files' windows (``transcribe``): queued at normal priority;
* streams' finals (``utterance``): urgent, ahead of everything queued;
* streams' drafts (``drafts``): each clip queued as a batchable, droppable item, so drafts of similar length from
  different ingress replicas share one batched decode, and a draft that falls too far behind is skipped.

The methods are coroutines: a replica accepts many calls at once (``max_ongoing_requests``) and its scheduler orders
them; Ray Serve autoscales replicas on those ongoing requests.
"""

from __future__ import annotations

import asyncio
import functools

from voxgate.config import Settings
from voxgate.engines.base import Capabilities, Engine
from voxgate.engines.pool import EnginePool
from voxgate.metrics import Metrics
from voxgate.scheduler import Scheduler, Skipped, wait
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

__all__ = ["ModelServer"]

_DRAFT_DEADLINE = 0.5
_DRAFT_DROP_AFTER = 1.0
"""As in the single process (:mod:`voxgate.streaming.decoders`): a draft due in half a second, dropped a second late."""


class ModelServer:
    def __init__(self, model_id: str, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self._pool = EnginePool(self.settings, self.metrics)
        self.engine: Engine = self._pool.get(model_id)
        self.scheduler = Scheduler(urgent_lanes=int(self.settings.urgent_lane))
        self.metrics.decodes_queued.set_function(lambda: self.scheduler.pending)

    def capabilities(self) -> Capabilities:
        return self.engine.capabilities

    def model_id(self) -> str:
        return self.engine.model_id

    async def transcribe(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        return await self.scheduler.run(functools.partial(self.engine.transcribe, audio, options))

    async def utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        work = functools.partial(self.engine.transcribe_utterance, audio, options)
        return await self.scheduler.run(work, deadline_in=0.0, urgent=True)

    async def drafts(self, items: list[tuple[Audio, TranscriptionOptions]]) -> list[Transcript | None]:
        """Draft decodes; None for a draft skipped because the replica fell behind (the ingress raises
        :class:`~voxgate.scheduler.Skipped` for it, as the single process's scheduler would)."""
        futures = [
            self.scheduler.submit_batched(
                (self.engine.model_id, len(audio) // (2 * SAMPLE_RATE)),  # similar lengths: little padding
                (audio, options),
                self.engine.transcribe_batch,
                max_batch=self.engine.capabilities.max_batch,
                deadline_in=_DRAFT_DEADLINE,
                drop_after=_DRAFT_DROP_AFTER,
            )
            for audio, options in items
        ]
        results = await asyncio.gather(*(wait(f) for f in futures), return_exceptions=True)
        out: list[Transcript | None] = []
        for result in results:
            if isinstance(result, Skipped):
                out.append(None)
            elif isinstance(result, BaseException):
                raise result
            else:
                out.append(result)
        return out

    def close(self) -> None:
        self.scheduler.close()
        self._pool.close()
