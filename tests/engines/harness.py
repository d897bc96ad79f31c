"""What the engine tests share: each fake cloud vendor described once, served once a session, and the checks and
streaming helpers the adapter tests use.

A :class:`CloudKind` is one vendor's batch API as its fake (``tests/engines/fake_vendors``) serves it: the fake, the
key it takes, the routes a transcription goes through. :class:`Fakes` (the ``fakes`` fixture of
``tests/engines/conftest.py``) starts each kind's fake the first time a test asks for it, transcribing with a given
local engine, and hands the test a :class:`Cloud`: engines pointed at the fake (closed when the test ends), the fake's
scripted faults and records (cleared before and after the test). :class:`LiveKind` and :class:`Live` are the same for
the vendors' live sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from typing import Any, Generic, TypeVar

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors import (
    FakeVendor,
    Received,
    Scripted,
    assemblyai_live_server,
    assemblyai_server,
    deepgram_live_server,
    deepgram_server,
    openai_live_server,
    openai_server,
    soniox_live_server,
    soniox_server,
)
from tests.engines.fake_vendors.assemblyai_server import JobVendor
from tests.engines.fake_vendors.deepgram_live_server import LiveVendor
from tests.speech import wer
from voxgate.audio.pcm import encode_linear16
from voxgate.config import ProviderConfig, Settings
from voxgate.engines import remote
from voxgate.engines.assemblyai.live import AssemblyAILiveConnector
from voxgate.engines.assemblyai.rest import AssemblyAIEngine
from voxgate.engines.deepgram.live import DeepgramLiveConnector
from voxgate.engines.deepgram.rest import DeepgramEngine
from voxgate.engines.live import LiveConnection, LiveConnector, LiveDecoder
from voxgate.engines.openai.live import OpenAILiveConnector
from voxgate.engines.openai.rest import GroqEngine, OpenAIEngine
from voxgate.engines.registry import load_engine
from voxgate.engines.remote import RemoteEngine
from voxgate.engines.soniox.live import SonioxLiveConnector
from voxgate.engines.soniox.rest import SonioxEngine
from voxgate.errors import ProviderError
from voxgate.models.catalog import resolve
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

S = TypeVar("S", bound=Scripted)
F = TypeVar("F", bound=Scripted)
J = TypeVar("J", bound=JobVendor)
V = TypeVar("V", bound=LiveVendor)

Make = Callable[..., RemoteEngine]
"""A test's maker of engines (:meth:`Cloud.engine`)."""

EN = TranscriptionOptions(language="en")
CHUNK = SAMPLE_RATE // 10
"""100 ms."""
PACE = 0.0125
"""Seconds between 100 ms chunks: 8 times real time."""


# -- checks ------------------------------------------------------------------------------------------------------------


def words_are_sane(t: Transcript, *, within: float | None = None, confident: bool = False) -> None:
    """Some words, each a non-empty stripped word inside the audio (the transcript's duration, or ``within``
    seconds) with a confidence in [0, 1] (above 0 when ``confident``), in order of their starts."""
    end = t.duration if within is None else within
    assert t.words, "no words"
    for w in t.words:
        assert w.word, w
        assert w.word.strip() == w.word, w
        assert 0.0 <= w.start <= w.end <= end, w
        assert 0.0 < w.confidence <= 1.0 if confident else 0.0 <= w.confidence <= 1.0, w
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)


def segments_span_their_words(t: Transcript, *, text: bool = True) -> None:
    """Each segment runs from its first word's start to its last word's end (and, with ``text``, reads as its
    words)."""
    for s in t.segments:
        assert s.words, s
        if text:
            assert s.text == " ".join(w.word for w in s.words)
        assert (s.start, s.end) == (s.words[0].start, s.words[-1].end)


def _sentences_of_words(t: Transcript) -> None:
    """A job vendor's transcript: its flat word list (or tokens) cut into sentences by the adapter."""
    words_are_sane(t)
    segments_span_their_words(t)


def _utterances(t: Transcript) -> None:
    """Deepgram's transcript: its utterances, each with its own (confident) words."""
    words_are_sane(t, confident=True)
    segments_span_their_words(t, text=False)


