"""Deepgram's and AssemblyAI's live sockets, through voxgate's connectors and :class:`LiveDecoder`, against fakes.

Real speech (``en/jfk.flac``, a Harvard sentence) is streamed as LINEAR16 chunks into each connector; the fake vendor
on loopback checks the handshake as the vendor does and transcribes what it hears with voxgate's local tiny.en, so
interim drafts, finals, word times and failures are real: the text must grow while audio arrives, the settled text
must be within WER 0.2 of the reference with word times inside the audio, a refused key must raise
ProviderUnauthorized and a dropped socket must make the decoder's next call raise ProviderError (what makes voxgate's
stream fall back to the next engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors import assemblyai_live_server as aai_fake
from tests.engines.fake_vendors import deepgram_live_server as dg_fake
from tests.engines.fake_vendors.deepgram_live_server import LiveFault, LiveVendor, plain
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import ProviderConfig, Settings
from voxgate.engines.assemblyai_live import (
    AssemblyAILiveConnection,
    AssemblyAILiveConnector,
    speech_model,
    streaming_url,
)
from voxgate.engines.deepgram_live import DeepgramLiveConnector
from voxgate.engines.live import LiveConnection, LiveConnector, LiveDecoder
from voxgate.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnauthorized
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

LOCAL = "whisper/tiny.en"
DG_KEY = "dg-live-test-0123456789abcdef"
EN = TranscriptionOptions(language="en")
CHUNK = SAMPLE_RATE // 10
"""100 ms."""
PACE = 0.0125
"""Seconds between 100 ms chunks: 8 times real time."""


@dataclass(frozen=True)
class Speech:
    audio: Audio
    reference: str

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@pytest.fixture(scope="module")
def jfk(data: Path) -> Speech:
    return Speech(decode(data / "en" / "jfk.flac"), reference(data, "en/jfk.flac"))


@pytest.fixture(scope="module")
def harvard(data: Path) -> Speech:
    return Speech(decode(data / "en" / "spk1_snt2.wav"), reference(data, "en/spk1_snt2.wav"))


# -- fakes ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deepgram_fake(service: Service) -> Iterator[tuple[LiveVendor, LiveServer]]:
    vendor = LiveVendor(service.engine(LOCAL), api_key=DG_KEY)
    with LiveServer(dg_fake.create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture(scope="module")
def assemblyai_fake(service: Service) -> Iterator[tuple[aai_fake.AssemblyAIVendor, LiveServer]]:
    vendor = aai_fake.AssemblyAIVendor(service.engine(LOCAL))
    with LiveServer(aai_fake.create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture
def deepgram(deepgram_fake: tuple[LiveVendor, LiveServer]) -> Iterator[LiveVendor]:
    deepgram_fake[0].reset()
    yield deepgram_fake[0]
    deepgram_fake[0].reset()


@pytest.fixture
def assemblyai(
    assemblyai_fake: tuple[aai_fake.AssemblyAIVendor, LiveServer],
) -> Iterator[aai_fake.AssemblyAIVendor]:
    assemblyai_fake[0].reset()
    yield assemblyai_fake[0]
    assemblyai_fake[0].reset()


def provider(settings: Settings, name: str, key: str, base_url: str, timeout: float = 10.0) -> ProviderConfig:
    """The provider's configuration as voxgate's engines read it (``VOXGATE_<NAME>_API_KEY`` …)."""
    update = {f"{name}_api_key": SecretStr(key), f"{name}_base_url": base_url, "provider_timeout_seconds": timeout}
    return settings.model_copy(update=update).provider(name)


@pytest.fixture
def dg(settings: Settings, deepgram_fake: tuple[LiveVendor, LiveServer]) -> ProviderConfig:
    return provider(settings, "deepgram", DG_KEY, deepgram_fake[1].url)


@pytest.fixture
def aai(settings: Settings, assemblyai_fake: tuple[LiveVendor, LiveServer]) -> ProviderConfig:
    return provider(settings, "assemblyai", aai_fake.API_KEY, assemblyai_fake[1].url)


# -- helpers ----------------------------------------------------------------------------------------------------------


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
    assert t.words, "no words"
    for w in t.words:
        assert w.word
        assert w.word.strip() == w.word
        assert 0.0 <= w.start <= w.end <= duration + 1e-6, w
        assert 0.0 < w.confidence <= 1.0
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)


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


# -- Deepgram ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpointing", [None, 0.4], ids=["finalize", "endpointing"])
async def test_deepgram_streams_real_speech(
    deepgram: LiveVendor, dg: ProviderConfig, jfk: Speech, endpointing: float | None
) -> None:
    deepgram.endpoint_silence = endpointing  # Deepgram's own finals at pauses, besides those Finalize asks for
    async with decoding(DeepgramLiveConnector(dg, "nova-3")) as (decoder, _):
        growing(await stream(decoder, jfk.audio))
        t = await decoder.settle(0.0, jfk.duration)
        assert wer(jfk.reference, t.text) <= 0.2, t.text
        words_inside(t, jfk.duration)
        assert t.language == "en"
        assert t.model_id == "test/live"
        americans = next(w for w in t.words if w.word.lower().startswith("americans"))
        assert 1.0 < americans.start < 2.6
    (received,) = deepgram.received
    assert received.path == "/v1/listen"
    assert received.headers["authorization"] == f"Token {DG_KEY}"
    assert received.query == [
        ("model", "nova-3"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("punctuate", "true"),
        ("smart_format", "true"),
        ("language", "en"),
    ]
    assert deepgram.controls[-2:] == ["Finalize", "CloseStream"]
    finals = [m for m in deepgram.sent if m.get("is_final")]
    assert len(finals) >= (4 if endpointing else 1)
    assert any(m.get("from_finalize") for m in finals)


async def test_deepgram_language_and_vocabulary(deepgram: LiveVendor, dg: ProviderConfig, harvard: Speech) -> None:
    options = TranscriptionOptions(language=None, prompts=("figures",))
    async with decoding(DeepgramLiveConnector(dg, "nova-2"), options) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        t = await decoder.settle(0.0, harvard.duration)
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    words_inside(t, harvard.duration)
    assert t.language == "en"  # Deepgram's multilingual model names it
    (received,) = deepgram.received
    assert received.params("language") == ["multi"]
    assert received.params("keywords") == ["figures:2"]
    assert received.params("keyterm") == []


async def test_deepgram_keepalive_holds_an_idle_socket(
    deepgram: LiveVendor, dg: ProviderConfig, harvard: Speech
) -> None:
    deepgram.idle_timeout = 0.8
    async with decoding(DeepgramLiveConnector(dg, "nova-3", keepalive_interval=0.2)) as (decoder, _):
        await stream(decoder, harvard.audio[:SAMPLE_RATE], pace=0.0)
        await asyncio.sleep(1.5)
        assert "KeepAlive" in deepgram.controls
        t = await decoder.settle(0.0, 1.0)
        assert "drop" in t.text.lower()


async def test_deepgram_closes_a_silent_socket(deepgram: LiveVendor, dg: ProviderConfig, harvard: Speech) -> None:
    deepgram.idle_timeout = 0.5
    async with decoding(DeepgramLiveConnector(dg, "nova-3", keepalive_interval=None)) as (decoder, _):
        await stream(decoder, harvard.audio[:SAMPLE_RATE], pace=0.0)
        error = await failed(decoder)
        assert "NET-0001" in error.message
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(harvard.audio[:CHUNK]))


async def test_deepgram_refused_key(deepgram: LiveVendor, settings: Settings, dg: ProviderConfig) -> None:
    wrong = provider(settings, "deepgram", "dg-wrong-key", dg.base_url)
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_DEEPGRAM_API_KEY"):
        await DeepgramLiveConnector(wrong, "nova-3").connect(EN)
    assert deepgram.received[0].status == 401


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, ProviderUnauthorized), (403, ProviderUnauthorized), (429, ProviderRateLimited), (503, ProviderError)],
)
async def test_deepgram_refused_handshake(
    deepgram: LiveVendor, dg: ProviderConfig, status: int, error: type[ProviderError]
) -> None:
    deepgram.script_live(LiveFault(status=status))
    with pytest.raises(error) as raised:
        await DeepgramLiveConnector(dg, "nova-3").connect(EN)
    assert type(raised.value) is error


async def test_deepgram_dropped_connection(deepgram: LiveVendor, dg: ProviderConfig, jfk: Speech) -> None:
    deepgram.script_live(LiveFault(drop_after=2.0))
    async with decoding(DeepgramLiveConnector(dg, "nova-3")) as (decoder, _):
        with contextlib.suppress(ProviderError):
            await stream(decoder, jfk.audio)
        await failed(decoder)
        with pytest.raises(ProviderError):
            decoder.draft(0.0, 1.0)
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(jfk.audio[:CHUNK]))
        with pytest.raises(ProviderError):
            await decoder.settle(0.0, 3.0)


async def test_unreachable_or_silent_vendor(settings: Settings) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = provider(settings, "deepgram", DG_KEY, f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as raised:
        await DeepgramLiveConnector(unreachable, "nova-3").connect(EN)
    assert type(raised.value) is ProviderError
    with socket.socket() as mute:  # accepts TCP (the kernel's backlog) but never answers the upgrade
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)
        silent = provider(settings, "deepgram", DG_KEY, f"http://127.0.0.1:{mute.getsockname()[1]}", timeout=0.5)
        with pytest.raises(ProviderTimeout):
            await DeepgramLiveConnector(silent, "nova-3").connect(EN)


# -- AssemblyAI -------------------------------------------------------------------------------------------------------


def test_assemblyai_streaming_host() -> None:
    assert streaming_url("https://api.assemblyai.com") == "wss://streaming.assemblyai.com/v3/ws"
    assert streaming_url("https://api.eu.assemblyai.com/") == "wss://streaming.eu.assemblyai.com/v3/ws"
    assert streaming_url("http://127.0.0.1:8123", [("a", "b c")]) == "ws://127.0.0.1:8123/v3/ws?a=b+c"
    assert streaming_url("https://gateway.example/aai") == "wss://gateway.example/aai/v3/ws"
    assert speech_model("universal-streaming-multilingual", "en") == "universal-streaming-multilingual"
    assert speech_model("universal-3-pro", None) == "u3-rt-pro"
    assert speech_model("universal-2", "en") == "universal-streaming-english"
    assert speech_model("universal-2", "es") == "universal-streaming-multilingual"


@pytest.mark.parametrize("turn_silence", [3600, 400], ids=["forced-turn", "vendor-turns"])
async def test_assemblyai_streams_real_speech(
    assemblyai: LiveVendor, aai: ProviderConfig, jfk: Speech, turn_silence: int
) -> None:
    """One turn ended by ForceEndpoint, or (400 ms) the vendor ending turns at the speech's pauses by itself."""
    options = TranscriptionOptions(language="en", prompts=("Americans",))
    connector = AssemblyAILiveConnector(aai, "universal-2", turn_silence=turn_silence)
    async with decoding(connector, options, endpoint_grace=0.3) as (decoder, _):
        growing(await stream(decoder, jfk.audio))
        await caught_up(assemblyai)
        t = await decoder.settle(0.0, jfk.duration)
        assert wer(jfk.reference, t.text) <= 0.2, t.text
        words_inside(t, jfk.duration)
        assert t.language == "en"
        assert t.text[0].isupper()
        assert t.text.endswith(".")
        americans = next(w for w in t.words if w.word.lower().startswith("americans"))
        assert 1.0 < americans.start < 2.6
    (received,) = assemblyai.received
    assert received.path == "/v3/ws"
    assert received.headers["authorization"] == aai_fake.API_KEY
    assert received.query == [
        ("sample_rate", "16000"),
        ("encoding", "pcm_s16le"),
        ("format_turns", "true"),
        ("speech_model", "universal-streaming-english"),
        ("end_of_turn_confidence_threshold", "1"),
        ("max_turn_silence", str(turn_silence)),
        ("keyterms_prompt", json.dumps(["Americans"])),
    ]
    assert assemblyai.controls[-2:] == ["ForceEndpoint", "Terminate"]
    ends = [m for m in assemblyai.sent if m.get("end_of_turn") and m.get("turn_is_formatted")]
    assert len(ends) >= (4 if turn_silence == 400 else 1)
    assert assemblyai.sent[-1]["type"] == "Termination"


