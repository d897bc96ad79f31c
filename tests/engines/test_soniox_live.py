"""Soniox's real-time socket through voxgate's connector and :class:`LiveDecoder`, against a fake that transcribes.

Real speech (``en/jfk.flac``) is streamed in 100 ms LINEAR16 chunks; the fake Soniox on loopback checks the
handshake and the configuration message and transcribes with voxgate's local tiny.en, sending sub-word tokens (a
finalised word split across two messages), so drafts, finals and word times are real. How every live connector
fails (a refused key or handshake, a dropped or silent socket, an unreachable vendor) is in test_contract.py.
"""

from __future__ import annotations

from tests.engines.fake_vendors.deepgram_live_server import LiveVendor
from tests.engines.harness import SONIOX_LIVE, Live, Speech, decoding, growing, live_fixture, settled, stream
from voxgate.engines.soniox.live import SonioxLiveConnector, realtime_model, streaming_url
from voxgate.types import SonioxOptions, TranscriptionOptions

LOCAL = "whisper/tiny.en"

soniox = live_fixture(SONIOX_LIVE, LOCAL)


def test_streaming_host_and_model() -> None:
    assert streaming_url("https://api.soniox.com") == "wss://stt-rt.soniox.com/transcribe-websocket"
    assert streaming_url("https://api.soniox.com/") == "wss://stt-rt.soniox.com/transcribe-websocket"
    assert streaming_url("http://127.0.0.1:8123") == "ws://127.0.0.1:8123/transcribe-websocket"
    assert streaming_url("https://gateway.example/sx") == "wss://gateway.example/sx/transcribe-websocket"
    assert realtime_model("stt-async-v3") == "stt-rt-v3"
    assert realtime_model("stt-rt-v3") == "stt-rt-v3"


async def test_soniox_streams_real_speech(soniox: Live[LiveVendor], jfk_speech: Speech) -> None:
    options = TranscriptionOptions(language="en", prompts=("country",))
    async with decoding(SonioxLiveConnector(soniox.config(), "stt-rt-v3"), options) as (decoder, _):
        growing(await stream(decoder, jfk_speech.audio))
        t = await decoder.settle(0.0, jfk_speech.duration)
        settled(t, jfk_speech)
        assert any(w.word.lower().startswith("country") for w in t.words), t.text  # split across two messages
    (received,) = soniox.vendor.received
    assert received.path == "/transcribe-websocket"
    assert received.headers["authorization"] == f"Bearer {SONIOX_LIVE.key}"
    assert soniox.vendor.sessions == [
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
    assert "finalize" in soniox.vendor.controls
    assert soniox.vendor.sent[-1].get("finished") is True  # the connector ended the audio on close
    assert any(t.get("text") == "<fin>" for m in soniox.vendor.sent for t in m.get("tokens", []))


async def test_soniox_config_on_the_real_time_socket(soniox: Live[LiveVendor], jfk_speech: Speech) -> None:
    block = SonioxOptions(
        language_hints=("en",), language_hints_strict=True, enable_endpoint_detection=True, max_endpoint_delay_ms=800,
        context_general=(("topic", "a speech"),), context_terms=("Americans",),
    )  # fmt: skip
    options = TranscriptionOptions(vendor=block)
    async with decoding(SonioxLiveConnector(soniox.config(), "stt-rt-v5"), options) as (decoder, _):
        await stream(decoder, jfk_speech.audio, pace=0.0)
        t = await decoder.settle(0.0, jfk_speech.duration)
        settled(t, jfk_speech)
    assert soniox.vendor.sessions == [
        {
            "model": "stt-rt-v5",
            "audio_format": "pcm_s16le",
            "sample_rate": 16000,
            "num_channels": 1,
            "enable_language_identification": True,
            "language_hints": ["en"],
            "language_hints_strict": True,
            "context": {"general": [{"key": "topic", "value": "a speech"}], "terms": ["Americans"]},
            "enable_endpoint_detection": True,
            "max_endpoint_delay_ms": 800,
        }
    ]