def _whisper_segments(t: Transcript) -> None:
    """OpenAI's transcript: Whisper's segments, and its words (listed apart) each within one of them."""
    words_are_sane(t, confident=True)
    for s in t.segments:
        assert all(s.start - 0.05 <= w.start and w.end <= s.end + 0.05 for w in s.words)


@contextlib.contextmanager
def quick() -> Iterator[None]:
    """Retry backoff and job polling in milliseconds, not seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(remote, "_BACKOFF_BASE", 0.001)
        for cls in (AssemblyAIEngine, SonioxEngine):
            mp.setattr(cls, "poll_interval", 0.02)
            mp.setattr(cls, "poll_interval_max", 0.05)
        yield


# -- the vendors' APIs as their fakes serve them -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Kind(Generic[S]):
    """A cloud vendor's API as its fake serves it."""

    provider: str
    key: str
    """The key the fake takes."""
    fake: Callable[..., S]
    """The fake, from a local engine and ``api_key``."""
    app: Callable[[S], FastAPI]
    path: str = ""
    """What the provider's base URL adds to the fake's address."""

    @property
    def variable(self) -> str:
        """The environment variable of the provider's key."""
        return f"VOXGATE_{self.provider.upper()}_API_KEY"

    def __str__(self) -> str:
        return self.provider


# -- batch APIs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CloudKind(Kind[F]):
    """One cloud vendor's batch API."""

    model_id: str
    """The model a test gets unless it names one."""
    engine: type[RemoteEngine]
    """What the registry makes of the provider's models."""
    first: str
    """The route of a transcription's first request."""
    answer: str
    """The route whose answer holds the transcript."""
    clean: str
    """A clean transcription: a regular expression over its requests as ``route:status`` words."""
    limited: str
    """What the vendor's 429 says (the adapter passes it on)."""
    sane: Callable[[Transcript], None]
    """What every transcript from the vendor satisfies: sane words, held by its segments the vendor's way."""


@dataclass(frozen=True, kw_only=True)
class JobKind(CloudKind[J]):
    """An async-job vendor's batch API: upload, create a job, poll it."""

    job: str
    """What the vendor calls a job in its answers."""
    cleanup: tuple[str, ...] = ()
    """The requests the adapter cleans up with once a transcription ends: the job's deletion, then the upload's."""

    def cleanup_after(self, *, job: bool = True) -> list[str]:
        """The clean-up requests after a transcription that created a job (or only uploaded, ``job=False``)."""
        return list(self.cleanup if job else self.cleanup[1:])


class Cloud(Generic[F]):
    """A kind's fake, served: engines pointed at it and the fake's records. As a context manager: a test's use of it
    (the fake reset before and after, the test's engines closed)."""

    def __init__(self, kind: CloudKind[F], fake: F, url: str, settings: Settings) -> None:
        self.kind = kind
        self.fake = fake
        self.url = url
        self.settings = settings
        self._engines: list[RemoteEngine] = []

    def update(self, *, key: str | None = None, url: str | None = None) -> dict[str, Any]:
        """Settings that point the provider at the fake (with another key or base URL when given)."""
        provider = self.kind.provider
        return {
            f"{provider}_api_key": SecretStr(key or self.kind.key),
            f"{provider}_base_url": url or self.url + self.kind.path,
            "provider_max_retries": 2,
            "provider_timeout_seconds": 60.0,
        }

    def engine(
        self, model_id: str | None = None, *, key: str | None = None, url: str | None = None, **update: Any
    ) -> RemoteEngine:
        """An engine for ``model_id`` (the kind's model by default) pointed at the fake, loaded through the registry
        as the service loads it; ``update``: other settings. Closed when the test ends."""
        settings = self.settings.model_copy(update=self.update(key=key, url=url) | update)
        engine = load_engine(resolve(model_id or self.kind.model_id, settings.default_model), settings)
        assert isinstance(engine, self.kind.engine)
        self._engines.append(engine)
        return engine

    def log(self) -> list[tuple[str, int | None]]:
        """Every request the fake received: its route and the status it was answered with."""
        return [(r.route, r.status) for r in self.fake.received]

    def assert_clean(self, received: Sequence[Received]) -> None:
        """These requests are a clean transcription, every one of them answered as it should be."""
        seen = " ".join(f"{r.route}:{r.status}" for r in received)
        assert re.fullmatch(self.kind.clean, seen), f"not a clean {self.kind} transcription: {seen}"

    def __enter__(self) -> Cloud[F]:
        self.fake.settle()
        self.fake.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        for engine in self._engines:
            engine.close()
        self._engines.clear()
        self.fake.settle()
        self.fake.reset()