async def test_assemblyai_rechunks_and_keeps_stream_time(
    assemblyai: LiveVendor, aai: ProviderConfig, harvard: Speech
) -> None:
    """20 ms chunks are re-cut to the vendor's 50-1000 ms; short tails are padded at each finalize, and word times
    stay those of voxgate's audio however much padding the vendor heard."""
    connector = AssemblyAILiveConnector(aai, "universal-streaming-multilingual")
    small = SAMPLE_RATE // 50  # 20 ms
    silence = np.zeros(SAMPLE_RATE * 9 // 100, dtype=np.float32)  # 90 ms: 60 ms sent, 30 ms padded to 50 ms
    async with decoding(connector, TranscriptionOptions(), endpoint_grace=0.15) as (decoder, connection):
        assert isinstance(connection, AssemblyAILiveConnection)
        lead = 0.0
        for _ in range(8):  # 8 x 20 ms of padding the vendor hears and voxgate's times must skip
            await stream(decoder, silence, start=lead, chunk=small, pace=0.0)
            lead += len(silence) / SAMPLE_RATE
            assert (await decoder.settle(0.0, lead)).words == ()  # an empty forced turn, settled after the grace
        connection.endpoint_grace = 1.0  # speech: the words are on their way
        await stream(decoder, harvard.audio, start=lead, chunk=small, pace=0.0)
        t = await decoder.settle(lead, harvard.duration)
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    words_inside(t, harvard.duration)
    assert t.language == "en"  # detected: the session asked for language_detection
    received = assemblyai.received[0]
    assert received.params("speech_model") == ["universal-streaming-multilingual"]
    assert received.params("language_detection") == ["true"]
    assert assemblyai.controls.count("ForceEndpoint") == 9
    # The vendor heard the sentence 160 ms later than voxgate sent it; the same sentence streamed alone starts at the
    # same time once the lead is taken off.
    alone = await _plain_first_word(connector, harvard)
    assert abs(t.words[0].start - alone) < 0.02, (t.words[0].start, alone)


async def _plain_first_word(connector: AssemblyAILiveConnector, speech: Speech) -> float:
    """Where the first word of ``speech`` starts when it is streamed alone."""
    async with decoding(connector, TranscriptionOptions()) as (decoder, _):
        await stream(decoder, speech.audio, pace=0.0)
        return (await decoder.settle(0.0, speech.duration)).words[0].start


async def test_assemblyai_unformatted_turns(assemblyai: LiveVendor, aai: ProviderConfig, harvard: Speech) -> None:
    """``format_turns=false``: runs of ``word_is_final`` words are final as they come, unformatted."""
    connector = AssemblyAILiveConnector(aai, "universal-2", format_turns=False)
    assemblyai.interim_every = 0.5
    async with decoding(connector) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.05)
        t = await decoder.settle(0.0, harvard.duration)
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    assert t.text == " ".join(plain(w) for w in t.text.split())
    words_inside(t, harvard.duration)
    assert assemblyai.received[0].params("format_turns") == ["false"]
    assert any(w["word_is_final"] for m in assemblyai.sent if m.get("type") == "Turn" for w in m["words"])
    assert not any(m.get("turn_is_formatted") for m in assemblyai.sent)


