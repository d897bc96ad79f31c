"""The REST client against the real live server: JSON and multipart bodies, raw PCM, errors, auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.client import TINY, closed_port_url
from tests.conftest import LiveServer
from tests.speech import conversation, reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.client import (
    AsyncClient,
    Client,
    TranscribeResponse,
    VoxgateClientError,
    VoxgateConnectionError,
    transcribe_file,
)
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service

KEY = "rest-key"


@pytest.fixture(scope="module")
def keyed_server(settings: Settings, service: Service) -> Iterator[LiveServer]:
    """The session's service behind an app that requires an API key on its REST routes."""
    keyed = Settings(home=settings.home, preload=[], cpu_threads=settings.cpu_threads, api_keys=[SecretStr(KEY)])
    app: FastAPI = create_app(keyed, service=service)
    with LiveServer(app) as server:
        yield server


def test_transcribe_a_path(live_server: LiveServer, data: Path) -> None:
    with Client(live_server.url) as client:
        response = client.transcribe(data / "en" / "spk1_snt1.wav", model_id=TINY, language="en-US")
    assert isinstance(response, TranscribeResponse)
    t = response.transcription
    assert wer(reference(data, "en/spk1_snt1.wav"), t.transcript) <= 0.2
    assert t.is_final
    assert t.language == "en"
    assert response.usage.model_id == TINY
    assert response.usage.transcribed_audio_ms == 2870
    assert t.word_timestamps
    starts = [w.start_time_seconds for w in t.word_timestamps]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start_time_seconds <= w.end_time_seconds <= 2.87 + 0.05 for w in t.word_timestamps)


def test_transcribe_raw_pcm_without_word_timestamps(live_server: LiveServer, data: Path) -> None:
    pcm = encode_linear16(decode(data / "en" / "spk1_snt5.wav"))
    with Client(live_server.ws_url) as client:  # a ws:// URL works too
        response = client.transcribe(
            pcm, model_id=TINY, audio_encoding="LINEAR16", sample_rate=16000, word_timestamps=False
        )
    assert wer(reference(data, "en/spk1_snt5.wav"), response.transcription.transcript) <= 0.2
    assert response.transcription.word_timestamps == []
    assert response.usage.transcribed_audio_ms == pytest.approx(2600, abs=1)


async def test_async_multipart_with_prompts(live_server: LiveServer, data: Path) -> None:
    async with AsyncClient(live_server.url) as client:
        response = await client.transcribe(
            (data / "en" / "jfk.flac").read_bytes(), model_id=TINY, prompts=["Americans"], multipart=True
        )
        models = await client.models()
    assert wer(reference(data, "en/jfk.flac"), response.transcription.transcript) <= 0.2
    assert response.usage.transcribed_audio_ms == 11000
    assert response.segments
    assert TINY in {m["id"] for m in models}


def test_diarization_without_word_timestamps(live_server: LiveServer, data: Path) -> None:
    """Speakers are found from the words even when the caller does not want them back."""
    audio, _ = conversation(data, ["en/spk2_snt5.wav", "en/spk1_snt6.wav"])
    with Client(live_server.url) as client:
        response = client.transcribe(
            encode_linear16(audio), model_id=TINY, audio_encoding="LINEAR16", sample_rate=16000,
            word_timestamps=False, diarize=True,
        )  # fmt: skip
    assert response.transcription.word_timestamps == []
    assert response.utterances is not None
    assert [u.speaker_tag for u in response.utterances] == [1, 2]
    assert wer(reference(data, "en/spk2_snt5.wav"), response.utterances[0].transcript) <= 0.2
    assert wer(reference(data, "en/spk1_snt6.wav"), response.utterances[1].transcript) <= 0.2


def test_transcribe_file_helper(live_server: LiveServer, data: Path) -> None:
    response = transcribe_file(str(data / "en" / "spk2_snt1.wav"), url=live_server.url, model_id=TINY)
    assert wer(reference(data, "en/spk2_snt1.wav"), response.transcription.transcript) <= 0.2


def test_models(live_server: LiveServer) -> None:
    with Client(live_server.url) as client:
        models = client.models()
    ids = {m["id"] for m in models}
    assert {TINY, "whisper/base"} <= ids
    assert sum(bool(m["default"]) for m in models) == 1


@pytest.mark.parametrize(
    ("audio", "options", "code", "status"),
    [
        (b"this is not audio" * 40, {"model_id": TINY}, "audio_decode_error", 422),
        (b"\x00\x01" * 1600, {"model_id": TINY, "audio_encoding": "LINEAR16"}, "invalid_argument", 400),
        ("en/spk2_snt2.wav", {"model_id": "nope/x"}, "model_not_found", 404),
        ("en/spk2_snt2.wav", {"model_id": TINY, "language": "de"}, "invalid_argument", 400),
    ],
    ids=["junk", "headerless-pcm-without-rate", "unknown-model", "unsupported-language"],
)
def test_errors_carry_code_message_and_status(
    live_server: LiveServer, data: Path, audio: bytes | str, options: dict[str, str], code: str, status: int
) -> None:
    source = data / audio if isinstance(audio, str) else audio
    with Client(live_server.url) as client, pytest.raises(VoxgateClientError) as info:
        client.transcribe(source, **options)  # type: ignore[arg-type]
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.message
    assert code in str(info.value)


async def test_async_error(live_server: LiveServer) -> None:
    async with AsyncClient(live_server.url) as client:
        with pytest.raises(VoxgateClientError) as info:
            await client.transcribe(b"", model_id=TINY)
    assert info.value.code == "empty_audio"


def test_api_key(keyed_server: LiveServer, data: Path) -> None:
    for key in (None, "wrong"):
        with Client(keyed_server.url, key) as client, pytest.raises(VoxgateClientError) as info:
            client.models()
        assert (info.value.code, info.value.status) == ("unauthenticated", 401)
    with Client(keyed_server.url, KEY) as client:
        assert client.models()
        response = client.transcribe(data / "en" / "spk2_snt2.wav", model_id=TINY, multipart=True)
    assert wer(reference(data, "en/spk2_snt2.wav"), response.transcription.transcript) <= 0.2


def test_connection_failure() -> None:
    with Client(closed_port_url()) as client, pytest.raises(VoxgateConnectionError) as info:
        client.models()
    assert info.value.code == "connection_failed"
