"""``/stt/v1/transcribe:streamBidirectional`` end to end: the plain ``websockets`` client against real live servers,
the packaged Whisper models and real speech.

Servers with other limits (idle timeout, maximum stream length, chunk size, stream count, API keys, a faulty engine)
run on a :class:`Service` of their own with the same settings as their app (the route reads keys and stream limits
from the app's settings, ``max_streams`` from the service's); it shares the session service's loaded models
(:func:`tests.server.wsutil.fork_service`).

Some tests here pin server bugs found while writing them (now fixed): each asserts the right behaviour, so it starts to
XPASS, and fails, once the bug is fixed; then drop its marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.server.wsutil import (
    CLOSE_STREAM,
    END_TURN,
    TINY,
    Received,
    audio_frame,
    clip,
    config_frame,
    drain,
    expect_error,
    fork_service,
    mulaw_encode,
    open_stream,
    pcm16,
    send_all,
    send_pcm,
    silence,
    until_final,
    wait_for_streams,
)
from tests.speech import normalise, reference, wer
from voxgate.audio.pcm import resample
from voxgate.config import Settings
from voxgate.engines import registry
from voxgate.engines.base import Capabilities, Engine
from voxgate.server.app import create_app
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Transcript, TranscriptionOptions

KEY = "ws-test-key"
MANUAL = {"mode": "manual"}
StartServer = Callable[..., tuple[Service, LiveServer]]


@pytest.fixture
def start_server(service: Service) -> Iterator[StartServer]:
    """``start_server(*models, **settings)``: a live server on a fork of the session service with other settings."""
    with ExitStack() as stack:

        def start(*models: str, **settings: Any) -> tuple[Service, LiveServer]:
            svc = stack.enter_context(fork_service(service, *models, **settings))
            server = stack.enter_context(LiveServer(create_app(svc.settings, service=svc)))
            return svc, server

        yield start


def speech(data: Path, name: str) -> Audio:
    return clip(data / "en" / name)


async def manual_turn(server: LiveServer, audio: Audio, **config: Any) -> tuple[dict[str, Any], Received]:
    """Stream ``audio`` and 0.5 s of silence flat out in one manual turn; endTurn, the final, closeStream, close.

    The silence lets speech end before endTurn: ending a turn mid-speech and then closing is a bug of its own
    (see :func:`test_end_turn_mid_speech_then_close_stream`).
    """
    got = Received()
    async with open_stream(server, **config.pop("auth", {})) as ws:
        await ws.send(config_frame(turnDetection=MANUAL, **config))
        await send_pcm(ws, pcm16(audio, silence(0.5)))
        await ws.send(END_TURN)
        final = await until_final(ws, got)
        await ws.send(CLOSE_STREAM)
        await drain(ws, got)
    return final, got


def check_words(t: dict[str, Any], within: tuple[float, float]) -> None:
    words = t["wordTimestamps"]
    assert words, t
    for w in words:
        assert set(w) >= {"word", "startTimeSeconds", "endTimeSeconds"}, w
        assert within[0] - 0.05 <= w["startTimeSeconds"] <= w["endTimeSeconds"] <= within[1] + 0.05, (w, within)
    starts = [w["startTimeSeconds"] for w in words]
    assert starts == sorted(starts)
    assert t["startTimeSeconds"] == pytest.approx(words[0]["startTimeSeconds"], abs=0.01)
    assert t["endTimeSeconds"] == pytest.approx(words[-1]["endTimeSeconds"], abs=0.01)


# -- the happy paths -----------------------------------------------------------------------------------------------


async def test_manual_turn(live_server: LiveServer, data: Path) -> None:
    audio = speech(data, "spk1_snt2.wav")
    duration = len(audio) / SAMPLE_RATE + 0.5  # manual_turn sends 0.5 s of silence after the clip
    final, got = await manual_turn(live_server, audio)

    assert got.close_code == 1000
    assert not got.errors
    assert got.finals == [final]
    assert wer(reference(data, "en/spk1_snt2.wav"), final["transcript"]) <= 0.2
    assert final["turnIndex"] == 0
    assert 0.0 <= final["startTimeSeconds"] < 0.5
    assert 2.5 < final["endTimeSeconds"] <= 3.15 + 0.05
    check_words(final, (0.0, duration))
    assert normalise(" ".join(w["word"] for w in final["wordTimestamps"])) == normalise(final["transcript"])

    # Speech events, in order, with times; endOfTurn comes before the final it announces, the usage comes last.
    names = got.names
    events = [n for n in names if n in ("speechStarted", "speechStopped", "endOfTurn")]
    assert events == ["speechStarted", "speechStopped", "endOfTurn"], names
    (started,), (stopped,), (end,) = got.results("speechStarted"), got.results("speechStopped"), got.of("endOfTurn")
    assert all(e["turnIndex"] == 0 for e in (started, stopped, end))
    assert 0.0 <= started["timeSeconds"] < 0.5
    # The reference's fields: the start in ms, the VAD's confidence; the silence that stopped the speech.
    assert started["startTimeMs"] == round(started["timeSeconds"] * 1000)
    assert 0.5 <= started["confidence"] <= 1.0
    assert 2.8 < stopped["timeSeconds"] <= end["timeSeconds"]
    assert 200 <= stopped["silenceDurationMs"] <= 500  # at least the default pauseMs, measured in 32 ms frames
    assert end["reason"] == "client"
    assert end["timeSeconds"] == pytest.approx(duration, abs=0.01)  # endTurn came after all the audio
    assert names.index("endOfTurn") < got.messages.index({"result": {"transcription": final}})
    assert names[0] == "speechStarted"
    assert names[-1] == "usage"
    (usage,) = got.results("usage")
    assert usage == {"transcribedAudioMs": round(duration * 1000), "modelId": TINY}


async def test_two_turns_in_one_stream(live_server: LiveServer, data: Path) -> None:
    first, second = speech(data, "spk1_snt1.wav"), speech(data, "spk2_snt4.wav")
    offset = (len(first) / SAMPLE_RATE) + 1.5
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(turnDetection={"mode": "vad", "silenceMs": 700}))
        await send_pcm(ws, pcm16(first, silence(1.5), second, silence(1.5)))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)

    assert got.close_code == 1000, got.messages
    assert not got.errors, got.errors
    a, b = got.finals
    assert [a["turnIndex"], b["turnIndex"]] == [0, 1]
    assert wer(reference(data, "en/spk1_snt1.wav"), a["transcript"]) <= 0.2
    assert wer(reference(data, "en/spk2_snt4.wav"), b["transcript"]) <= 0.2
    assert 0.0 <= a["startTimeSeconds"] < a["endTimeSeconds"] <= offset
    assert a["endTimeSeconds"] < b["startTimeSeconds"] < b["endTimeSeconds"]
    assert b["startTimeSeconds"] >= offset - 0.35  # the second turn's words are in the second clip (0.3 s preroll)
    check_words(b, (offset - 0.35, offset + len(second) / SAMPLE_RATE + 1.5))
    ends = got.of("endOfTurn")
    assert [(e["turnIndex"], e["reason"]) for e in ends] == [(0, "silence"), (1, "silence")]
    assert ends[0]["timeSeconds"] < ends[1]["timeSeconds"]


async def test_eager_end_of_turn_then_the_final(live_server: LiveServer, data: Path) -> None:
    """Opt-in eager turns on real speech and the real turn model: an eager threshold of 0 sends the pause's
    transcript at once; a threshold of 1 leaves the end to the longest pause, whose final has the same words."""
    clip = speech(data, "spk1_snt1.wav")
    turn = {"mode": "semantic", "threshold": 1.0, "eagerThreshold": 0.0, "maxSilenceMs": 1500}
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(turnDetection=turn))
        await send_pcm(ws, pcm16(clip, silence(2.0)), speed=1.0)  # turns are checked at the pace of the audio
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)

    assert got.close_code == 1000, got.messages
    assert not got.errors, got.errors
    names = [next(iter(m)) if "result" not in m else next(iter(m["result"])) for m in got.messages]
    eager = got.of("eagerEndOfTurn")
    assert eager, names
    (final,) = got.finals
    last = eager[-1]  # each pause inside the sentence may send one; a turnResumed follows each but the last
    assert len(got.of("turnResumed")) == len(eager) - 1
    assert last["transcript"] == final["transcript"]
    assert wer(reference(data, "en/spk1_snt1.wav"), last["transcript"]) <= 0.2
    assert last["probability"] >= 0.0
    assert last["turnIndex"] == final["turnIndex"] == 0
    assert names.index("eagerEndOfTurn") < names.index("endOfTurn")
    (end,) = got.of("endOfTurn")
    assert end["reason"] == "silence"
    assert end["timeSeconds"] - last["timeSeconds"] >= 1.0  # the eager transcript came long before the turn ended


async def test_an_eager_threshold_at_or_above_the_threshold_is_refused(live_server: LiveServer) -> None:
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(turnDetection={"mode": "semantic", "threshold": 0.5, "eagerThreshold": 0.5}))
        got = await drain(ws)
    (error,) = got.errors
    assert error["code"] == "protocol_violation"
    assert "eagerThreshold" in error["message"]


async def test_diarized_stream_tags_each_final_with_its_speaker(live_server: LiveServer, data: Path) -> None:
    clips = [speech(data, name) for name in ("spk1_snt2.wav", "spk2_snt3.wav", "spk1_snt4.wav")]
    async with open_stream(live_server) as ws:
        await ws.send(
            config_frame(
                turnDetection={"mode": "vad", "silenceMs": 700},
                diarizationConfig={"enableSpeakerDiarization": True},
                voiceProfileConfig={"enableVoiceProfile": True},
            )
        )
        await send_pcm(ws, pcm16(*(part for c in clips for part in (c, silence(1.5)))))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)

    assert got.close_code == 1000, got.messages
    assert not got.errors, got.errors
    assert [f["speakerTag"] for f in got.finals] == [1, 2, 1]
    for final in got.finals:
        assert {w["speakerTag"] for w in final["wordTimestamps"]} == {final["speakerTag"]}
    assert all("speakerTag" not in p for p in got.partials)
    # Each turn's profile names its speaker, and that speaker's own profile follows it.
    profiles = [r["voiceProfile"] for r in got.of("result") if "voiceProfile" in r]
    assert [(p["turnIndex"], p["speakerTag"]) for p in profiles if p["scope"] == "turn"] == [(0, 1), (1, 2), (2, 1)]
    assert [(p["turnIndex"], p["speakerTag"]) for p in profiles if p["scope"] == "speaker"] == [(0, 1), (1, 2), (2, 1)]
    assert all("speakerTag" not in p for p in profiles if p["scope"] == "stream")


async def test_partials_grow_with_a_stable_prefix(live_server: LiveServer, data: Path) -> None:
    jfk = speech(data, "jfk.flac")
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(turnDetection=MANUAL))
        await send_pcm(ws, pcm16(jfk), speed=2.0)  # about 2x real time
        await ws.send(END_TURN)
        got = Received()
        final = await until_final(ws, got)
        await ws.send(CLOSE_STREAM)
        await drain(ws, got)

    assert got.close_code == 1000
    assert wer(reference(data, "en/jfk.flac"), final["transcript"]) <= 0.2
    partials = got.partials
    # How many partials arrive depends on load (one draft per stream in flight; late drafts are skipped).
    assert len(partials) >= 2, got.kinds
    assert all(p["turnIndex"] == 0 and not p["wordTimestamps"] for p in partials)
    stable: list[str] = []
    for p in partials:
        words, count = p["transcript"].split(), p["stableWordCount"]
        assert len(stable) <= count <= len(words), (stable, p)
        assert words[: len(stable)] == stable, (stable, p)  # confirmed words never change
        stable = words[:count]
    assert len(stable) >= 2  # the agreement did confirm words along the way
    ends = [p["endTimeSeconds"] for p in partials]
    assert ends == sorted(ends)
    assert ends[-1] <= 11.0 + 0.05


@pytest.mark.parametrize("then", ["closeStream", "endTurn"])
async def test_end_turn_mid_speech_then(live_server: LiveServer, data: Path, then: str) -> None:
    audio = speech(data, "spk1_snt3.wav")[: SAMPLE_RATE * 3 // 2]  # cut mid-sentence: the VAD is in speech
    async with open_stream(live_server) as ws:
        await ws.send(CONFIG)
        await send_pcm(ws, pcm16(audio))
        await ws.send(END_TURN)
        got = Received()
        first = await until_final(ws, got)
        await send_all(ws, [END_TURN, CLOSE_STREAM] if then == "endTurn" else [CLOSE_STREAM])
        await drain(ws, got)
    assert normalise(first["transcript"]).startswith("at that")
    assert not got.errors, got.errors
    assert got.close_code == 1000
    assert all(not t["transcript"] for t in got.finals[1:])  # the empty turn is empty, if answered at all


async def test_mulaw_8khz(live_server: LiveServer, data: Path) -> None:
    audio = resample(np.concatenate([speech(data, "spk1_snt5.wav"), silence(0.5)]), SAMPLE_RATE, 8000)
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(audioEncoding="MULAW", sampleRateHertz=8000, turnDetection=MANUAL))
        await send_pcm(ws, mulaw_encode(audio), bytes_per_second=8000)  # 800 bytes a chunk, one byte a sample
        await ws.send(END_TURN)
        final = await until_final(ws)
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk1_snt5.wav"), final["transcript"]) <= 0.2
    assert 0.0 <= final["startTimeSeconds"] < final["endTimeSeconds"] <= 2.6 + 0.05


async def test_8khz_stream_hears_all_the_audio_sent(live_server: LiveServer, data: Path) -> None:
    audio = resample(speech(data, "spk2_snt2.wav"), SAMPLE_RATE, 8000)
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(audioEncoding="MULAW", sampleRateHertz=8000, turnDetection=MANUAL))
        await send_pcm(ws, mulaw_encode(audio), bytes_per_second=8000)
        await ws.send(END_TURN)
        got = Received()
        await until_final(ws, got)
        await send_all(ws, [CLOSE_STREAM])
        await drain(ws, got)
    (end, *_) = got.of("endOfTurn")
    assert end["timeSeconds"] == pytest.approx(len(audio) / 8000, abs=0.02)


async def test_final_has_no_repeated_sentence(live_server: LiveServer, data: Path) -> None:
    final, got = await manual_turn(live_server, speech(data, "spk2_snt5.wav"))
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk2_snt5.wav"), final["transcript"]) <= 0.2


# -- bad input ------------------------------------------------------------------------------------------------------

CONFIG = config_frame(turnDetection=MANUAL)
SPEECH = "<half a clip of speech>"
"""Placeholder in a frame list: half of a real clip, as 100 ms audioChunk frames."""

BAD_INPUT: dict[str, tuple[list[str | bytes], str | set[str]]] = {
    "audio before config": ([audio_frame(bytes(3200))], "protocol_violation"),
    "endTurn before config": ([END_TURN], "protocol_violation"),
    "invalid JSON": (["{not json"], "protocol_violation"),
    "JSON array": (["[1, 2]"], "protocol_violation"),
    "JSON string": (['"transcribeConfig"'], "protocol_violation"),
    "binary garbage": ([b"\x00\xff\xfe"], "protocol_violation"),
    "two keys": ([json.dumps({"transcribeConfig": {}, "closeStream": {}})], "protocol_violation"),
    "no known key": ([json.dumps({"hello": {}})], "protocol_violation"),
    "audioChunk without content": ([CONFIG, json.dumps({"audioChunk": {}})], "protocol_violation"),
    "bad base64": ([CONFIG, json.dumps({"audioChunk": {"content": "not base64!"}})], "invalid_base64"),
    "odd LINEAR16 byte count": ([CONFIG, audio_frame(bytes(3201))], "invalid_pcm"),
    "encoding OPUS": ([config_frame(audioEncoding="OPUS")], "protocol_violation"),
    "sample rate 4000": ([config_frame(sampleRateHertz=4000)], {"protocol_violation", "invalid_sample_rate"}),
    "second transcribeConfig": ([CONFIG, SPEECH, CONFIG], "protocol_violation"),
    "unknown model": ([config_frame("whisper/no-such-model")], "model_not_found"),
    "unknown provider": ([config_frame("acme/stt-9")], "model_not_found"),
    "5000-character model id": ([config_frame("whisper/" + "m" * 5000)], "model_not_found"),
    "model id naming a directory": ([config_frame("whisper//usr/lib")], "model_not_found"),
    "tiny.en with German": ([config_frame(language="de")], "invalid_argument"),
    # The reference's second pass: its prompts rule, and provider blocks that must match a model of the request.
    "prompt with #": ([config_frame(prompts=["order", "#status"])], "invalid_argument"),
    "prompt with @": ([config_frame(prompts=["me@example.com"])], "invalid_argument"),
    "deepgramConfig for whisper": ([config_frame(deepgramConfig={"keyterms": ["x"]})], "invalid_argument"),
    "inworldSttV1Config for groq": ([config_frame("groq/whisper-large-v3", inworldSttV1Config={})], "invalid_argument"),
    "two provider blocks": (
        [config_frame(["deepgram/nova-3", TINY], deepgramConfig={}, inworldSttV1Config={})],
        "invalid_argument",
    ),
    "topN 21": ([config_frame(voiceProfileConfig={"enableVoiceProfile": True, "topN": 21})], "protocol_violation"),
    "vadThreshold 2": ([config_frame(inworldSttV1Config={"vadThreshold": 2})], "protocol_violation"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input(live_server: LiveServer, service: Service, data: Path, case: str) -> None:
    frames, code = BAD_INPUT[case]
    half = pcm16(speech(data, "spk1_snt1.wav")[: SAMPLE_RATE * 3 // 2])
    baseline = service.active_streams
    async with open_stream(live_server) as ws:
        for frame in frames:
            if frame == SPEECH:
                await send_pcm(ws, half)
            else:
                await send_all(ws, [frame])
        await expect_error(ws, code, 1008)
    await wait_for_streams(service, baseline)


async def test_chunk_over_the_size_limit(start_server: StartServer) -> None:
    _, server = start_server(TINY, stream_max_chunk_bytes=8_000)
    async with open_stream(server) as ws:
        await ws.send(CONFIG)
        await ws.send(audio_frame(bytes(3200)))  # 100 ms: 4.3 kB of base64, under the limit
        await ws.send(audio_frame(bytes(32000)))  # 1 s: 43 kB
        error = await expect_error(ws, "payload_too_large", 1009)
    assert "8000" in error["message"]


async def test_idle_stream_times_out(start_server: StartServer) -> None:
    svc, server = start_server(TINY, stream_idle_timeout_seconds=1.0)

    async def idle(frames: list[str]) -> float:
        started = time.monotonic()
        async with open_stream(server) as ws:
            await send_all(ws, frames)
            await expect_error(ws, "idle_timeout", 4008)
        return time.monotonic() - started

    # Silent after the config, and silent from the start.
    for elapsed in await asyncio.gather(idle([CONFIG]), idle([])):
        assert 0.9 <= elapsed < 5.0
    await wait_for_streams(svc, 0)


async def test_inactivity_timeout_seconds_closes_an_idle_stream_sooner(live_server: LiveServer) -> None:
    # The session server's idle timeout is 30 s; the client asks for 1 s.
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(inactivityTimeoutSeconds=1))
        error = await expect_error(ws, "idle_timeout", 4008)
    assert "1 s" in error["message"]


async def test_inactivity_timeout_seconds_cannot_outlast_the_servers(start_server: StartServer) -> None:
    svc, server = start_server(TINY, stream_idle_timeout_seconds=1.0)
    async with open_stream(server) as ws:
        await ws.send(config_frame(inactivityTimeoutSeconds=600))
        await expect_error(ws, "idle_timeout", 4008)
    await wait_for_streams(svc, 0)


async def test_vad_threshold_zero_leaves_the_turns_to_the_client(live_server: LiveServer, data: Path) -> None:
    audio = speech(data, "spk2_snt4.wav")
    async with open_stream(live_server) as ws:
        # 3 s of silence after the sentence: the server's turn detection would end the turn; manual turns do not.
        await ws.send(
            config_frame(
                [TINY], inworldSttV1Config={"vadThreshold": 0}, language="en-US",
                audioEncoding="AUDIO_ENCODING_UNSPECIFIED",  # LINEAR16, as the reference streams
            )
        )  # fmt: skip
        await send_pcm(ws, pcm16(audio, silence(3.0)))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)
    assert got.close_code == 1000, got.messages
    assert [e["reason"] for e in got.of("endOfTurn")] == ["close"]
    (final,) = got.finals
    assert wer(reference(data, "en/spk2_snt4.wav"), final["transcript"]) <= 0.2
    # Speech events still come (from the VAD at its default threshold), and the usage last, naming the model that
    # served the fallback list.
    assert got.names[0] == "speechStarted"
    assert got.names[-1] == "usage"
    (usage,) = got.results("usage")
    assert usage == {"transcribedAudioMs": round(len(audio) / SAMPLE_RATE * 1000) + 3000, "modelId": TINY}


async def test_stream_is_cut_at_max_seconds(start_server: StartServer, data: Path) -> None:
    """Past ``stream_max_seconds`` of audio the server stops listening: nothing after the limit is transcribed."""
    _, server = start_server(TINY, stream_max_seconds=2.0)
    audio = np.concatenate([speech(data, "spk1_snt2.wav"), silence(0.85)])  # 4 s
    async with open_stream(server) as ws:
        await ws.send(CONFIG)
        await send_all(ws, [audio_frame(pcm16(audio)[i : i + 3200]) for i in range(0, len(audio) * 2, 3200)])
        got = await drain(ws)
    assert got.close_code is not None
    (end,) = got.of("endOfTurn")
    assert 2.0 < end["timeSeconds"] <= 2.1 + 1e-6  # the limit, to the chunk
    assert all(t["endTimeSeconds"] <= 2.1 + 0.05 for t in got.transcriptions)


async def test_stream_past_max_seconds_gets_its_final_and_closes_1000(start_server: StartServer, data: Path) -> None:
    _, server = start_server(TINY, stream_max_seconds=2.0)
    audio = np.concatenate([speech(data, "spk1_snt2.wav"), silence(0.85)])
    async with open_stream(server) as ws:
        await ws.send(CONFIG)
        await send_all(ws, [audio_frame(pcm16(audio)[i : i + 3200]) for i in range(0, len(audio) * 2, 3200)])
        got = await drain(ws)
    assert not got.errors, got.errors
    assert got.close_code == 1000
    (final,) = got.finals
    assert final["transcript"].lower().startswith("drop the two")
    assert final["endTimeSeconds"] <= 2.1 + 0.05
    assert [e["reason"] for e in got.of("endOfTurn")] == ["maxDuration"]


async def test_more_streams_than_max_streams(start_server: StartServer) -> None:
    svc, server = start_server(TINY, max_streams=1)
    async with open_stream(server) as first:
        await first.send(CONFIG)
        await wait_for_streams(svc, 1)
        async with open_stream(server) as second:
            await second.send(CONFIG)
            await expect_error(second, "resource_exhausted", 1013)
        await first.send(CLOSE_STREAM)
        assert (await drain(first)).close_code == 1000
    await wait_for_streams(svc, 0)
    async with open_stream(server) as third:  # the slot is free again
        await third.send(CONFIG)
        await third.send(CLOSE_STREAM)
        assert (await drain(third)).close_code == 1000


async def test_max_streams_holds_for_simultaneous_configs(start_server: StartServer) -> None:
    svc, server = start_server(TINY, max_streams=1)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(open_stream(server)) for _ in range(4)]
        await asyncio.gather(*(ws.send(CONFIG) for ws in sockets))
        await asyncio.sleep(0.5)
        assert svc.active_streams <= 1
        await asyncio.gather(*(send_all(ws, [CLOSE_STREAM]) for ws in sockets))
        results = await asyncio.gather(*(drain(ws) for ws in sockets))
    assert sorted(r.close_code or 0 for r in results) == [1000, 1013, 1013, 1013]


async def test_main_server_still_serves_after_bad_input(live_server: LiveServer, service: Service, data: Path) -> None:
    await wait_for_streams(service, 0)
    final, got = await manual_turn(live_server, speech(data, "spk2_snt1.wav"))
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk2_snt1.wav"), final["transcript"]) <= 0.2


# -- clients that misbehave ----------------------------------------------------------------------------------------


async def test_vanishing_clients_free_their_streams(live_server: LiveServer, service: Service, data: Path) -> None:
    baseline = service.active_streams
    half = pcm16(speech(data, "spk1_snt3.wav")[: SAMPLE_RATE * 3 // 2])
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(open_stream(live_server)) for _ in range(4)]
        for ws in sockets:
            await ws.send(CONFIG)
            await send_pcm(ws, half)
        await sockets[3].send(END_TURN)  # one has a final in flight when it goes
        await wait_for_streams(service, baseline + 4)
        for ws in sockets[:2] + sockets[3:]:
            ws.transport.abort()  # TCP gone: no close frame, no closeStream
        await sockets[2].close()  # a clean close, but no closeStream
        await wait_for_streams(service, baseline)
    final, _ = await manual_turn(live_server, speech(data, "spk1_snt3.wav"))
    assert wer(reference(data, "en/spk1_snt3.wav"), final["transcript"]) <= 0.2


async def test_a_bad_client_never_hurts_another(live_server: LiveServer, data: Path) -> None:
    audio = speech(data, "spk1_snt4.wav")

    async def good() -> dict[str, Any]:
        async with open_stream(live_server) as ws:
            await ws.send(CONFIG)
            await send_pcm(ws, pcm16(audio, silence(0.5)), speed=3.0)
            await ws.send(END_TURN)
            final = await until_final(ws)
            await ws.send(CLOSE_STREAM)
            assert (await drain(ws)).close_code == 1000
            return final

    task = asyncio.create_task(good())
    garbage: list[tuple[list[str | bytes], str]] = [
        (["{not json"], "protocol_violation"),
        ([CONFIG, audio_frame(bytes(3200)), json.dumps({"audioChunk": {"content": "%%%"}})], "invalid_base64"),
        ([CONFIG, audio_frame(bytes(3201))], "invalid_pcm"),
        ([CONFIG, b"\xff" * 5000], "protocol_violation"),
    ]
    for frames, code in garbage:
        async with open_stream(live_server) as bad:
            await send_all(bad, frames)
            await expect_error(bad, code, 1008)
    async with open_stream(live_server) as rude:  # and one that just drops mid-stream
        await rude.send(CONFIG)
        await send_pcm(rude, pcm16(audio[:SAMPLE_RATE]))
        rude.transport.abort()
    final = await asyncio.wait_for(task, 60)
    assert wer(reference(data, "en/spk1_snt4.wav"), final["transcript"]) <= 0.2


# -- engine failure --------------------------------------------------------------------------------------------------


class FaultyEngine:
    """Fault injection around a real engine: it does the real work, then fails (as a crash after decoding would)."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.real.model_id

    @property
    def capabilities(self) -> Capabilities:
        return self.real.capabilities

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        self.calls += 1
        self.real.transcribe(audio, options, progress)
        raise RuntimeError("injected fault in transcribe")

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        self.calls += 1
        self.real.transcribe_utterance(audio, options)
        raise RuntimeError("injected fault in transcribe_utterance")

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        self.calls += 1
        self.real.transcribe_batch(items)
        raise RuntimeError("injected fault in transcribe_batch")

    def close(self) -> None:
        pass  # the real engine belongs to the session service


