"""OpenAI's Realtime transcription socket through voxgate's connector and :class:`LiveDecoder`, against a fake that
transcribes.

Real speech (``en/jfk.flac``) is streamed in 100 ms LINEAR16 chunks; the connector resamples it to 24 kHz and sends
base64 ``input_audio_buffer.append`` events; the fake on loopback checks the handshake and the session update,
resamples back to 16 kHz and transcribes each commit with voxgate's local tiny.en (deltas, then completed), so
drafts, finals and word times (spread over the committed span) are real. How every live connector fails (a refused
key or handshake, a dropped or silent socket, an unreachable vendor) is in test_contract.py.
"""

from __future__ import annotations

import asyncio
import itertools

from tests.engines.fake_vendors.deepgram_live_server import LiveVendor
from tests.engines.harness import (
    CHUNK,
    OPENAI_LIVE,
    Live,
    Speech,
    decoding,
    live_fixture,
    settled,
    stream,
    words_inside,
)
from tests.speech import wer
from voxgate.engines.openai.live import OpenAILiveConnector, spread, streaming_url
from voxgate.types import TranscriptionOptions

LOCAL = "whisper/tiny.en"

openai = live_fixture(OPENAI_LIVE, LOCAL)


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


async def test_openai_streams_real_speech(openai: Live[LiveVendor], jfk_speech: Speech) -> None:
    options = TranscriptionOptions(language="en", prompts=("country",), prompt="A speech.")
    async with decoding(OpenAILiveConnector(openai.config(), "gpt-4o-transcribe"), options) as (decoder, _):
        await stream(decoder, jfk_speech.audio)
        assert decoder.draft(0.0, jfk_speech.duration).text == ""  # nothing is transcribed before a commit
        settling = asyncio.create_task(decoder.settle(0.0, jfk_speech.duration))
        drafts: list[str] = []
        while not settling.done():
            draft = decoder.draft(0.0, jfk_speech.duration).text
            if draft and draft not in drafts:
                drafts.append(draft)
            await asyncio.sleep(0.005)
        t = await settling
        assert drafts, "no draft while the transcript arrived"
        assert len(drafts[0].split()) < len(t.text.split()), drafts
        settled(t, jfk_speech)
        # nothing new: settled at once, no empty commit
        again = await decoder.settle(0.0, jfk_speech.duration)
        assert again.text == t.text
    (received,) = openai.vendor.received
    assert received.path == "/v1/realtime"
    assert ("intent", "transcription") in received.query
    assert received.headers["authorization"] == f"Bearer {OPENAI_LIVE.key}"
    assert received.headers["openai-beta"] == "realtime=v1"
    assert openai.vendor.sessions == [
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
    assert openai.vendor.controls.count("input_audio_buffer.commit") == 1
    assert not [m for m in openai.vendor.sent if m["type"] == "error"]


async def test_openai_two_turns(openai: Live[LiveVendor], jfk_speech: Speech) -> None:
    half = len(jfk_speech.audio) // 2 // CHUNK * CHUNK
    async with decoding(OpenAILiveConnector(openai.config(), "whisper-1")) as (decoder, _):
        await stream(decoder, jfk_speech.audio[:half], pace=0.0)
        first = await decoder.settle(0.0, half / 16000)
        await stream(decoder, jfk_speech.audio[half:], start=half / 16000, pace=0.0)
        second = await decoder.settle(half / 16000, jfk_speech.duration - half / 16000)
        words_inside(first, half / 16000)
        words_inside(second, jfk_speech.duration - half / 16000)
        assert wer(jfk_speech.reference, f"{first.text} {second.text}") <= 0.35, (first.text, second.text)
    assert openai.vendor.sessions[0]["input_audio_transcription"] == {"model": "whisper-1", "language": "en"}
    assert openai.vendor.controls.count("input_audio_buffer.commit") == 2
