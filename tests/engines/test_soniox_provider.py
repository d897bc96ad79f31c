"""soniox/*: real speech through the Soniox adapter against a fake Soniox on loopback.

The fake (tests/engines/fake_vendors/soniox_server.py) checks every request's shape, transcribes the uploaded audio
with voxgate's real tiny.en engine and answers Soniox-style sub-word tokens, so text, word times, language and
vocabulary here are real. Token-joining details are checked against an in-process mock vendor instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors.assemblyai_server import Fault, LocalRecognizer
from tests.engines.fake_vendors.soniox_server import API_KEY, FakeSoniox
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines import remote
from voxgate.engines.base import Engine
from voxgate.engines.registry import load_engine
from voxgate.engines.soniox import SonioxEngine
from voxgate.errors import (
    ModelUnavailable,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.models.catalog import resolve
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions

Connect = Callable[..., Engine]
CLEANUP = ["delete_transcription", "delete_file"]


# -- helpers --------------------------------------------------------------------------------------------------------


def words_are_sane(t: Transcript) -> None:
    assert t.words, "no words"
    for w in t.words:
        assert w.word
        assert w.word.strip() == w.word
        assert 0.0 <= w.start <= w.end <= t.duration
        assert 0.0 <= w.confidence <= 1.0
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)
    for s in t.segments:
        assert s.text == " ".join(w.word for w in s.words)
        assert (s.start, s.end) == (s.words[0].start, s.words[-1].end)


def soniox_fault(status: int, error_type: str = "internal_error", message: str = "Internal error.") -> Fault:
    body = {"status_code": status, "error_type": error_type, "message": message, "validation_errors": []}
    return Fault(status, json.dumps(body).encode())


def make_settings(home: Path, url: str, *, key: str | None = API_KEY, timeout: float = 10.0) -> Settings:
    return Settings(
        home=home,
        preload=[],
        soniox_api_key=SecretStr(key) if key is not None else None,
        soniox_base_url=url,
        provider_timeout_seconds=timeout,
        provider_max_retries=2,
    )


def engine_for(settings: Settings, model: str = "stt-async-v3") -> Engine:
    """Through the registry, as the service loads it."""
    return load_engine(resolve(f"soniox/{model}", settings.default_model), settings)


def mock_vendor(settings: Settings, tokens: list[dict[str, Any]]) -> tuple[Engine, list[Any]]:
    """An engine whose vendor is an in-process mock answering ``tokens``, and the transcription bodies it got."""
    sent: list[Any] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "DELETE":
            return httpx.Response(204)
        if path == "/v1/files":
            return httpx.Response(201, json={"id": "f1"})
        if path == "/v1/transcriptions":
            sent.append(json.loads(request.content))
            return httpx.Response(201, json={"id": "t1", "status": "queued"})
        if path == "/v1/transcriptions/t1":
            return httpx.Response(200, json={"id": "t1", "status": "completed"})
        text = "".join(t["text"] for t in tokens)
        return httpx.Response(200, json={"id": "t1", "text": text, "tokens": tokens})

    config = make_settings(settings.home, "https://api.soniox.invalid")
    return SonioxEngine(resolve("soniox/stt-async-v3", ""), config, transport=httpx.MockTransport(vendor)), sent


def token(text: str, start: int, end: int, language: str | None = "en", confidence: float = 0.9) -> dict[str, Any]:
    t: dict[str, Any] = {"text": text, "start_ms": start, "end_ms": end, "confidence": confidence}
    if language:
        t["language"] = language
    return t


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff and polling in milliseconds, not seconds."""
    monkeypatch.setattr(remote, "_BACKOFF_BASE", 0.001)
    monkeypatch.setattr(SonioxEngine, "poll_interval", 0.02)
    monkeypatch.setattr(SonioxEngine, "poll_interval_max", 0.05)


@pytest.fixture(scope="module")
def recognizer(service: Service) -> LocalRecognizer:
    return LocalRecognizer(service.engine("whisper/tiny.en"))