_REAL_ENGINES: dict[str, Engine] = {}


def faulty_engine(spec: Any, settings: Settings) -> Engine:
    """Engine factory for ``registry.register("faulty", "tests.server.test_ws:faulty_engine")``."""
    return FaultyEngine(_REAL_ENGINES[TINY])


async def test_engine_exception_ends_only_its_stream(
    start_server: StartServer, live_server: LiveServer, data: Path
) -> None:
    svc, faulty_server = start_server(TINY)
    faulty = FaultyEngine(svc.engine(TINY))
    svc.engines.adopt(faulty)  # the fault sits inside this service's engine pool only
    audio = speech(data, "spk1_snt6.wav")

    async def failing() -> dict[str, Any]:
        async with open_stream(faulty_server) as ws:
            await ws.send(CONFIG)
            await send_all(ws, [audio_frame(pcm16(audio)[i : i + 3200]) for i in range(0, len(audio) * 2, 3200)])
            await send_all(ws, [END_TURN])
            return await expect_error(ws, "engine_error", 1011)

    healthy, error = await asyncio.gather(manual_turn(live_server, audio), failing())
    assert faulty.calls >= 1
    assert "tiny.en" in error["message"]
    final, got = healthy
    assert got.close_code == 1000
    assert not got.errors, got.errors
    assert wer(reference(data, "en/spk1_snt6.wav"), final["transcript"]) <= 0.2

    # The faulty server itself is fine: it answers HTTP and streams that need no decode, and frees the failed stream.
    await wait_for_streams(svc, 0)
    async with httpx.AsyncClient(base_url=faulty_server.url, timeout=10) as http:
        health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    async with open_stream(faulty_server) as ws:
        await ws.send(CONFIG)
        await send_pcm(ws, pcm16(silence(1.0)))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)
    assert got.close_code == 1000
    assert not got.errors, got.errors


