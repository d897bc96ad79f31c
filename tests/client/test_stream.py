"""The streaming client against the real live server: real speech, the packaged tiny.en model, real turn detection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import SecretStr, ValidationError

from tests.client import TINY, closed_port_url
from tests.conftest import LiveServer
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.client import (
    AsyncStream,
    EndOfTurnMessage,
    ResultMessage,
    SpeechStartedMessage,
    SpeechStoppedMessage,
    StreamResult,
    StreamTranscription,
    TurnDetection,
    TurnMode,
    UsageMessage,
    VoxgateClientError,
    VoxgateConnectionError,
    connect,
    parse_server_message,
    stream_file,
    stream_url,
)
from voxgate.config import Settings
from voxgate.errors import AudioDecodeError
from voxgate.protocol.ws import EndTurnReason
from voxgate.server.app import create_app
from voxgate.service import Service

KEY = "s3cret-key"


def is_final(message: StreamResult) -> bool:
    return isinstance(message, ResultMessage) and message.result.transcription.is_final


def finals(messages: list[StreamResult]) -> list[StreamTranscription]:
    return [m.result.transcription for m in messages if isinstance(m, ResultMessage) and is_final(m)]


def joined(messages: list[StreamResult]) -> str:
    return " ".join(t.transcript for t in sorted(finals(messages), key=lambda t: t.turn_index))


def chunks(audio: npt.NDArray[np.float32], size: int = 1600) -> Iterator[npt.NDArray[np.float32]]:
    for start in range(0, audio.size, size):
        yield audio[start : start + size]


async def collect(stream: AsyncStream) -> list[StreamResult]:
    return [message async for message in stream]


async def collect_file(url: str, path: Path, **kwargs: object) -> list[StreamResult]:
    return [message async for message in stream_file(url, path, **kwargs)]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def keyed_server(settings: Settings) -> Iterator[LiveServer]:
    """A second live server that requires an API key (its own service: the stream route reads the service's keys)."""
    keyed = Settings(home=settings.home, preload=[], cpu_threads=settings.cpu_threads, api_keys=[SecretStr(KEY)])
    service = Service(keyed)
    with LiveServer(create_app(keyed, service=service)) as server:
        yield server
    service.close()


# -- whole files ----------------------------------------------------------------------------------------------------


async def test_realtime_stream_gives_partials_then_an_accurate_final(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk1_snt1.wav"
    arrivals: list[tuple[float, StreamResult]] = []
    sent: list[float] = []
    started = time.monotonic()
    async for message in stream_file(
        live_server.url, clip, realtime=True, model_id=TINY, partial_interval_ms=300, on_progress=sent.append
    ):
        arrivals.append((time.monotonic() - started, message))
    wall = time.monotonic() - started
    messages = [m for _, m in arrivals]

    # Paced at real time: the 2.87 s clip took at least that long to send, in 100 ms steps.
    assert wall >= 2.7
    assert sent[-1] == pytest.approx(2.87, abs=0.01)
    assert np.allclose(np.diff(sent[:-1]), 0.1)

    (final,) = finals(messages)
    assert wer(reference(data, "en/spk1_snt1.wav"), final.transcript) <= 0.2
    assert final.turn_index == 0
    assert 0.0 <= final.start_time_seconds < 0.5
    assert 2.0 < final.end_time_seconds <= 2.87 + 0.05
    assert final.word_timestamps
    assert final.word_timestamps[0].start_time_seconds < final.word_timestamps[-1].end_time_seconds

    final_at = next(i for i, m in enumerate(messages) if is_final(m))
    partials = [
        m.result.transcription
        for m in messages[:final_at]
        if isinstance(m, ResultMessage) and not m.result.transcription.is_final
    ]
    assert len(partials) >= 2, messages
    assert all(p.turn_index == 0 for p in partials)
    # Partials cover a growing stretch of the stream, and arrive while the audio is still being sent.
    assert [p.end_time_seconds for p in partials] == sorted(p.end_time_seconds for p in partials)
    first_partial_at = next(t for t, m in arrivals if isinstance(m, ResultMessage))
    assert first_partial_at < 2.87
    assert isinstance(messages[0], SpeechStartedMessage)


async def test_fast_stream_of_a_long_file(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "jfk.flac"
    started = time.monotonic()
    messages = await collect_file(live_server.url, clip, realtime=False, model_id=TINY, language="en")
    assert time.monotonic() - started < 11.0  # faster than real time: the audio was not paced

    assert wer(reference(data, "en/jfk.flac"), joined(messages)) <= 0.2
    results = finals(messages)
    assert [t.turn_index for t in results] == list(range(len(results)))
    for t in results:
        assert 0.0 <= t.start_time_seconds < t.end_time_seconds <= 11.0 + 0.05
        assert t.word_timestamps
        for w in t.word_timestamps:
            assert t.start_time_seconds - 0.5 <= w.start_time_seconds <= t.end_time_seconds + 0.5
    # Every turn is closed by one endOfTurn: the server's turn detection (default: semantic), or closeStream for a
    # turn still open at the end; where turns split depends on timing, so only that much is certain.
    ends = [m.end_of_turn for m in messages if isinstance(m, EndOfTurnMessage)]
    assert [e.turn_index for e in ends] == [t.turn_index for t in results]
    allowed = {EndTurnReason.SEMANTIC, EndTurnReason.SILENCE, EndTurnReason.CLOSE}
    assert {e.reason for e in ends} <= allowed


async def test_manual_turns_over_connect(live_server: LiveServer, data: Path) -> None:
    first = decode(data / "en" / "spk1_snt1.wav")
    second = decode(data / "en" / "spk2_snt2.wav")
    async with connect(live_server.url, model_id=TINY, turn_detection={"mode": "manual"}) as stream:
        assert stream.config.turn_detection.mode is TurnMode.MANUAL
        receiving = asyncio.create_task(collect(stream))
        for chunk in chunks(first):
            await stream.send_float(chunk)
        await stream.end_turn()
        for chunk in chunks(second):
            await stream.send_audio((chunk * 32767).astype("<i2").tobytes())
        await stream.close_stream()
        messages = await asyncio.wait_for(receiving, timeout=20)

    one, two = finals(messages)
    assert (one.turn_index, two.turn_index) == (0, 1)
    assert wer(reference(data, "en/spk1_snt1.wav"), one.transcript) <= 0.2
    assert wer(reference(data, "en/spk2_snt2.wav"), two.transcript) <= 0.2
    # Times are stream-relative: the second turn starts after the first clip's 2.87 s.
    assert one.end_time_seconds <= 2.87 + 0.05
    assert 2.87 - 0.05 <= two.start_time_seconds < two.end_time_seconds <= 2.87 + 1.76 + 0.05
    reasons = [m.end_of_turn.reason for m in messages if isinstance(m, EndOfTurnMessage)]
    assert reasons == [EndTurnReason.CLIENT, EndTurnReason.CLOSE]


async def test_breaking_out_early_closes_cleanly(live_server: LiveServer, data: Path) -> None:
    generator = stream_file(live_server.url, data / "en" / "jfk.flac", realtime=True, model_id=TINY)
    first = await anext(generator)
    assert isinstance(first, SpeechStartedMessage)
    await generator.aclose()  # cancels the sender and closes the socket; nothing left running or unretrieved


# -- errors -----------------------------------------------------------------------------------------------------------


async def test_unknown_model_raises_model_not_found(live_server: LiveServer, data: Path) -> None:
    with pytest.raises(VoxgateClientError) as info:
        await collect_file(live_server.url, data / "en" / "spk1_snt1.wav", realtime=False, model_id="nope/x")
    assert info.value.code == "model_not_found"
    assert "nope" in info.value.message
    assert info.value.status == 1008


async def test_error_found_while_sending(live_server: LiveServer) -> None:
    """A sender that never receives still learns the server's reason when the socket closes under it."""

    async def send_only(model_id: str, language: str) -> None:
        async with connect(live_server.url, model_id=model_id, language=language) as stream:
            for _ in range(200):
                await stream.send_float(np.zeros(1600, dtype=np.float32))
                await asyncio.sleep(0.01)

    with pytest.raises(VoxgateClientError) as info:
        await send_only(model_id=TINY, language="de")
    assert info.value.code == "invalid_argument"
    assert "language 'de'" in info.value.message


async def test_api_key(keyed_server: LiveServer) -> None:
    for key in (None, "wrong"):
        with pytest.raises(VoxgateClientError) as info:
            async with connect(keyed_server.ws_url, key, model_id=TINY) as stream:
                await collect(stream)
        assert info.value.code == "unauthenticated"
    # The right key gets past auth to the next check.
    with pytest.raises(VoxgateClientError) as info:
        async with connect(keyed_server.ws_url, KEY, model_id="nope/x") as stream:
            await collect(stream)
    assert info.value.code == "model_not_found"


async def test_connection_failure() -> None:
    with pytest.raises(VoxgateConnectionError) as info:
        async with connect(closed_port_url()):
            pass
    assert info.value.code == "connection_failed"


async def test_undecodable_file_fails_before_connecting(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 64)
    with pytest.raises(AudioDecodeError):
        await collect_file(closed_port_url(), junk, realtime=False)


async def test_bad_config_fails_before_connecting() -> None:
    with pytest.raises(ValidationError):
        async with connect(closed_port_url(), sample_rate=4000):
            pass
    with pytest.raises(ValidationError):
        async with connect(closed_port_url(), turn_detection={"mode": "telepathic"}):
            pass


# -- pieces -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8000", "ws://h:8000/stt/v1/transcribe:streamBidirectional"),
        ("https://h/", "wss://h/stt/v1/transcribe:streamBidirectional"),
        ("ws://h:1/stt/v1/transcribe:streamBidirectional", "ws://h:1/stt/v1/transcribe:streamBidirectional"),
        ("h:8000", "ws://h:8000/stt/v1/transcribe:streamBidirectional"),
        ("https://h/prefix", "wss://h/prefix/stt/v1/transcribe:streamBidirectional"),
    ],
)
def test_stream_url(url: str, expected: str) -> None:
    assert stream_url(url) == expected


def test_stream_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="ftp"):
        stream_url("ftp://h")


