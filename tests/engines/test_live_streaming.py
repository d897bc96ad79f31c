"""Deepgram's and AssemblyAI's live sockets, through voxgate's connectors and :class:`LiveDecoder`, against fakes.

Real speech (``en/jfk.flac``, a Harvard sentence) is streamed as LINEAR16 chunks into each connector; the fake vendor
on loopback checks the handshake as the vendor does and transcribes what it hears with voxgate's local tiny.en, so
interim drafts, finals and word times are real: the text must grow while audio arrives, the settled text must be
within WER 0.2 of the reference with word times inside the audio. How every live connector fails (a refused key or
handshake, a dropped or silent socket, an unreachable vendor) is in test_contract.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from tests.engines.fake_vendors.assemblyai_live_server import AssemblyAIVendor
from tests.engines.fake_vendors.deepgram_live_server import LiveVendor, plain
from tests.engines.harness import (
    ASSEMBLYAI_LIVE,
    DEEPGRAM_LIVE,
    Live,
    Speech,
    caught_up,
    decoding,
    growing,
    live_fixture,
    settled,
    stream,
    words_inside,
)
from tests.speech import wer
from voxgate.engines.assemblyai.live import AssemblyAILiveConnection, AssemblyAILiveConnector, streaming_url
from voxgate.engines.assemblyai.wire import speech_model
from voxgate.engines.deepgram.live import DeepgramLiveConnector
from voxgate.types import SAMPLE_RATE, AssemblyAIOptions, DeepgramOptions, TranscriptionOptions

LOCAL = "whisper/tiny.en"

deepgram = live_fixture(DEEPGRAM_LIVE, LOCAL)
assemblyai = live_fixture(ASSEMBLYAI_LIVE, LOCAL)


# -- Deepgram ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpointing", [None, 0.4], ids=["finalize", "endpointing"])
async def test_deepgram_streams_real_speech(
    deepgram: Live[LiveVendor], jfk_speech: Speech, endpointing: float | None
) -> None:
    deepgram.vendor.endpoint_silence = endpointing  # Deepgram's own finals at pauses, besides those Finalize asks for
    async with decoding(DeepgramLiveConnector(deepgram.config(), "nova-3")) as (decoder, _):
        growing(await stream(decoder, jfk_speech.audio))
        t = await decoder.settle(0.0, jfk_speech.duration)
        settled(t, jfk_speech)
        americans = next(w for w in t.words if w.word.lower().startswith("americans"))
        assert 1.0 < americans.start < 2.6
    (received,) = deepgram.vendor.received
    assert received.path == "/v1/listen"
    assert received.headers["authorization"] == f"Token {DEEPGRAM_LIVE.key}"
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
    assert deepgram.vendor.controls[-2:] == ["Finalize", "CloseStream"]
    finals = [m for m in deepgram.vendor.sent if m.get("is_final")]
    assert len(finals) >= (4 if endpointing else 1)
    assert any(m.get("from_finalize") for m in finals)


async def test_deepgram_language_and_vocabulary(deepgram: Live[LiveVendor], harvard: Speech) -> None:
    options = TranscriptionOptions(language=None, prompts=("figures",))
    async with decoding(DeepgramLiveConnector(deepgram.config(), "nova-2"), options) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        t = await decoder.settle(0.0, harvard.duration)
    settled(t, harvard)  # in English: Deepgram's multilingual model names it
    (received,) = deepgram.vendor.received
    assert received.params("language") == ["multi"]
    assert received.params("keywords") == ["figures:2"]
    assert received.params("keyterm") == []


async def test_deepgram_keepalive_holds_an_idle_socket(deepgram: Live[LiveVendor], harvard: Speech) -> None:
    deepgram.vendor.idle_timeout = 0.8
    async with decoding(DeepgramLiveConnector(deepgram.config(), "nova-3", keepalive_interval=0.2)) as (decoder, _):
        await stream(decoder, harvard.audio[:SAMPLE_RATE], pace=0.0)
        await asyncio.sleep(1.5)
        assert "KeepAlive" in deepgram.vendor.controls
        t = await decoder.settle(0.0, 1.0)
        assert "drop" in t.text.lower()


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
    assemblyai: Live[AssemblyAIVendor], jfk_speech: Speech, turn_silence: int
) -> None:
    """One turn ended by ForceEndpoint, or (400 ms) the vendor ending turns at the speech's pauses by itself."""
    options = TranscriptionOptions(language="en", prompts=("Americans",))
    connector = AssemblyAILiveConnector(assemblyai.config(), "universal-2", turn_silence=turn_silence)
    async with decoding(connector, options, endpoint_grace=0.3) as (decoder, _):
        growing(await stream(decoder, jfk_speech.audio))
        await caught_up(assemblyai.vendor)
        t = await decoder.settle(0.0, jfk_speech.duration)
        settled(t, jfk_speech)
        assert t.text[0].isupper()
        assert t.text.endswith(".")
        americans = next(w for w in t.words if w.word.lower().startswith("americans"))
        assert 1.0 < americans.start < 2.6
    (received,) = assemblyai.vendor.received
    assert received.path == "/v3/ws"
    assert received.headers["authorization"] == ASSEMBLYAI_LIVE.key
    assert received.query == [
        ("sample_rate", "16000"),
        ("encoding", "pcm_s16le"),
        ("format_turns", "true"),
        ("speech_model", "universal-streaming-english"),
        ("end_of_turn_confidence_threshold", "1"),
        ("max_turn_silence", str(turn_silence)),
        ("keyterms_prompt", json.dumps(["Americans"])),
    ]
    assert assemblyai.vendor.controls[-2:] == ["ForceEndpoint", "Terminate"]
    ends = [m for m in assemblyai.vendor.sent if m.get("end_of_turn") and m.get("turn_is_formatted")]
    assert len(ends) >= (4 if turn_silence == 400 else 1)
    assert assemblyai.vendor.sent[-1]["type"] == "Termination"