@pytest.fixture
def faulty_provider(service: Service) -> Iterator[None]:
    _REAL_ENGINES[TINY] = service.engine(TINY)
    registry.register("faulty", "tests.server.test_ws:faulty_engine")
    yield
    registry.PROVIDERS.pop("faulty", None)
    _REAL_ENGINES.clear()


@pytest.mark.usefixtures("faulty_provider")
async def test_registered_provider_is_reachable_by_model_id(start_server: StartServer, data: Path) -> None:
    _, server = start_server()
    async with open_stream(server) as ws:
        await ws.send(config_frame("faulty/tiny.en", turnDetection=MANUAL))
        await send_all(ws, [audio_frame(pcm16(speech(data, "spk2_snt2.wav"))), END_TURN])
        await expect_error(ws, "engine_error", 1011)


class SlowEngine(FaultyEngine):
    """A real engine whose full decodes (finals) take 2 s longer, as on a loaded server."""

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        time.sleep(2.0)
        return self.real.transcribe(audio, options, progress)

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        time.sleep(2.0)
        return self.real.transcribe_utterance(audio, options)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        return self.real.transcribe_batch(items)


async def test_idle_timeout_spares_a_client_waiting_for_its_final(start_server: StartServer, data: Path) -> None:
    svc, server = start_server(TINY, stream_idle_timeout_seconds=1.0)
    svc.engines.adopt(SlowEngine(svc.engine(TINY)))
    async with open_stream(server) as ws:
        await ws.send(config_frame(turnDetection=MANUAL, enablePartials=False))
        await send_pcm(ws, pcm16(speech(data, "spk2_snt2.wav")))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)
    assert not got.errors, got.errors
    assert got.close_code == 1000
    assert len(got.finals) == 1


