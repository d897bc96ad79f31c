"""Streaming through a vendor's own real-time socket.

A provider that offers live recognition implements :class:`LiveConnector`: ``connect(options)`` opens the vendor's
WebSocket and returns a :class:`LiveConnection` that takes 16 kHz LINEAR16 audio and yields :class:`LiveResult`s —
the vendor's interim and final hypotheses with word times relative to the start of the audio sent.

voxgate's stream session stays in charge of turns (local VAD and the semantic turn model, or the client's
``endTurn``), exactly as with local models; :class:`LiveDecoder` answers the session's decode requests from what the
vendor has said: a partial is the vendor's latest hypothesis for the turn's audio, a final waits for the vendor to
finalise everything up to the end of the turn (after asking it to flush). So the WebSocket protocol is the same
whichever provider does the work, and when the vendor's socket fails, the session's requests — which carry their
audio — are answered by the next engine in the fallback list without losing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voxgate.errors import ProviderError, ProviderTimeout
from voxgate.types import SAMPLE_RATE, Segment, Transcript, TranscriptionOptions, Word

__all__ = ["LiveConnection", "LiveConnector", "LiveDecoder", "LiveResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveResult:
    """One vendor hypothesis. ``is_final``: these words will not change again (the vendor closed the span)."""

    words: tuple[Word, ...]
    is_final: bool
    start: float
    """Start of the audio span this result covers (seconds from the start of the stream)."""
    end: float
    """End of that span: a final result means everything before ``end`` is settled."""
    language: str | None = None


class LiveConnection(Protocol):
    async def send(self, pcm16: bytes) -> None:
        """Audio: 16 kHz mono signed 16-bit little-endian."""
        ...

    async def finalize(self) -> None:
        """Ask the vendor to finalise everything sent so far (Deepgram ``Finalize``, AssemblyAI ``ForceEndpoint``…)."""
        ...

    def results(self) -> AsyncIterator[LiveResult]:
        """The vendor's results, in order, until the connection closes (raises ProviderError if it fails)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class LiveConnector(Protocol):
    async def connect(self, options: TranscriptionOptions) -> LiveConnection: ...


class LiveDecoder:
    """Keeps the vendor's words of one stream and answers decode requests for stretches of its audio."""

    def __init__(self, connection: LiveConnection, model_id: str, *, finalize_timeout: float = 5.0) -> None:
        self._connection = connection
        self._model_id = model_id
        self._final: list[Word] = []
        self._interim: tuple[Word, ...] = ()
        self._settled = 0.0
        """Everything before this stream time is final at the vendor."""
        self._language: str | None = None
        self._changed = asyncio.Condition()
        self._failure: BaseException | None = None
        self._finalize_timeout = finalize_timeout
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for result in self._connection.results():
                async with self._changed:
                    if result.is_final:
                        self._final.extend(result.words)
                        self._interim = ()
                        self._settled = max(self._settled, result.end)
                    else:
                        self._interim = result.words
                    self._language = result.language or self._language
                    self._changed.notify_all()
            raise ProviderError(f"{self._model_id}: the vendor closed the stream")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            async with self._changed:
                self._failure = exc if isinstance(exc, ProviderError) else ProviderError(f"{self._model_id}: {exc}")
                self._changed.notify_all()

    async def send(self, pcm16: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        await self._connection.send(pcm16)

    def _words(self, start: float, end: float, *, interim: bool) -> list[Word]:
        pool = list(self._final) + (list(self._interim) if interim else [])
        return [w for w in pool if w.end > start + 0.01 and w.start < end - 0.01]

    def _transcript(self, words: list[Word], offset: float, duration: float) -> Transcript:
        shifted = tuple(Word(w.word, max(0.0, w.start - offset), w.end - offset, w.confidence) for w in words)
        text = " ".join(w.word for w in shifted)
        segments = (Segment(text, 0.0, duration, shifted, self._language),) if text else ()
        return Transcript(segments, duration, self._language, None, (), self._model_id)

    def draft(self, offset: float, duration: float) -> Transcript:
        """The vendor's current hypothesis (final and interim words) for the stretch at ``offset``."""
        if self._failure is not None:
            raise self._failure
        return self._transcript(self._words(offset, offset + duration, interim=True), offset, duration)

    async def settle(self, offset: float, duration: float) -> Transcript:
        """The vendor's final words for the stretch, once it has finalised up to its end."""
        end = offset + duration
        if self._settled < end - 0.05:
            await self._connection.finalize()
            try:
                async with asyncio.timeout(self._finalize_timeout), self._changed:
                    await self._changed.wait_for(lambda: self._failure is not None or self._settled >= end - 0.05)
            except TimeoutError:
                raise ProviderTimeout(
                    f"{self._model_id} did not finalise the turn within {self._finalize_timeout:g} s"
                ) from None
        if self._failure is not None:
            raise self._failure
        return self._transcript(self._words(offset, end, interim=False), offset, duration)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        with contextlib.suppress(Exception):
            await self._connection.close()

    @staticmethod
    def seconds(samples: int) -> float:
        return samples / SAMPLE_RATE