async def test_assemblyai_rechunks_and_keeps_stream_time(assemblyai: Live[AssemblyAIVendor], harvard: Speech) -> None:
    """20 ms chunks are re-cut to the vendor's 50-1000 ms; short tails are padded at each finalize, and word times
    stay those of voxgate's audio however much padding the vendor heard."""
    connector = AssemblyAILiveConnector(assemblyai.config(), "universal-streaming-multilingual")
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
    settled(t, harvard)  # in English, detected: the session asked for language_detection
    received = assemblyai.vendor.received[0]
    assert received.params("speech_model") == ["universal-streaming-multilingual"]
    assert received.params("language_detection") == ["true"]
    assert assemblyai.vendor.controls.count("ForceEndpoint") == 9
    # The vendor heard the sentence 160 ms later than voxgate sent it; the same sentence streamed alone starts at the
    # same time once the lead is taken off.
    alone = await _plain_first_word(connector, harvard)
    assert abs(t.words[0].start - alone) < 0.02, (t.words[0].start, alone)


async def _plain_first_word(connector: AssemblyAILiveConnector, speech: Speech) -> float:
    """Where the first word of ``speech`` starts when it is streamed alone."""
    async with decoding(connector, TranscriptionOptions()) as (decoder, _):
        await stream(decoder, speech.audio, pace=0.0)
        return (await decoder.settle(0.0, speech.duration)).words[0].start


async def test_assemblyai_unformatted_turns(assemblyai: Live[AssemblyAIVendor], harvard: Speech) -> None:
    """``format_turns=false``: runs of ``word_is_final`` words are final as they come, unformatted."""
    connector = AssemblyAILiveConnector(assemblyai.config(), "universal-2", format_turns=False)
    assemblyai.vendor.interim_every = 0.5
    async with decoding(connector) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.05)
        t = await decoder.settle(0.0, harvard.duration)
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    assert t.text == " ".join(plain(w) for w in t.text.split())
    words_inside(t, harvard.duration)
    assert assemblyai.vendor.received[0].params("format_turns") == ["false"]
    assert any(w["word_is_final"] for m in assemblyai.vendor.sent if m.get("type") == "Turn" for w in m["words"])
    assert not any(m.get("turn_is_formatted") for m in assemblyai.vendor.sent)


async def test_assemblyai_turn_without_formatted_copy(assemblyai: Live[AssemblyAIVendor], harvard: Speech) -> None:
    """A formatted copy that never comes: the unformatted end of turn is reported after ``format_wait``."""
    assemblyai.vendor.formats_turns = False
    async with decoding(AssemblyAILiveConnector(assemblyai.config(), "universal-2"), format_wait=0.3) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        started = time.monotonic()
        t = await decoder.settle(0.0, harvard.duration)
        assert time.monotonic() - started >= 0.3
    assert wer(harvard.reference, t.text) <= 0.2, t.text
    assert t.text == " ".join(plain(w) for w in t.text.split())
    assert not any(m.get("turn_is_formatted") for m in assemblyai.vendor.sent)


# -- the reference's provider blocks on the live sockets -----------------------------------------------------------


async def test_deepgram_config_and_a_flux_id_on_the_live_socket(deepgram: Live[LiveVendor], harvard: Speech) -> None:
    block = DeepgramOptions(keyterms=("figures",), endpointing=0, filler_words=True, punctuate=False)
    options = TranscriptionOptions(vendor=block)
    async with decoding(DeepgramLiveConnector(deepgram.config(), "flux-general-multi"), options) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        t = await decoder.settle(0.0, harvard.duration)
    settled(t, harvard)
    (received,) = deepgram.vendor.received
    assert received.params("model") == ["nova-3"]  # Flux's own /v2/listen is not spoken: nova-3 serves its id
    assert received.params("language") == ["multi"]
    assert received.params("keyterm") == ["figures"]
    assert received.params("endpointing") == ["false"]
    assert received.params("filler_words") == ["true"]
    assert received.params("punctuate") == ["false"]
    assert received.params("smart_format") == ["true"]


async def test_assemblyai_config_reaches_the_socket_and_leaves_turns_to_voxgate(
    assemblyai: Live[AssemblyAIVendor], harvard: Speech
) -> None:
    options = TranscriptionOptions(language="en", vendor=AssemblyAIOptions(vad_threshold=0.3, prompt="Be exact."))
    connector = AssemblyAILiveConnector(assemblyai.config(), "u3-rt-pro")
    async with decoding(connector, options) as (decoder, _):
        await stream(decoder, harvard.audio, pace=0.0)
        t = await decoder.settle(0.0, harvard.duration)
    settled(t, harvard)
    (received,) = assemblyai.vendor.received
    assert received.params("speech_model") == ["u3-rt-pro"]
    assert received.params("vad_threshold") == ["0.3"]
    assert received.params("prompt") == ["Be exact."]
    # The vendor's own turn ends stay turned down: voxgate decides the turns (the block's silences shape those).
    assert received.params("end_of_turn_confidence_threshold") == ["1"]
    assert received.params("max_turn_silence") == ["3600"]