def test_parse_server_message() -> None:
    message = parse_server_message('{"endOfTurn": {"timeSeconds": 1.5, "turnIndex": 2, "reason": "semantic"}}')
    assert isinstance(message, EndOfTurnMessage)
    assert message.end_of_turn.reason is EndTurnReason.SEMANTIC
    assert parse_server_message('{"voiceProfile": {}}') is None  # a newer server's message: skipped, not fatal
    assert parse_server_message('{"result": {"somethingNew": {}}}') is None
    started = parse_server_message(
        '{"result": {"speechStarted": {"startTimeMs": 320, "confidence": 0.91, "timeSeconds": 0.32, "turnIndex": 0}}}'
    )
    assert isinstance(started, SpeechStartedMessage)
    assert (started.result.speech_started.start_time_ms, started.result.speech_started.confidence) == (320, 0.91)
    stopped = parse_server_message(
        '{"result": {"speechStopped": {"silenceDurationMs": 256, "timeSeconds": 2.9, "turnIndex": 0}}}'
    )
    assert isinstance(stopped, SpeechStoppedMessage)
    assert stopped.result.speech_stopped.silence_duration_ms == 256
    usage = parse_server_message('{"result": {"usage": {"transcribedAudioMs": 3520, "modelId": "whisper/base"}}}')
    assert isinstance(usage, UsageMessage)
    assert usage.result.usage.transcribed_audio_ms == 3520
    for junk in ("not json", "[1, 2]", '{"result": {"transcription": {"transcript": 3}}}'):
        with pytest.raises(VoxgateClientError) as info:
            parse_server_message(junk)
        assert info.value.code == "invalid_response"


def test_turn_detection_accepts_a_model_or_a_dict() -> None:
    from voxgate.client.stream import build_config

    config = build_config(turn_detection=TurnDetection(mode=TurnMode.VAD, silence_ms=400))
    assert config.turn_detection.silence_ms == 400
    config = build_config(turn_detection={"mode": "automatic", "threshold": 0.3}, prompts="voxgate")
    assert config.turn_detection.mode is TurnMode.SEMANTIC
    assert config.prompts == ["voxgate"]
    wire = config.model_dump(by_alias=True, exclude_unset=True)
    assert wire["turnDetection"] == {"mode": "semantic", "threshold": 0.3}
    assert "modelId" not in wire  # unset options stay unset: the server's defaults apply
