"""OpenAI's Realtime transcription socket through voxgate's connector and :class:`LiveDecoder`, against a fake that
transcribes.

Real speech (``en/jfk.flac``) is streamed in 100 ms LINEAR16 chunks; the connector resamples it to 24 kHz and sends
base64 ``input_audio_buffer.append`` events; the fake on loopback checks the handshake and the session update,
resamples back to 16 kHz and transcribes each commit with voxgate's local tiny.en (deltas, then completed), so
drafts, finals, word times (spread over the committed span) and failures are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.engines.fake_vendors import openai_live_server as fake
from tests.engines.fake_vendors.deepgram_live_server import LiveFault
from tests.engines.test_live_streaming import CHUNK, EN, LOCAL, Speech, decoding, failed, provider, stream, words_inside
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import ProviderConfig, Settings
from voxgate.engines.openai_live import OpenAILiveConnector, spread, streaming_url
from voxgate.errors import ProviderError, ProviderUnauthorized
from voxgate.service import Service
from voxgate.types import TranscriptionOptions


@pytest.fixture(scope="module")
def jfk(data: Path) -> Speech:
    return Speech(decode(data / "en" / "jfk.flac"), reference(data, "en/jfk.flac"))


@pytest.fixture(scope="module")
def openai_fake(service: Service) -> Iterator[tuple[fake.OpenAILiveVendor, LiveServer]]:
    vendor = fake.OpenAILiveVendor(service.engine(LOCAL))
    with LiveServer(fake.create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture
def openai(openai_fake: tuple[fake.OpenAILiveVendor, LiveServer]) -> Iterator[fake.OpenAILiveVendor]:
    openai_fake[0].reset()
    yield openai_fake[0]
    openai_fake[0].reset()


@pytest.fixture
def oa(settings: Settings, openai_fake: tuple[fake.OpenAILiveVendor, LiveServer]) -> ProviderConfig:
    return provider(settings, "openai", fake.API_KEY, openai_fake[1].url + "/v1")


def test_streaming_host_and_word_spread() -> None:
    assert streaming_url("https://api.openai.com/v1") == "wss://api.openai.com/v1/realtime?intent=transcription"
    assert streaming_url("http://127.0.0.1:8123/v1") == "ws://127.0.0.1:8123/v1/realtime?intent=transcription"
    assert streaming_url("https://gateway.example/oa/") == "wss://gateway.example/oa/realtime?intent=transcription"
    words = spread(" ask not  what ", 1.0, 3.0)
    assert [w.word for w in words] == ["ask", "not", "what"]
    assert words[0].start == 1.0
    assert words[-1].end <= 3.0
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert spread("   ", 0.0, 1.0) == ()


async def test_openai_streams_real_speech(openai: fake.OpenAILiveVendor, oa: ProviderConfig, jfk: Speech) -> None:
    options = TranscriptionOptions(language="en", prompts=("country",), prompt="A speech.")
    async with decoding(OpenAILiveConnector(oa, "gpt-4o-transcribe"), options) as (decoder, _):
        await stream(decoder, jfk.audio)
        assert decoder.draft(0.0, jfk.duration).text == ""  # nothing is transcribed before a commit
        settling = asyncio.create_task(decoder.settle(0.0, jfk.duration))
        drafts: list[str] = []
        while not settling.done():
            draft = decoder.draft(0.0, jfk.duration).text
            if draft and draft not in drafts:
                drafts.append(draft)
            await asyncio.sleep(0.005)
        t = await settling
        assert drafts, "no draft while the transcript arrived"
        assert len(drafts[0].split()) < len(t.text.split()), drafts
        assert wer(jfk.reference, t.text) <= 0.2, t.text
        words_inside(t, jfk.duration)
        assert t.language == "en"
        assert t.model_id == "test/live"
        # nothing new: settled at once, no empty commit
        again = await decoder.settle(0.0, jfk.duration)
        assert again.text == t.text
    (received,) = openai.received
    assert received.path == "/v1/realtime"
    assert ("intent", "transcription") in received.query
    assert received.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert received.headers["openai-beta"] == "realtime=v1"
    assert openai.sessions == [
        {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {
                "model": "gpt-4o-transcribe",
                "prompt": "country A speech.",
                "language": "en",
            },
            "turn_detection": None,
        }
    ]
    assert openai.controls.count("input_audio_buffer.commit") == 1
    assert not [m for m in openai.sent if m["type"] == "error"]


async def test_openai_two_turns(openai: fake.OpenAILiveVendor, oa: ProviderConfig, jfk: Speech) -> None:
    half = len(jfk.audio) // 2 // CHUNK * CHUNK
    async with decoding(OpenAILiveConnector(oa, "whisper-1")) as (decoder, _):
        await stream(decoder, jfk.audio[:half], pace=0.0)
        first = await decoder.settle(0.0, half / 16000)
        await stream(decoder, jfk.audio[half:], start=half / 16000, pace=0.0)
        second = await decoder.settle(half / 16000, jfk.duration - half / 16000)
        words_inside(first, half / 16000)
        words_inside(second, jfk.duration - half / 16000)
        assert wer(jfk.reference, f"{first.text} {second.text}") <= 0.35, (first.text, second.text)
    assert openai.sessions[0]["input_audio_transcription"] == {"model": "whisper-1", "language": "en"}
    assert openai.controls.count("input_audio_buffer.commit") == 2


async def test_openai_refused_key(openai: fake.OpenAILiveVendor, settings: Settings, oa: ProviderConfig) -> None:
    wrong = provider(settings, "openai", "sk-wrong-key", oa.base_url)
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_OPENAI_API_KEY"):
        await OpenAILiveConnector(wrong, "gpt-4o-transcribe").connect(EN)
    assert openai.received[0].status == 401


async def test_openai_dropped_connection(openai: fake.OpenAILiveVendor, oa: ProviderConfig, jfk: Speech) -> None:
    openai.script_live(LiveFault(drop_after=2.0))
    async with decoding(OpenAILiveConnector(oa, "gpt-4o-transcribe")) as (decoder, _):
        with contextlib.suppress(ProviderError):
            await stream(decoder, jfk.audio)
        await failed(decoder)
        with pytest.raises(ProviderError):
            decoder.draft(0.0, 1.0)
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(jfk.audio[:CHUNK]))
        with pytest.raises(ProviderError):
            await decoder.settle(0.0, 3.0)


async def test_openai_error_event(openai: fake.OpenAILiveVendor, oa: ProviderConfig, jfk: Speech) -> None:
    openai.idle_timeout = 0.5
    async with decoding(OpenAILiveConnector(oa, "gpt-4o-transcribe")) as (decoder, _):
        await stream(decoder, jfk.audio[:CHUNK], pace=0.0)
        error = await failed(decoder)
        assert "session_expired" in error.message