@pytest.fixture(scope="module")
def server(recognizer: LocalRecognizer) -> Iterator[tuple[FakeSoniox, LiveServer]]:
    fake = FakeSoniox(recognizer)
    with LiveServer(fake.app) as live:
        yield fake, live
    fake.close()


@pytest.fixture
def fake(server: tuple[FakeSoniox, LiveServer]) -> FakeSoniox:
    server[0].reset()
    return server[0]


@pytest.fixture
def connect(settings: Settings, server: tuple[FakeSoniox, LiveServer]) -> Iterator[Connect]:
    """Open an engine on the fake, closed after the test: ``connect(model, key=..., timeout=..., base_url=...)``."""
    engines: list[Engine] = []

    def open_engine(
        model: str = "stt-async-v3", *, key: str | None = API_KEY, timeout: float = 10.0, base_url: str = ""
    ) -> Engine:
        engine = engine_for(make_settings(settings.home, base_url or server[1].url, key=key, timeout=timeout), model)
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.close()


@pytest.fixture(scope="module")
def jfk(data: Path) -> np.ndarray:
    return decode(data / "en" / "jfk.flac")


@pytest.fixture(scope="module")
def sentence(data: Path) -> np.ndarray:
    return decode(data / "en" / "spk1_snt1.wav")


@pytest.fixture(scope="module")
def comfy(data: Path) -> np.ndarray:
    return decode(data / "vocabulary" / "comfyui.mp3")


# -- results --------------------------------------------------------------------------------------------------------


def test_transcribes_real_speech_with_word_times(
    fake: FakeSoniox, connect: Connect, recognizer: LocalRecognizer, data: Path, jfk: np.ndarray
) -> None:
    engine = connect()
    assert isinstance(engine, SonioxEngine)
    assert engine.model_id == "soniox/stt-async-v3"
    t = engine.transcribe(jfk, TranscriptionOptions(language="en"))

    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2
    assert t.model_id == "soniox/stt-async-v3"
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    assert t.language == "en"
    assert t.warnings == ()
    words_are_sane(t)
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0
    assert all(s.language == "en" for s in t.segments)

    # The sub-word tokens were joined back into exactly the words the vendor's recogniser heard.
    heard = recognizer(remote.to_wav(jfk), "en").words
    assert [w.word for w in t.words] == [w.word for w in heard]
    for got, want in zip(t.words, heard, strict=True):
        assert got.start == pytest.approx(want.start, abs=0.001)
        assert got.end == pytest.approx(want.end, abs=0.001)
        assert got.confidence == pytest.approx(want.confidence, abs=0.001)

    # What Soniox was sent, and that nothing was left behind there.
    (body,) = fake.created
    assert body == {
        "model": "stt-async-v3",
        "enable_language_identification": True,
        "language_hints": ["en"],
        "file_id": body["file_id"],
    }
    assert fake.calls[:2] == ["upload", "create"]
    assert fake.calls[-3:] == ["transcript", *CLEANUP]
    assert set(fake.calls[2:-3]) == {"poll"}
    assert fake.files == {}
    assert fake.transcriptions == {}


def test_detects_the_language_when_none_is_given(
    fake: FakeSoniox, connect: Connect, data: Path, sentence: np.ndarray
) -> None:
    t = connect().transcribe(sentence, TranscriptionOptions())
    (body,) = fake.created
    assert "language_hints" not in body
    assert body["enable_language_identification"] is True
    assert t.language == "en"
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    words_are_sane(t)


def test_vocabulary_reaches_the_vendor_and_the_transcript(
    fake: FakeSoniox, connect: Connect, comfy: np.ndarray
) -> None:
    t = connect().transcribe(comfy, TranscriptionOptions(language="en", prompts=("ComfyUI", "ComfyUI ", "")))
    assert fake.created[0]["context"] == {"terms": ["ComfyUI"]}
    assert "ComfyUI" in t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)  # joined from " Comf" + "yUI"
    assert t.warnings == ()


