"""assemblyai/*: real speech through the AssemblyAI adapter against a fake AssemblyAI on loopback.

The fake (tests/engines/fake_vendors/assemblyai_server.py) checks every request's shape and transcribes the uploaded
audio with voxgate's real tiny.en engine, so text, word times, language and vocabulary here are real. A few mapping
details (segmentation, respelling, term limits) are checked against an in-process mock vendor instead.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors.assemblyai_server import API_KEY, FakeAssemblyAI, Fault, LocalRecognizer
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines import remote
from voxgate.engines.assemblyai import AssemblyAIEngine
from voxgate.engines.base import Engine
from voxgate.engines.registry import load_engine
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

ISSUED = re.compile(r"https://cdn\.assemblyai\.com/upload/[0-9a-f-]{36}")
Connect = Callable[..., Engine]


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


def make_settings(home: Path, url: str, *, key: str | None = API_KEY, timeout: float = 10.0) -> Settings:
    return Settings(
        home=home,
        preload=[],
        assemblyai_api_key=SecretStr(key) if key is not None else None,
        assemblyai_base_url=url,
        provider_timeout_seconds=timeout,
        provider_max_retries=2,
    )


def engine_for(settings: Settings, model: str = "universal-3-pro") -> Engine:
    """Through the registry, as the service loads it."""
    return load_engine(resolve(f"assemblyai/{model}", settings.default_model), settings)


def mock_vendor(settings: Settings, result: dict[str, Any], model: str = "universal-2") -> tuple[Engine, list[Any]]:
    """An engine whose vendor is an in-process mock answering ``result`` for the job, and the job bodies it got."""
    sent: list[Any] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/upload":
            return httpx.Response(200, json={"upload_url": "https://cdn.assemblyai.com/upload/x"})
        if request.url.path == "/v2/transcript":
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={"id": "t1", "status": "queued"})
        return httpx.Response(200, json={"id": "t1", "status": "completed", **result})

    config = make_settings(settings.home, "https://api.assemblyai.invalid")
    return AssemblyAIEngine(resolve(f"assemblyai/{model}", ""), config, transport=httpx.MockTransport(vendor)), sent


def vendor_words(*words: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"text": w, "start": s, "end": e, "confidence": 0.9, "speaker": None} for w, s, e in words]


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff and polling in milliseconds, not seconds."""
    monkeypatch.setattr(remote, "_BACKOFF_BASE", 0.001)
    monkeypatch.setattr(AssemblyAIEngine, "poll_interval", 0.02)
    monkeypatch.setattr(AssemblyAIEngine, "poll_interval_max", 0.05)


@pytest.fixture(scope="module")
def server(service: Service) -> Iterator[tuple[FakeAssemblyAI, LiveServer]]:
    fake = FakeAssemblyAI(LocalRecognizer(service.engine("whisper/tiny.en")))
    with LiveServer(fake.app) as live:
        yield fake, live
    fake.close()


@pytest.fixture
def fake(server: tuple[FakeAssemblyAI, LiveServer]) -> FakeAssemblyAI:
    server[0].reset()
    return server[0]


@pytest.fixture
def connect(settings: Settings, server: tuple[FakeAssemblyAI, LiveServer]) -> Iterator[Connect]:
    """Open an engine on the fake, closed after the test: ``connect(model, key=..., timeout=..., base_url=...)``."""
    engines: list[Engine] = []

    def open_engine(
        model: str = "universal-3-pro", *, key: str | None = API_KEY, timeout: float = 10.0, base_url: str = ""
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
    fake: FakeAssemblyAI, connect: Connect, data: Path, jfk: np.ndarray
) -> None:
    engine = connect()
    assert isinstance(engine, AssemblyAIEngine)
    assert engine.model_id == "assemblyai/universal-3-pro"
    assert engine.capabilities.remote
    t = engine.transcribe(jfk, TranscriptionOptions(language="en"))

    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2
    assert t.model_id == "assemblyai/universal-3-pro"
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    assert t.language == "en"
    assert t.language_probability is None  # given, not detected
    assert t.warnings == ()
    words_are_sane(t)
    # "Americans" is said around 1.5-2.3 s into the clip, "country" last, near 10 s.
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0
    assert all(s.language == "en" for s in t.segments)

    # What AssemblyAI was sent: one upload, one job, polls until it completed.
    (body,) = fake.created
    assert ISSUED.fullmatch(body.pop("audio_url"))
    assert body == {"speech_models": ["universal-3-pro"], "language_code": "en", "punctuate": True, "format_text": True}
    assert fake.calls[:2] == ["upload", "create"]
    assert set(fake.calls[2:]) == {"poll"}
    assert len(fake.calls) >= 2 + fake.polls_to_complete + 1