# -- auth -----------------------------------------------------------------------------------------------------------


async def test_api_keys(start_server: StartServer, data: Path) -> None:
    _, server = start_server(TINY, api_keys=[SecretStr(KEY)])
    final, got = await manual_turn(server, speech(data, "spk1_snt4.wav"), auth={"key": KEY, "scheme": "Bearer"})
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk1_snt4.wav"), final["transcript"]) <= 0.2
    async with open_stream(server, key=KEY, scheme="Basic") as ws:
        await ws.send(CONFIG)
        await ws.send(CLOSE_STREAM)
        assert (await drain(ws)).close_code == 1000
    for key, scheme in ((None, "Basic"), ("wrong", "Basic"), ("wrong", "Bearer"), (KEY, "Token")):
        async with open_stream(server, key=key, scheme=scheme) as ws:
            await send_all(ws, [CONFIG])
            error = await expect_error(ws, "unauthenticated", 1008)
        assert KEY not in error["message"]


async def test_api_keys_of_the_app_guard_the_stream_route(settings: Settings, service: Service, data: Path) -> None:
    """The app's settings hold the keys, for HTTP and the stream route alike, even on a shared service."""
    keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    with LiveServer(create_app(keyed, service=service)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/stt/v1/models")).status_code == 401
        async with open_stream(server) as ws:
            await send_all(ws, [CONFIG, CLOSE_STREAM])
            await expect_error(ws, "unauthenticated", 1008)
        final, got = await manual_turn(server, speech(data, "spk2_snt2.wav"), auth={"key": KEY})
        assert got.close_code == 1000
        assert wer(reference(data, "en/spk2_snt2.wav"), final["transcript"]) <= 0.2


async def test_voice_profile_results_over_the_socket(live_server: LiveServer, data: Path) -> None:
    jfk = speech(data, "jfk.flac")
    async with open_stream(live_server) as ws:
        profile_config = {"enableVoiceProfile": True, "topN": 2}
        await ws.send(config_frame(turnDetection=MANUAL, voiceProfileConfig=profile_config, profileIntervalMs=1000))
        await send_pcm(ws, pcm16(jfk), speed=2.0)
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)

    assert got.close_code == 1000
    profiles = [r["voiceProfile"] for r in got.of("result") if "voiceProfile" in r]
    updates = [p for p in profiles if p["scope"] == "stream"]
    turns = [p for p in profiles if p["scope"] == "turn"]
    assert updates  # sent as speech accumulates (how many depends on load: updates may be skipped)
    assert len(turns) == 1  # and one for the finished turn, after its final, before the close
    assert got.names.index("voiceProfile") < len(got.names) - 2  # before the usage and the close
    last = turns[0]
    for dimension in ("language", "age", "gender", "emotion", "pitch", "vocalStyle", "accent"):
        assert len(last[dimension]) <= 2
        confidences = [item["confidence"] for item in last[dimension]]
        assert confidences == sorted(confidences, reverse=True)
    assert last["language"][0]["label"] == "en"
    assert last["features"]["f0MedianHz"] > 100
    assert last["features"]["speakingRateWpm"] is not None  # from the final's word timings
    assert last["turnIndex"] == 0
    # The reference API's clients read the profile from the transcription (``result.transcription.voiceProfile``):
    # each carries the stream's profile heard before it (a turn's own follows its final: the final never waits).
    results = got.of("result")
    heard: dict[str, Any] | None = None
    carried = 0
    for r in results:
        if "voiceProfile" in r and r["voiceProfile"]["scope"] == "stream":
            heard = r["voiceProfile"]
        elif "transcription" in r:
            inside = r["transcription"].get("voiceProfile")
            if heard is None:
                assert inside is None
            else:
                assert inside is not None
                assert inside["emotion"] == heard["emotion"]
                assert inside["gender"] == heard["gender"]
                assert "scope" not in inside
                carried += 1
    first = results.index(next(r for r in results if r.get("voiceProfile", {}).get("scope") == "stream"))
    after = [r for r in results[first:] if "transcription" in r]
    assert after  # the final, at least, came after the first update
    assert carried == len(after)