def test_word_timestamps_can_be_skipped(fake: FakeSoniox, connect: Connect, data: Path, sentence: np.ndarray) -> None:
    t = connect().transcribe(sentence, TranscriptionOptions(word_timestamps=False))
    assert t.words == ()
    assert t.warnings == ()
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2


def test_a_real_time_model_falls_back_to_its_async_model_with_a_warning(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray
) -> None:
    t = connect("stt-rt-v3").transcribe(sentence, TranscriptionOptions())
    assert fake.created[0]["model"] == "stt-async-v3"
    (warning,) = t.warnings
    assert "real-time model" in warning
    assert "stt-async-v3" in warning
    assert t.model_id == "soniox/stt-rt-v3"
    assert "dog" in t.text


def test_tokens_are_joined_into_words_and_segments(settings: Settings) -> None:
    tokens = [
        token("Hel", 100, 200, confidence=0.9),
        token("lo", 200, 400, confidence=0.7),
        token(",", 400, 400),
        token(" world", 450, 800),
        {"text": " Hi", "start_ms": 450, "end_ms": 800, "translation_status": "translation", "language": "de"},
        token(" wie", 900, 1000, "de"),
        token(" ", 1000, 1000, "de"),
        token("geht", 1000, 1200, "de"),
        token(" es", 1200, 1300, "de"),
        token("?", 1300, 1310, "de"),
        token(" Gut", 2600, 2900, "de"),
    ]
    engine, sent = mock_vendor(settings, tokens)
    try:
        t = engine.transcribe(
            np.zeros(3 * SAMPLE_RATE, np.float32), TranscriptionOptions(prompt="Greetings.", prompts=("Hello",))
        )
    finally:
        engine.close()
    assert sent[0]["context"] == {"terms": ["Hello"], "text": "Greetings."}
    assert [(w.word, w.start, w.end, w.confidence) for w in t.words] == [
        ("Hello,", 0.1, 0.4, 0.7),
        ("world", 0.45, 0.8, 0.9),
        ("wie", 0.9, 1.0, 0.9),
        ("geht", 1.0, 1.2, 0.9),
        ("es?", 1.2, 1.31, 0.9),
        ("Gut", 2.6, 2.9, 0.9),
    ]
    # cut where the language changes, after a question, and (here too) before a long pause
    assert [(s.text, s.language) for s in t.segments] == [
        ("Hello, world", "en"),
        ("wie geht es?", "de"),
        ("Gut", "de"),
    ]
    assert t.language == "de"  # most of the words
    assert t.warnings == ()


# -- failures -------------------------------------------------------------------------------------------------------


def test_missing_key_is_model_unavailable(settings: Settings) -> None:
    with pytest.raises(ModelUnavailable, match="VOXGATE_SONIOX_API_KEY"):
        engine_for(make_settings(settings.home, "http://127.0.0.1:9", key=None))


def test_refused_key_is_provider_unauthorized(fake: FakeSoniox, connect: Connect, sentence: np.ndarray) -> None:
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_SONIOX_API_KEY"):
        connect(key="not-the-key").transcribe(sentence, TranscriptionOptions())
    assert fake.calls == ["upload"]  # a refused key is not retried


def test_rate_limited_upload_waits_retry_after_then_succeeds(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray
) -> None:
    limited = soniox_fault(429, "rate_limit_exceeded", "Too many requests.")
    fake.fail("upload", Fault(limited.status, limited.body, (*limited.headers, ("retry-after", "1"))))
    started = time.monotonic()
    t = connect().transcribe(sentence, TranscriptionOptions())
    assert time.monotonic() - started >= 1.0
    assert fake.calls[:3] == ["upload", "upload", "create"]
    assert "dog" in t.text.lower()