def test_detects_the_language_when_none_is_given(
    fake: FakeAssemblyAI, connect: Connect, data: Path, sentence: np.ndarray
) -> None:
    t = connect().transcribe(sentence, TranscriptionOptions())
    (body,) = fake.created
    assert body["language_detection"] is True
    assert "language_code" not in body
    assert t.language == "en"
    assert t.language_probability is not None
    assert 0.5 < t.language_probability <= 1.0
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    words_are_sane(t)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("universal-3-pro", {"keyterms_prompt": ["ComfyUI"]}),
        ("slam-1", {"keyterms_prompt": ["ComfyUI"]}),
        ("universal-2", {"word_boost": ["ComfyUI"], "boost_param": "high"}),
    ],
)
def test_vocabulary_reaches_the_vendor_and_the_transcript(
    fake: FakeAssemblyAI, connect: Connect, comfy: np.ndarray, model: str, fields: dict[str, object]
) -> None:
    t = connect(model).transcribe(comfy, TranscriptionOptions(language="en", prompts=("ComfyUI", " ", "ComfyUI")))
    (body,) = fake.created
    assert {k: body[k] for k in fields} == fields
    assert not {"keyterms_prompt", "word_boost", "boost_param"} - set(fields) & set(body)
    assert "ComfyUI" in t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)
    assert t.warnings == ()


def test_without_vocabulary_the_term_is_misheard(fake: FakeAssemblyAI, connect: Connect, comfy: np.ndarray) -> None:
    """The control for the test above: the vocabulary is what makes the difference."""
    t = connect().transcribe(comfy, TranscriptionOptions(language="en"))
    assert "ComfyUI" not in t.text
    assert "keyterms_prompt" not in fake.created[0]


def test_respells_the_vendors_words_with_the_vocabulary(settings: Settings) -> None:
    """The vendor may hear a term split or cased its own way; voxgate's respelling runs on its words."""
    words = vendor_words(("Open", 0, 300), ("Comfy", 400, 700), ("UI.", 750, 1100))
    engine, _ = mock_vendor(settings, {"text": "Open Comfy UI.", "language_code": "en_us", "words": words})
    try:
        t = engine.transcribe(np.zeros(2 * SAMPLE_RATE, np.float32), TranscriptionOptions(prompts=("ComfyUI",)))
    finally:
        engine.close()
    assert [(w.word, w.start, w.end, w.confidence) for w in t.words] == [
        ("Open", 0.0, 0.3, 0.9),
        ("ComfyUI.", 0.4, 1.1, 0.9),
    ]
    assert t.text == "Open ComfyUI."
    assert t.language == "en"


def test_words_are_cut_into_sentences_and_at_pauses(settings: Settings) -> None:
    """AssemblyAI answers one flat word list; voxgate's segments end at sentence ends and pauses of a second."""
    words = [
        *vendor_words(
            ("Hello", 100, 400), ("there.", 450, 800), ("How", 900, 1000), ("are", 1050, 1200), ("you", 2500, 2800)
        ),
        {"text": "late", "start": 2900, "end": 9000, "confidence": 1.7},
    ]
    engine, _ = mock_vendor(settings, {"text": "Hello there. How are you late", "words": words})
    try:
        t = engine.transcribe(np.zeros(3 * SAMPLE_RATE, np.float32), TranscriptionOptions(language="de"))
    finally:
        engine.close()
    assert [s.text for s in t.segments] == ["Hello there.", "How are", "you late"]
    assert [(s.start, s.end) for s in t.segments] == [(0.1, 0.8), (0.9, 1.2), (2.5, 3.0)]  # clamped to the audio
    assert t.words[-1].confidence == 1.0
    assert t.language == "de"  # the vendor named none: the one asked for
    assert {s.language for s in t.segments} == {"de"}


def test_vocabulary_within_the_vendors_limits(settings: Settings) -> None:
    terms = ("Kubernetes", "a phrase of far more than six words long", *(f"term{i}" for i in range(1005)))
    engine, sent = mock_vendor(settings, {"text": "", "words": []}, model="universal-3-pro")
    try:
        t = engine.transcribe(np.zeros(SAMPLE_RATE, np.float32), TranscriptionOptions(prompts=terms))
    finally:
        engine.close()
    (body,) = sent
    assert body["keyterms_prompt"][:2] == ["Kubernetes", "term0"]
    assert len(body["keyterms_prompt"]) == 1000
    assert len(t.warnings) == 2
    assert "more than 6 words" in t.warnings[0]
    assert "first 1000 of 1006" in t.warnings[1]
    assert t.segments == ()


# -- options it cannot honour ---------------------------------------------------------------------------------------