DEEPGRAM: CloudKind[FakeVendor] = CloudKind(
    provider="deepgram",
    model_id="deepgram/nova-3",
    engine=DeepgramEngine,
    key="dg-test-0123456789abcdef",
    fake=FakeVendor,
    app=deepgram_server.create_app,
    first="listen",
    answer="listen",
    clean="listen:200",
    limited="Too many requests",
    sane=_utterances,
)
OPENAI: CloudKind[FakeVendor] = CloudKind(
    provider="openai",
    model_id="openai/whisper-1",
    engine=OpenAIEngine,
    key="sk-test-0123456789",
    fake=FakeVendor,
    app=openai_server.create_app,
    path="/v1",
    first="transcriptions",
    answer="transcriptions",
    clean="transcriptions:200",
    limited="Rate limit reached",
    sane=_whisper_segments,
)
GROQ: CloudKind[FakeVendor] = replace(
    OPENAI,
    provider="groq",
    model_id="groq/whisper-large-v3",
    engine=GroqEngine,
    key="gsk_test_0123456789",
    app=partial(openai_server.create_app, prefix="/openai/v1", models=openai_server.GROQ_MODELS),
    path="/openai/v1",
)
"""OpenAI's API at Groq's base URL."""
ASSEMBLYAI: JobKind[assemblyai_server.FakeAssemblyAI] = JobKind(
    provider="assemblyai",
    model_id="assemblyai/universal-3-pro",
    engine=AssemblyAIEngine,
    key=assemblyai_server.API_KEY,
    fake=assemblyai_server.FakeAssemblyAI,
    app=attrgetter("app"),
    first="upload",
    answer="poll",
    clean="upload:200 create:200( poll:200)+",
    limited="Too many requests",
    sane=_sentences_of_words,
    job="transcript",
)
SONIOX: JobKind[soniox_server.FakeSoniox] = JobKind(
    provider="soniox",
    model_id="soniox/stt-async-v3",
    engine=SonioxEngine,
    key=soniox_server.API_KEY,
    fake=soniox_server.FakeSoniox,
    app=attrgetter("app"),
    first="upload",
    answer="transcript",
    clean="upload:201 create:201( poll:200)+ transcript:200 delete_transcription:204 delete_file:204",
    limited="Too many requests",
    sane=_sentences_of_words,
    job="transcription",
    cleanup=("delete_transcription", "delete_file"),
)
CLOUDS: list[CloudKind[Any]] = [DEEPGRAM, OPENAI, GROQ, ASSEMBLYAI, SONIOX]
JOBS: list[JobKind[Any]] = [ASSEMBLYAI, SONIOX]


def heard_jfk(t: Transcript, kind: CloudKind[Any], jfk: Speech) -> None:
    """``jfk`` (en/jfk.flac) transcribed in English by ``kind``'s model: close to the reference, in English without
    warnings, the words sane and in time ("Americans" is said around 1.5-2.3 s into the clip, "country" last, near
    10 s)."""
    assert wer(jfk.reference, t.text) <= 0.2, t.text
    assert t.model_id == kind.model_id
    assert t.duration == pytest.approx(jfk.duration)
    assert t.language == "en"
    assert t.warnings == ()
    kind.sane(t)
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0
    assert all(s.language == "en" for s in t.segments)


def left_behind(cloud: Cloud[J], *, processing: bool = False) -> None:
    """The vendor keeps nothing the adapter cleans up (but a job still ``processing``, which it refuses to delete)."""
    kind = cloud.kind
    if isinstance(kind, JobKind) and kind.cleanup:
        assert cloud.fake.uploads == {}, (list(cloud.fake.uploads), cloud.log())
        assert len(cloud.fake.jobs) == (1 if processing else 0), (list(cloud.fake.jobs), cloud.log())


