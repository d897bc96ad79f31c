"""The OpenAI and Groq adapters against fake vendors on loopback that transcribe the received audio for real.

Real speech goes through the adapter, over HTTP in OpenAI's multipart format, into a fake that checks the request as
OpenAI would, transcribes it with voxgate's local whisper/base (with the request's language and prompt) and answers in
OpenAI's ``verbose_json`` / ``json``. Failures are scripted per request on the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import voxgate.engines.remote
from tests.conftest import LiveServer
from tests.engines.fake_vendors import FakeVendor, Fault
from tests.engines.fake_vendors.openai_server import GROQ_MODELS, create_app
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines.openai import GroqEngine, OpenAIEngine, language_code
from voxgate.engines.registry import load_engine
from voxgate.engines.remote import to_wav
from voxgate.errors import (
    InvalidRequest,
    ModelUnavailable,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.models.catalog import resolve
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

LOCAL = "whisper/base"
KEY = "sk-test-0123456789"
GROQ_KEY = "gsk_test_0123456789"

Make = Callable[..., OpenAIEngine]


@pytest.fixture(scope="module")
def openai_fake(service: Service) -> Iterator[tuple[FakeVendor, LiveServer]]:
    vendor = FakeVendor(service.engine(LOCAL), api_key=KEY)
    with LiveServer(create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture(scope="module")
def groq_fake(service: Service) -> Iterator[tuple[FakeVendor, LiveServer]]:
    vendor = FakeVendor(service.engine(LOCAL), api_key=GROQ_KEY)
    with LiveServer(create_app(vendor, prefix="/openai/v1", models=GROQ_MODELS)) as server:
        yield vendor, server


@pytest.fixture
def fake(openai_fake: tuple[FakeVendor, LiveServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendor]:
    vendor, _ = openai_fake
    vendor.reset()
    monkeypatch.setattr(voxgate.engines.remote, "_BACKOFF_BASE", 0.01)
    yield vendor
    vendor.reset()


@pytest.fixture
def make(
    settings: Settings, openai_fake: tuple[FakeVendor, LiveServer], groq_fake: tuple[FakeVendor, LiveServer]
) -> Iterator[Make]:
    """Engines for ``openai/NAME`` (or ``groq/NAME``) pointed at the fakes, built through the registry."""
    engines: list[OpenAIEngine] = []
    base: dict[str, Any] = {
        "openai_api_key": SecretStr(KEY),
        "openai_base_url": f"{openai_fake[1].url}/v1",
        "groq_api_key": SecretStr(GROQ_KEY),
        "groq_base_url": f"{groq_fake[1].url}/openai/v1",
        "provider_max_retries": 2,
        "provider_timeout_seconds": 60.0,
    }

    def build(model_id: str = "openai/whisper-1", **update: Any) -> OpenAIEngine:
        engine = load_engine(resolve(model_id, settings.default_model), settings.model_copy(update=base | update))
        assert isinstance(engine, OpenAIEngine)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture(scope="module")
def jfk(data: Path) -> Audio:
    return decode(data / "en" / "jfk.flac")


@pytest.fixture(scope="module")
def short(data: Path) -> Audio:
    return decode(data / "en" / "spk2_snt2.wav")


@pytest.fixture(scope="module")
def comfyui(data: Path) -> Audio:
    return decode(data / "vocabulary" / "comfyui.mp3")


def words_are_sane(t: Transcript) -> None:
    assert t.words, "no words"
    for w in t.words:
        assert w.word
        assert w.word.strip() == w.word
        assert 0.0 <= w.start <= w.end <= t.duration
        assert 0.0 < w.confidence <= 1.0
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)
    for s in t.segments:
        assert all(s.start - 0.05 <= w.start and w.end <= s.end + 0.05 for w in s.words)


# -- real speech ---------------------------------------------------------------------------------------------------


def test_whisper1_round_trips_real_speech_with_words(make: Make, fake: FakeVendor, jfk: Audio, data: Path) -> None:
    t = make().transcribe(jfk, TranscriptionOptions(language="en"))
    assert t.model_id == "openai/whisper-1"
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert (t.language, t.language_probability, t.warnings) == ("en", 1.0, ())
    words_are_sane(t)
    # OpenAI's words come bare; the adapter gives them their segment's punctuation, as voxgate's local words have.
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].word == "country."
    assert t.words[-1].end > 9.0
    assert all(s.language == "en" and s.avg_logprob is not None for s in t.segments)
    (request,) = fake.received
    assert request.path == "/v1/audio/transcriptions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert (request.file_name, request.file_type) == ("audio.wav", "audio/wav")
    assert request.audio_seconds == pytest.approx(t.duration)
    assert request.form == {
        "model": ["whisper-1"],
        "temperature": ["0.0"],
        "language": ["en"],
        "response_format": ["verbose_json"],
        "timestamp_granularities[]": ["word", "segment"],
    }


@pytest.mark.parametrize("clip", ["spk1_snt3.wav", "spk2_snt1.wav"])
def test_more_speakers(make: Make, fake: FakeVendor, data: Path, clip: str) -> None:
    t = make().transcribe(decode(data / "en" / clip), TranscriptionOptions(language="en"))
    assert wer(reference(data, f"en/{clip}"), t.text) <= 0.2, t.text
    words_are_sane(t)


def test_detected_language_name_maps_back_to_its_code(make: Make, fake: FakeVendor, jfk: Audio) -> None:
    t = make().transcribe(jfk, TranscriptionOptions())
    assert t.language == "en"  # the fake said "english", as OpenAI does
    assert t.language_probability is None  # OpenAI does not say how sure it is
    assert "language" not in fake.received[0].form
    assert "country" in t.text


def test_language_names() -> None:
    assert language_code("english") == "en"
    assert language_code("English") == "en"
    assert language_code("castilian") == "es"
    assert language_code("haitian creole") == "ht"
    assert language_code("de") == "de"
    assert language_code("klingon") is None
    assert language_code(None) is None


def test_vocabulary_goes_through_the_prompt(make: Make, fake: FakeVendor, comfyui: Audio) -> None:
    engine = make()
    plain = engine.transcribe(comfyui, TranscriptionOptions(language="en"))
    assert "ComfyUI" not in plain.text  # whisper/base alone does not know the name
    t = engine.transcribe(
        comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI",), prompt="Installing nodes.")
    )
    assert "ComfyUI" in t.text, t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)
    words_are_sane(t)
    assert fake.received[-1].form["prompt"] == ["ComfyUI Installing nodes."]
    assert "prompt" not in fake.received[0].form


def test_word_timestamps_off_asks_for_segments_only(make: Make, fake: FakeVendor, jfk: Audio) -> None:
    t = make().transcribe(jfk, TranscriptionOptions(language="en", word_timestamps=False))
    assert t.words == ()
    assert t.segments
    assert "country" in t.text
    assert fake.received[0].form["timestamp_granularities[]"] == ["segment"]


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
def test_gpt4o_models_give_text_and_say_there_are_no_word_times(
    make: Make, fake: FakeVendor, jfk: Audio, data: Path, model: str
) -> None:
    engine = make(f"openai/{model}")
    assert not engine.capabilities.word_timestamps
    t = engine.transcribe(jfk, TranscriptionOptions(language="en"))
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert t.words == ()
    assert [(s.start, s.end) for s in t.segments] == [(0.0, t.duration)]
    assert t.warnings == (f"word timestamps are not available from openai/{model}",)
    form = fake.received[0].form
    assert form["response_format"] == ["json"]
    assert "timestamp_granularities[]" not in form
    # Without word times asked for, nothing is missing: no warning.
    assert engine.transcribe(jfk, TranscriptionOptions(language="en", word_timestamps=False)).warnings == ()


def test_groq_speaks_the_same_api_at_its_own_base_url(
    make: Make, groq_fake: tuple[FakeVendor, LiveServer], jfk: Audio, data: Path
) -> None:
    vendor, _ = groq_fake
    vendor.reset()
    engine = make("groq/whisper-large-v3-turbo")
    assert isinstance(engine, GroqEngine)
    t = engine.transcribe(jfk, TranscriptionOptions())
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert t.language == "en"  # the Groq fake says "English"
    words_are_sane(t)
    (request,) = vendor.received
    assert request.path == "/openai/v1/audio/transcriptions"
    assert request.headers["authorization"] == f"Bearer {GROQ_KEY}"
    assert request.form["model"] == ["whisper-large-v3-turbo"]


def test_an_empty_answer_gives_no_segments(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(
        Fault(body=b'{"task": "transcribe", "language": "english", "duration": 1.76, "text": "", "segments": []}')
    )
    t = make().transcribe(short, TranscriptionOptions())
    assert t.segments == ()
    assert t.text == ""
    assert t.language == "en"


# -- configuration and refusals ------------------------------------------------------------------------------------


def test_registry_and_capabilities(make: Make) -> None:
    engine = make()
    assert engine.capabilities.remote
    assert engine.capabilities.word_timestamps
    assert not engine.capabilities.translate
    assert "de" in engine.capabilities.languages


@pytest.mark.parametrize(("model_id", "variable"), [("openai/whisper-1", "OPENAI"), ("groq/whisper-large-v3", "GROQ")])
def test_missing_key_names_the_variable(settings: Settings, model_id: str, variable: str) -> None:
    no_key = settings.model_copy(update={f"{variable.lower()}_api_key": None})
    with pytest.raises(ModelUnavailable, match=f"VOXGATE_{variable}_API_KEY"):
        load_engine(resolve(model_id, settings.default_model), no_key)


def test_translation_is_refused_before_any_call(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(InvalidRequest, match="translat"):
        make().transcribe(short, TranscriptionOptions(task="translate"))
    assert fake.received == []


def test_the_fake_checks_the_wire_format(openai_fake: tuple[FakeVendor, LiveServer], short: Audio) -> None:
    """The fake refuses what OpenAI refuses, so a passing adapter test means a well-formed request."""
    vendor, server = openai_fake
    url = f"{server.url}/v1/audio/transcriptions"
    auth = {"Authorization": f"Bearer {KEY}"}
    wav = to_wav(short)
    eight_khz = wav[:24] + (8000).to_bytes(4, "little") + wav[28:]
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"model": "whisper-1"}, {"file": ("a.wav", eight_khz, "audio/wav")}, "16 kHz"),
        ({"model": "whisper-1"}, {"file": ("a.wav", b"RIFF....", "audio/wav")}, "not a valid WAV"),
        ({"model": "whisper-1"}, {"file": ("audio.bin", wav, "audio/wav")}, "Invalid file format"),
        ({"model": "gpt-4o-transcribe", "response_format": "verbose_json"}, {"file": ("a.wav", wav)}, "not compatible"),
        ({"model": "whisper-1", "timestamp_granularities[]": "word"}, {"file": ("a.wav", wav)}, "verbose_json"),
        ({"model": "whisper-1", "language": "english"}, {"file": ("a.wav", wav)}, "ISO-639-1"),
        ({"model": "whisper-1", "keyterms": "x"}, {"file": ("a.wav", wav)}, "Unrecognized"),
    ]
    with httpx.Client(headers=auth) as client:
        for form, files, message in cases:
            response = client.post(url, data=form, files=files)
            assert response.status_code == 400, (form, response.text)
            assert message in response.json()["error"]["message"]
        assert client.post(url, data={"model": "whisper-1"}, files={"file": ("a.wav", wav)}).status_code == 200
    vendor.reset()


# -- failures ------------------------------------------------------------------------------------------------------


def test_a_refused_key_is_provider_unauthorized_and_not_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_OPENAI_API_KEY"):
        make(openai_api_key=SecretStr("sk-wrong")).transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [401]


def test_an_unknown_model_is_a_provider_error_and_not_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(ProviderError, match=r"404.*does not exist"):
        make("openai/whisper-2").transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [404]


def test_429_is_retried_after_retry_after(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(status=429, retry_after="0.3"))
    t = make().transcribe(short, TranscriptionOptions(language="en"))
    assert "joy" in t.text.lower()
    first, second = fake.received
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.3


def test_5xx_twice_then_success(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(status=500), Fault(status=503))
    t = make().transcribe(short, TranscriptionOptions(language="en"))
    assert "joy" in t.text.lower()
    assert [r.status for r in fake.received] == [500, 503, 200]


def test_permanent_500_fails_after_the_retries(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(status=500)] * 5)
    with pytest.raises(ProviderError, match="openai answered 500") as info:
        make().transcribe(short, TranscriptionOptions(language="en"))
    assert type(info.value) is ProviderError
    assert len(fake.received) == 3  # one try and provider_max_retries=2


def test_permanent_429_is_rate_limited(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(status=429, retry_after="0")] * 5)
    with pytest.raises(ProviderRateLimited):
        make().transcribe(short, TranscriptionOptions(language="en"))
    assert len(fake.received) == 3


def test_a_dropped_connection_is_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(drop=True))
    assert "joy" in make().transcribe(short, TranscriptionOptions(language="en")).text.lower()
    assert len(fake.received) == 2


def test_connections_that_keep_dropping_are_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(drop=True)] * 3)
    with pytest.raises(ProviderError, match="unreachable"):
        make().transcribe(short, TranscriptionOptions(language="en"))
    assert len(fake.received) == 3


def test_a_body_that_is_not_json_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b"<html><body>502 Bad Gateway</body></html>"))
    with pytest.raises(ProviderError, match="not JSON"):
        make().transcribe(short, TranscriptionOptions(language="en"))


def test_json_of_another_shape_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b'{"transcript": "hello"}'))
    with pytest.raises(ProviderError, match="unexpected body"):
        make("openai/gpt-4o-transcribe").transcribe(short, TranscriptionOptions(language="en"))


def test_a_slow_answer_times_out(make: Make, fake: FakeVendor, short: Audio) -> None:
    engine = make(provider_timeout_seconds=0.5, provider_max_retries=1)
    fake.script(Fault(delay=1.0), Fault(delay=1.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        engine.transcribe(short, TranscriptionOptions(language="en"))
    assert time.monotonic() - started < 1.8  # two tries of 0.5 s, not two full 1 s delays
    assert len(fake.received) == 2


def test_one_slow_answer_is_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    options = TranscriptionOptions(language="en")
    make().transcribe(short, options)  # the fake now has this transcript at hand: its next answer is quick
    fake.script(Fault(delay=1.0))
    assert "joy" in make(provider_timeout_seconds=0.5).transcribe(short, options).text.lower()
    assert len(fake.received) == 3