async def test_each_final_is_timed_from_its_turn_end(live_server: LiveServer, service: Service, data: Path) -> None:
    """The runner measures endTurn → final for every turn (``voxgate_stream_final_latency_seconds``)."""

    def count() -> float:
        value = service.metrics.registry.get_sample_value("voxgate_stream_final_latency_seconds_count")
        return value or 0.0

    before = count()
    final, _ = await manual_turn(live_server, speech(data, "spk1_snt4.wav"))
    assert "stripe" in final["transcript"].lower()
    assert count() == before + 1


async def test_whatever_follows_close_stream_never_costs_the_final(live_server: LiveServer, data: Path) -> None:
    """closeStream with a turn open, then more audio, garbage, a second config and closeStream: all dropped; the
    open turn's final still arrives, then a normal close."""
    audio = speech(data, "spk2_snt2.wav")
    got = Received()
    async with open_stream(live_server) as ws:
        await ws.send(config_frame(turnDetection=MANUAL))
        await send_pcm(ws, pcm16(audio))
        await ws.send(CLOSE_STREAM)
        await send_all(
            ws, [audio_frame(bytes(3200)), "{not json", b"\x00\xff", CONFIG, audio_frame(bytes(3201)), CLOSE_STREAM]
        )
        await drain(ws, got)
    assert not got.errors, got.messages
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk2_snt2.wav"), got.finals[-1]["transcript"]) <= 0.3