# -- live sockets ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LiveKind(Kind[V]):
    """One cloud vendor's live socket."""

    connector: Callable[..., LiveConnector]
    """The connector of a model of the vendor's, for a :class:`ProviderConfig` and connector options."""
    quiet: Mapping[str, Any] = field(default_factory=dict)
    """Connector options under which it sends nothing unasked (no keepalives)."""
    refused: int = 401
    """The handshake status of a connection with a wrong key."""
    idle: str
    """What the vendor says when it closes an idle socket."""


class Live(Generic[V]):
    """A live kind's fake, served. As a context manager: a test's use of it (the fake reset before and after)."""

    def __init__(self, kind: LiveKind[V], vendor: V, url: str, settings: Settings) -> None:
        self.kind = kind
        self.vendor = vendor
        self.url = url
        self.settings = settings

    def config(self, *, key: str | None = None, url: str | None = None, timeout: float = 10.0) -> ProviderConfig:
        """The provider's configuration as voxgate's connectors read it, pointed at the fake (or ``url``)."""
        provider = self.kind.provider
        update = {
            f"{provider}_api_key": SecretStr(key or self.kind.key),
            f"{provider}_base_url": url or self.url + self.kind.path,
            "provider_timeout_seconds": timeout,
        }
        return self.settings.model_copy(update=update).provider(provider)

    def connector(self, **options: Any) -> LiveConnector:
        """The kind's connector, pointed at the fake."""
        return self.kind.connector(self.config(), **options)

    def __enter__(self) -> Live[V]:
        self.vendor.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        self.vendor.reset()


DEEPGRAM_LIVE: LiveKind[LiveVendor] = LiveKind(
    provider="deepgram",
    key="dg-live-test-0123456789abcdef",
    fake=LiveVendor,
    app=deepgram_live_server.create_app,
    connector=partial(DeepgramLiveConnector, model="nova-3"),
    quiet={"keepalive_interval": None},
    idle="NET-0001",
)
ASSEMBLYAI_LIVE: LiveKind[assemblyai_live_server.AssemblyAIVendor] = LiveKind(
    provider="assemblyai",
    key=assemblyai_live_server.API_KEY,
    fake=assemblyai_live_server.AssemblyAIVendor,
    app=assemblyai_live_server.create_app,
    connector=partial(AssemblyAILiveConnector, model="universal-2"),
    refused=101,  # accepted, then closed 1008 as AssemblyAI does
    idle="idle for too long",
)
OPENAI_LIVE: LiveKind[LiveVendor] = LiveKind(
    provider="openai",
    key=openai_live_server.API_KEY,
    fake=LiveVendor,
    app=openai_live_server.create_app,
    path="/v1",
    connector=partial(OpenAILiveConnector, model="gpt-4o-transcribe"),
    idle="session_expired",
)
SONIOX_LIVE: LiveKind[LiveVendor] = LiveKind(
    provider="soniox",
    key=soniox_live_server.API_KEY,
    fake=LiveVendor,
    app=soniox_live_server.create_app,
    connector=partial(SonioxLiveConnector, model="stt-rt-v3"),
    quiet={"keepalive_interval": None},
    idle="408",
)
LIVES: list[LiveKind[Any]] = [DEEPGRAM_LIVE, ASSEMBLYAI_LIVE, OPENAI_LIVE, SONIOX_LIVE]


# -- the session's fakes -----------------------------------------------------------------------------------------------


class Fakes:
    """Every fake a session's tests ask for, started on first use (one per kind and local engine), stopped when the
    session ends."""

    def __init__(self, settings: Settings, service: Service) -> None:
        self.settings = settings
        self.service = service
        self._stack = contextlib.ExitStack()
        self._clouds: dict[tuple[str, str], Cloud[Any]] = {}
        self._lives: dict[tuple[str, str], Live[Any]] = {}

    def _start(self, kind: Kind[S], local: str) -> tuple[S, str]:
        """``kind``'s fake transcribing with the local engine ``local``, and the address it is served at."""
        fake = kind.fake(self.service.engine(local), api_key=kind.key)
        self._stack.callback(fake.close)
        return fake, self._stack.enter_context(LiveServer(kind.app(fake))).url

    def cloud(self, kind: CloudKind[F], local: str) -> Cloud[F]:
        """``kind``'s fake, transcribing with the local engine ``local``."""
        if (kind.provider, local) not in self._clouds:
            self._clouds[kind.provider, local] = Cloud(kind, *self._start(kind, local), self.settings)
        cloud: Cloud[F] = self._clouds[kind.provider, local]
        return cloud

    def live(self, kind: LiveKind[V], local: str) -> Live[V]:
        """``kind``'s fake live socket, transcribing with the local engine ``local``."""
        if (kind.provider, local) not in self._lives:
            self._lives[kind.provider, local] = Live(kind, *self._start(kind, local), self.settings)
        live: Live[V] = self._lives[kind.provider, local]
        return live

    def close(self) -> None:
        self._stack.close()