async def test_assemblyai_turn_without_formatted_copy(
    assemblyai: aai_fake.AssemblyAIVendor, aai: ProviderConfig, harvard: Speech
) -> None:
    """A formatted copy that never comes: the unformatted end of turn is reported after ``format_wait``."""
    assemblyai.formats_turns = False
    async with decoding(AssemblyAILiveConnector(aai, "universal-2"), format_wait=0.3) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        started = time.monotonic()
        t = await decoder.settle(0.0, harvard.duration)
        assert time.monotonic() - started >= 0.3
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    assert t.text == " ".join(plain(w) for w in t.text.split())
    assert not any(m.get("turn_is_formatted") for m in assemblyai.sent)


async def test_assemblyai_refused_key(assemblyai: LiveVendor, settings: Settings, aai: ProviderConfig) -> None:
    wrong = provider(settings, "assemblyai", "aai-wrong-key", aai.base_url)
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_ASSEMBLYAI_API_KEY"):
        await AssemblyAILiveConnector(wrong, "universal-2").connect(EN)
    assert assemblyai.received[0].status == 101  # accepted, then closed 1008 as AssemblyAI does
    assemblyai.script_live(LiveFault(status=401))
    with pytest.raises(ProviderUnauthorized):
        await AssemblyAILiveConnector(aai, "universal-2").connect(EN)
    assert assemblyai.received[1].status == 401


async def test_assemblyai_dropped_connection(assemblyai: LiveVendor, aai: ProviderConfig, jfk: Speech) -> None:
    assemblyai.script_live(LiveFault(drop_after=2.0))
    async with decoding(AssemblyAILiveConnector(aai, "universal-2")) as (decoder, _):
        with contextlib.suppress(ProviderError):
            await stream(decoder, jfk.audio)
        error = await failed(decoder)
        assert "1011" in error.message
        with pytest.raises(ProviderError):
            await decoder.settle(0.0, 3.0)