def test_unsupported_options_are_warnings_not_silence(
    fake: FakeAssemblyAI, connect: Connect, data: Path, sentence: np.ndarray
) -> None:
    t = connect().transcribe(sentence, TranscriptionOptions(prompt="A sentence about a dog.", word_timestamps=False))
    assert "prompt" not in fake.created[0]
    assert len(t.warnings) == 1
    assert "free-text prompt" in t.warnings[0]
    assert t.words == ()
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    assert t.segments
    assert all(s.end > s.start for s in t.segments)


def test_a_streaming_model_falls_back_to_a_batch_model_with_a_warning(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray
) -> None:
    t = connect("universal-streaming-multilingual").transcribe(sentence, TranscriptionOptions())
    assert fake.created[0]["speech_models"] == ["universal-2"]
    (warning,) = t.warnings
    assert "streaming model" in warning
    assert "universal-2" in warning
    assert t.model_id == "assemblyai/universal-streaming-multilingual"
    assert "dog" in t.text


# -- failures -------------------------------------------------------------------------------------------------------


def test_missing_key_is_model_unavailable(settings: Settings) -> None:
    with pytest.raises(ModelUnavailable, match="VOXGATE_ASSEMBLYAI_API_KEY"):
        engine_for(make_settings(settings.home, "http://127.0.0.1:9", key=None))


def test_refused_key_is_provider_unauthorized(fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray) -> None:
    engine = connect(key="not-the-key")
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_ASSEMBLYAI_API_KEY"):
        engine.transcribe(sentence, TranscriptionOptions())
    assert fake.calls == ["upload"]  # a refused key is not retried


def test_rate_limited_upload_waits_retry_after_then_succeeds(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray
) -> None:
    fake.fail("upload", Fault(429, b'{"error": "Too many requests"}', (("retry-after", "1"),)))
    started = time.monotonic()
    t = connect().transcribe(sentence, TranscriptionOptions())
    assert time.monotonic() - started >= 1.0
    assert fake.calls[:3] == ["upload", "upload", "create"]
    assert "dog" in t.text.lower()


def test_rate_limited_past_the_retries_is_provider_rate_limited(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray
) -> None:
    fake.fail("upload", *[Fault(429, b'{"error": "Too many requests"}', (("retry-after", "0"),))] * 3)
    with pytest.raises(ProviderRateLimited):
        connect().transcribe(sentence, TranscriptionOptions())
    assert fake.calls == ["upload"] * 3


def test_a_server_error_and_a_dropped_connection_while_polling_are_retried(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray
) -> None:
    fake.fail("poll", Fault(500), Fault.dropped())
    t = connect().transcribe(sentence, TranscriptionOptions())
    assert "dog" in t.text.lower()
    assert fake.calls.count("create") == 1
    assert fake.calls.count("poll") >= 2 + fake.polls_to_complete + 1


def test_creating_a_transcript_is_never_retried(fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray) -> None:
    """The job may exist despite the 5xx: a retry could bill the audio twice."""
    fake.fail("create", Fault(503, b'{"error": "Service unavailable"}'))
    with pytest.raises(ProviderError, match="503") as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls == ["upload", "create"]


def test_a_failed_job_raises_the_vendors_message(fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray) -> None:
    fake.job_error = "Transcoding failed. File does not appear to contain audio."
    with pytest.raises(ProviderError, match="File does not appear to contain audio") as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError


def test_a_job_that_never_completes_times_out(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AssemblyAIEngine, "processing_allowance", 0.0)
    fake.stall = True
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="did not finish"):
        connect(timeout=0.5).transcribe(sentence, TranscriptionOptions())
    assert 0.5 <= time.monotonic() - started < 3.0
    assert fake.calls.count("poll") > 2


@pytest.mark.parametrize(
    ("faults", "match"),
    [
        ([Fault.not_json()], "not JSON"),
        ([Fault.dropped()] * 3, "unreachable"),
        ([Fault(200, b'["a list"]')], "not an object"),
        ([Fault(200, b'{"id": "x", "status": "completed", "words": [{"text": "a"}]}')], "cannot read"),
        ([Fault(200, b'{"id": "x", "status": "exploded"}')], "unknown transcript status"),
    ],
)
def test_broken_answers_are_provider_errors(
    fake: FakeAssemblyAI, connect: Connect, sentence: np.ndarray, faults: list[Fault], match: str
) -> None:
    fake.stall = True
    fake.fail("poll", *faults)
    with pytest.raises(ProviderError, match=match) as caught:
        connect().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls.count("poll") == len(faults)


def test_unreachable_vendor_is_provider_error(connect: Connect, sentence: np.ndarray) -> None:
    engine = connect(base_url="http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(ProviderError, match="unreachable"):
        engine.transcribe(sentence, TranscriptionOptions())