def cloud_fixture(kind: CloudKind[F], local: str) -> Any:
    """A fixture (named as the module names it) giving each test ``kind``'s fake transcribing with ``local``."""

    @pytest.fixture
    def cloud(fakes: Fakes) -> Iterator[Cloud[F]]:
        with fakes.cloud(kind, local) as served:
            yield served

    return cloud


def live_fixture(kind: LiveKind[V], local: str) -> Any:
    """A fixture (named as the module names it) giving each test ``kind``'s fake socket transcribing with ``local``."""

    @pytest.fixture
    def live(fakes: Fakes) -> Iterator[Live[V]]:
        with fakes.live(kind, local) as served:
            yield served

    return live


# -- streaming through a live connector --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    audio: Audio
    reference: str

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@contextlib.asynccontextmanager
async def decoding(
    connector: LiveConnector, options: TranscriptionOptions = EN, **tune: float
) -> AsyncIterator[tuple[LiveDecoder, LiveConnection]]:
    """A LiveDecoder on a fresh connection (``tune``: attributes to set on the connection), closed afterwards."""
    connection = await connector.connect(options)
    for name, value in tune.items():
        setattr(connection, name, value)
    decoder = LiveDecoder(connection, "test/live")
    try:
        yield decoder, connection
    finally:
        await decoder.close()


async def stream(
    decoder: LiveDecoder, audio: Audio, *, start: float = 0.0, chunk: int = CHUNK, pace: float = PACE
) -> list[str]:
    """Send ``audio`` in ``chunk``-sample pieces, ``pace`` seconds apart; the distinct drafts seen on the way."""
    drafts: list[str] = []
    for i in range(0, len(audio), chunk):
        await decoder.send(encode_linear16(audio[i : i + chunk]))
        if pace:
            await asyncio.sleep(pace)
        text = decoder.draft(start, min(len(audio), i + chunk) / SAMPLE_RATE).text
        if text and (not drafts or drafts[-1] != text):
            drafts.append(text)
    return drafts


def words_inside(t: Transcript, duration: float) -> None:
    """Sane words (confident ones) inside ``duration`` seconds of streamed audio."""
    words_are_sane(t, within=duration + 1e-6, confident=True)


def settled(t: Transcript, speech: Speech) -> None:
    """The decoder's settled transcript of ``speech``: within WER 0.2 of its reference, in English, with sane words
    inside the audio."""
    assert wer(speech.reference, t.text) <= 0.2, t.text
    words_inside(t, speech.duration)
    assert t.language == "en"
    assert t.model_id == "test/live"


def growing(drafts: list[str]) -> None:
    assert len(drafts) >= 2, drafts
    assert len(drafts[-1].split()) > len(drafts[0].split()), drafts


async def caught_up(vendor: LiveVendor, quiet: float = 0.3) -> None:
    """Wait until the fake has answered everything it was sent (nothing new from it for ``quiet`` seconds): audio
    streamed faster than real time leaves it behind, which a real vendor is not."""
    deadline = time.monotonic() + 5.0
    count = -1
    while count != len(vendor.sent) and time.monotonic() < deadline:
        count = len(vendor.sent)
        await asyncio.sleep(quiet)


async def failed(decoder: LiveDecoder, within: float = 3.0) -> ProviderError:
    """The ProviderError the decoder raises once its vendor's socket is gone."""
    deadline = time.monotonic() + within
    while True:
        try:
            decoder.draft(0.0, 1.0)
        except ProviderError as exc:
            return exc
        assert time.monotonic() < deadline, "the decoder never noticed the lost connection"
        await asyncio.sleep(0.02)