def test_rate_limited_past_the_retries_is_provider_rate_limited(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray
) -> None:
    fake.fail("upload", *[soniox_fault(429, "rate_limit_exceeded", "Too many requests.")] * 3)
    with pytest.raises(ProviderRateLimited, match="Too many requests"):
        connect().transcribe(sentence, TranscriptionOptions())
    assert fake.calls == ["upload"] * 3


def test_a_server_error_and_a_dropped_connection_are_retried(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray
) -> None:
    fake.fail("poll", soniox_fault(500), Fault.dropped())
    fake.fail("transcript", soniox_fault(502))
    t = connect().transcribe(sentence, TranscriptionOptions())
    assert "dog" in t.text.lower()
    assert fake.calls.count("create") == 1
    assert fake.calls.count("transcript") == 2
    assert fake.files == {}
    assert fake.transcriptions == {}


def test_creating_a_transcription_is_never_retried(fake: FakeSoniox, connect: Connect, sentence: np.ndarray) -> None:
    """The job may exist despite the 5xx: a retry could bill the audio twice. The upload is still cleaned up."""
    fake.fail("create", soniox_fault(503, "service_unavailable", "Service unavailable."))
    with pytest.raises(ProviderError, match="503") as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls == ["upload", "create", "delete_file"]
    assert fake.files == {}


def test_a_failed_job_raises_the_vendors_message_and_is_cleaned_up(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray
) -> None:
    fake.job_error = "Audio file could not be decoded."
    with pytest.raises(ProviderError, match="Audio file could not be decoded") as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls[-2:] == CLEANUP
    assert fake.files == {}
    assert fake.transcriptions == {}


def test_a_job_that_never_completes_times_out(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SonioxEngine, "processing_allowance", 0.0)
    fake.stall = True
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="did not finish"):
        connect(timeout=0.5).transcribe(sentence, TranscriptionOptions())
    assert 0.5 <= time.monotonic() - started < 3.0
    assert fake.calls.count("poll") > 2
    # Soniox refuses to delete a transcription still processing (409, ignored); the file goes.
    assert fake.calls[-2:] == CLEANUP
    assert fake.files == {}
    assert len(fake.transcriptions) == 1


def test_clean_up_failures_do_not_fail_the_transcription(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail("delete_transcription", Fault.dropped())
    fake.fail("delete_file", soniox_fault(500))
    with caplog.at_level(logging.WARNING, logger="voxgate.engines.soniox"):
        t = connect().transcribe(sentence, TranscriptionOptions())
    assert "dog" in t.text.lower()
    assert fake.calls[-2:] == CLEANUP  # one try each
    assert len([r for r in caplog.records if "could not delete" in r.getMessage()]) == 2


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (Fault.not_json(), "not JSON"),
        (Fault(200, b'{"id": "x", "text": "", "tokens": {"text": "a"}}'), "not a list"),
        (Fault(200, b'{"id": "x", "text": "", "tokens": [{"start_ms": 0}]}'), "cannot read"),
        (Fault(200, b'{"id": "x", "text": "", "tokens": ["a"]}'), "cannot read"),
    ],
)
def test_broken_transcripts_are_provider_errors(
    fake: FakeSoniox, connect: Connect, sentence: np.ndarray, fault: Fault, match: str
) -> None:
    fake.fail("transcript", fault)
    with pytest.raises(ProviderError, match=match) as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls[-2:] == CLEANUP


def test_an_unknown_status_is_a_provider_error(fake: FakeSoniox, connect: Connect, sentence: np.ndarray) -> None:
    fake.fail("poll", Fault(200, b'{"id": "x", "status": "exploded"}'))
    with pytest.raises(ProviderError, match="unknown transcription status"):
        connect().transcribe(sentence, TranscriptionOptions())


def test_unreachable_vendor_is_provider_error(connect: Connect, sentence: np.ndarray) -> None:
    with pytest.raises(ProviderError, match="unreachable"):
        connect(base_url="http://127.0.0.1:9").transcribe(sentence, TranscriptionOptions())
