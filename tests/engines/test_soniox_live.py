"""Soniox's real-time socket through voxgate's connector and :class:`LiveDecoder`, against a fake that transcribes.

Real speech (``en/jfk.flac``) is streamed in 100 ms LINEAR16 chunks; the fake Soniox on loopback checks the
handshake and the configuration message and transcribes with voxgate's local tiny.en, sending sub-word tokens (a
finalised word split across two messages), so drafts, finals, word times and failures are real.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.engines.fake_vendors import soniox_live_server as fake
from tests.engines.fake_vendors.deepgram_live_server import LiveFault
from tests.engines.test_live_streaming import (
    CHUNK,
    EN,
    LOCAL,
    Speech,
    decoding,
    failed,
    growing,
    provider,
    stream,
    words_inside,
)
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import ProviderConfig, Settings
from voxgate.engines.soniox_live import SonioxLiveConnector, realtime_model, streaming_url
from voxgate.errors import ProviderError, ProviderUnauthorized
from voxgate.service import Service
from voxgate.types import TranscriptionOptions


@pytest.fixture(scope="module")
def jfk(data: Path) -> Speech:
    return Speech(decode(data / "en" / "jfk.flac"), reference(data, "en/jfk.flac"))


@pytest.fixture(scope="module")
def soniox_fake(service: Service) -> Iterator[tuple[fake.SonioxLiveVendor, LiveServer]]:
    vendor = fake.SonioxLiveVendor(service.engine(LOCAL))
    with LiveServer(fake.create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture
def soniox(soniox_fake: tuple[fake.SonioxLiveVendor, LiveServer]) -> Iterator[fake.SonioxLiveVendor]:
    soniox_fake[0].reset()
    yield soniox_fake[0]
    soniox_fake[0].reset()


@pytest.fixture
def sx(settings: Settings, soniox_fake: tuple[fake.SonioxLiveVendor, LiveServer]) -> ProviderConfig:
    return provider(settings, "soniox", fake.API_KEY, soniox_fake[1].url)


def test_streaming_host_and_model() -> None:
    assert streaming_url("https://api.soniox.com") == "wss://stt-rt.soniox.com/transcribe-websocket"
    assert streaming_url("https://api.soniox.com/") == "wss://stt-rt.soniox.com/transcribe-websocket"
    assert streaming_url("http://127.0.0.1:8123") == "ws://127.0.0.1:8123/transcribe-websocket"
    assert streaming_url("https://gateway.example/sx") == "wss://gateway.example/sx/transcribe-websocket"
    assert realtime_model("stt-async-v3") == "stt-rt-v3"
    assert realtime_model("stt-rt-v3") == "stt-rt-v3"


async def test_soniox_streams_real_speech(soniox: fake.SonioxLiveVendor, sx: ProviderConfig, jfk: Speech) -> None:
    options = TranscriptionOptions(language="en", prompts=("country",))
    async with decoding(SonioxLiveConnector(sx, "stt-rt-v3"), options) as (decoder, _):
        growing(await stream(decoder, jfk.audio))
        t = await decoder.settle(0.0, jfk.duration)
        assert wer(jfk.reference, t.text) <= 0.2, t.text
        words_inside(t, jfk.duration)
        assert t.language == "en"
        assert t.model_id == "test/live"
        assert any(w.word.lower().startswith("country") for w in t.words), t.text  # split across two messages
    (received,) = soniox.received
    assert received.path == "/transcribe-websocket"
    assert received.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert soniox.configs == [
        {
            "model": "stt-rt-v3",
            "audio_format": "pcm_s16le",
            "sample_rate": 16000,
            "num_channels": 1,
            "enable_language_identification": True,
            "language_hints": ["en"],
            "context": {"terms": ["country"]},
        }
    ]
    assert "finalize" in soniox.controls
    assert soniox.sent[-1].get("finished") is True  # the connector ended the audio on close
    assert any(t.get("text") == "<fin>" for m in soniox.sent for t in m.get("tokens", []))


async def test_soniox_refused_key(soniox: fake.SonioxLiveVendor, settings: Settings, sx: ProviderConfig) -> None:
    wrong = provider(settings, "soniox", "soniox-wrong-key", sx.base_url)
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_SONIOX_API_KEY"):
        await SonioxLiveConnector(wrong, "stt-rt-v3").connect(EN)
    assert soniox.received[0].status == 401


async def test_soniox_dropped_connection(soniox: fake.SonioxLiveVendor, sx: ProviderConfig, jfk: Speech) -> None:
    soniox.script_live(LiveFault(drop_after=2.0))
    async with decoding(SonioxLiveConnector(sx, "stt-rt-v3")) as (decoder, _):
        with contextlib.suppress(ProviderError):
            await stream(decoder, jfk.audio)
        await failed(decoder)
        with pytest.raises(ProviderError):
            decoder.draft(0.0, 1.0)
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(jfk.audio[:CHUNK]))
        with pytest.raises(ProviderError):
            await decoder.settle(0.0, 3.0)


async def test_soniox_error_message(soniox: fake.SonioxLiveVendor, sx: ProviderConfig, jfk: Speech) -> None:
    soniox.idle_timeout = 0.5
    async with decoding(SonioxLiveConnector(sx, "stt-rt-v3", keepalive_interval=None)) as (decoder, _):
        await stream(decoder, jfk.audio[:CHUNK], pace=0.0)
        error = await failed(decoder)
        assert "408" in error.message
