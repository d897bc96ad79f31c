"""The Deepgram adapter against a fake ``/v1/listen`` on loopback that transcribes the received audio for real.

Real speech goes through the adapter, over HTTP as Deepgram's query string and WAV body, into a fake that checks the
request as Deepgram would, transcribes it with voxgate's local whisper/base (with the request's language, or language
detection, and its key terms as hotwords) and answers in Deepgram's JSON. Failures are scripted per request.
"""

from __future__ import annotations

import json
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
from tests.engines.fake_vendors.deepgram_server import create_app
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines.deepgram import NO_PROMPT, NO_TEMPERATURE, DeepgramEngine
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
KEY = "dg-test-0123456789abcdef"

Make = Callable[..., DeepgramEngine]


@pytest.fixture(scope="module")
def deepgram_fake(service: Service) -> Iterator[tuple[FakeVendor, LiveServer]]:
    vendor = FakeVendor(service.engine(LOCAL), api_key=KEY)
    with LiveServer(create_app(vendor)) as server:
        yield vendor, server


@pytest.fixture
def fake(deepgram_fake: tuple[FakeVendor, LiveServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendor]:
    vendor, _ = deepgram_fake
    vendor.reset()
    monkeypatch.setattr(voxgate.engines.remote, "_BACKOFF_BASE", 0.01)
    yield vendor
    vendor.reset()


@pytest.fixture
def make(settings: Settings, deepgram_fake: tuple[FakeVendor, LiveServer]) -> Iterator[Make]:
    """Engines for ``deepgram/NAME`` pointed at the fake, built through the registry."""
    engines: list[DeepgramEngine] = []
    base: dict[str, Any] = {
        "deepgram_api_key": SecretStr(KEY),
        "deepgram_base_url": deepgram_fake[1].url,
        "provider_max_retries": 2,
        "provider_timeout_seconds": 60.0,
    }

    def build(model_id: str = "deepgram/nova-3", **update: Any) -> DeepgramEngine:
        engine = load_engine(resolve(model_id, settings.default_model), settings.model_copy(update=base | update))
        assert isinstance(engine, DeepgramEngine)
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
        assert s.words
        assert (s.start, s.end) == (s.words[0].start, s.words[-1].end)


# -- real speech ---------------------------------------------------------------------------------------------------


def test_nova3_round_trips_real_speech_with_words(make: Make, fake: FakeVendor, jfk: Audio, data: Path) -> None:
    t = make().transcribe(jfk, TranscriptionOptions(language="en"))
    assert t.model_id == "deepgram/nova-3"
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert (t.language, t.language_probability, t.warnings) == ("en", 1.0, ())
    words_are_sane(t)
    # punctuated_word, not word: "country." rather than "country"
    assert t.words[-1].word == "country."
    assert t.words[0].word == "And"
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    # utterances=true: segments are Deepgram's utterances, each with its own words
    assert sum(len(s.words) for s in t.segments) == len(t.words)
    (request,) = fake.received
    assert (request.method, request.path) == ("POST", "/v1/listen")
    assert request.headers["authorization"] == f"Token {KEY}"
    assert request.headers["content-type"] == "audio/wav"
    assert request.audio_seconds == pytest.approx(t.duration)
    assert sorted(request.query) == sorted(
        [
            ("model", "nova-3"),
            ("punctuate", "true"),
            ("smart_format", "true"),
            ("utterances", "true"),
            ("language", "en"),
        ]
    )


@pytest.mark.parametrize("clip", ["spk1_snt3.wav", "spk2_snt1.wav"])
def test_more_speakers(make: Make, fake: FakeVendor, data: Path, clip: str) -> None:
    t = make().transcribe(decode(data / "en" / clip), TranscriptionOptions(language="en"))
    assert wer(reference(data, f"en/{clip}"), t.text) <= 0.2, t.text
    words_are_sane(t)


def test_language_detection(make: Make, fake: FakeVendor, jfk: Audio) -> None:
    t = make().transcribe(jfk, TranscriptionOptions())
    assert t.language == "en"
    assert t.language_probability is not None
    assert 0.5 < t.language_probability <= 1.0
    assert all(s.language == "en" for s in t.segments)
    (request,) = fake.received
    assert request.params("detect_language") == ["true"]
    assert request.params("language") == []


def test_keyterms_on_nova3(make: Make, fake: FakeVendor, comfyui: Audio) -> None:
    engine = make()
    plain = engine.transcribe(comfyui, TranscriptionOptions(language="en"))
    assert "ComfyUI" not in plain.text  # whisper/base alone does not know the name
    t = engine.transcribe(comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI",)))
    assert "ComfyUI" in t.text, t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)
    request = fake.received[-1]
    assert request.params("keyterm") == ["ComfyUI"]
    assert request.params("keywords") == []


def test_keywords_on_older_models(make: Make, fake: FakeVendor, comfyui: Audio) -> None:
    t = make("deepgram/nova-2").transcribe(comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI", " ")))
    assert "ComfyUI" in t.text, t.text
    (request,) = fake.received
    assert request.params("model") == ["nova-2"]
    assert request.params("keywords") == ["ComfyUI:2"]
    assert request.params("keyterm") == []


def test_options_deepgram_cannot_honour_are_warned_about(make: Make, fake: FakeVendor, short: Audio) -> None:
    t = make().transcribe(short, TranscriptionOptions(language="en", prompt="What joy", temperature=0.4))
    assert t.warnings == (NO_PROMPT, NO_TEMPERATURE)
    assert "joy" in t.text.lower()
    (request,) = fake.received
    assert {k for k, _ in request.query} == {"model", "punctuate", "smart_format", "utterances", "language"}


def test_word_timestamps_off_drops_the_words(make: Make, fake: FakeVendor, jfk: Audio) -> None:
    t = make().transcribe(jfk, TranscriptionOptions(language="en", word_timestamps=False))
    assert t.words == ()
    assert t.segments
    assert "country" in t.text


def test_an_answer_without_utterances_is_one_segment(make: Make, fake: FakeVendor, short: Audio) -> None:
    body = (
        b'{"metadata": {"duration": 1.76, "channels": 1}, "results": {"channels": [{"alternatives": [{'
        b'"transcript": "What joy there is in living.", "confidence": 0.98, "words": ['
        b'{"word": "what", "start": 0.1, "end": 0.3, "confidence": 0.99, "punctuated_word": "What"},'
        b'{"word": "living", "start": 1.2, "end": 1.6, "confidence": 0.97}]}]}]}}'
    )
    fake.script(Fault(body=body))
    t = make().transcribe(short, TranscriptionOptions(language="en"))
    (segment,) = t.segments
    assert segment.text == "What joy there is in living."
    assert (segment.start, segment.end) == (0.1, 1.6)
    assert [w.word for w in t.words] == ["What", "living"]  # punctuated_word when given, else word


def test_utterances_become_segments(make: Make, fake: FakeVendor, short: Audio) -> None:
    def word(text: str, start: float, end: float) -> dict[str, Any]:
        return {"word": text.lower().strip("."), "start": start, "end": end, "confidence": 0.9, "punctuated_word": text}

    def utterance(channel: int, text: str, words: list[dict[str, Any]]) -> dict[str, Any]:
        start, end = (words[0]["start"], words[-1]["end"]) if words else (0.2, 0.4)
        return {"start": start, "end": end, "confidence": 0.9, "channel": channel, "transcript": text, "words": words}

    alternative = {"transcript": "What joy. Living.", "confidence": 0.9, "words": []}
    body = {
        "metadata": {"duration": 1.76, "channels": 1},
        "results": {
            "channels": [{"alternatives": [alternative], "detected_language": "en-US", "language_confidence": 0.87}],
            "utterances": [
                utterance(0, "What joy.", [word("What", 0.1, 0.3), word("joy.", 0.3, 0.6)]),
                utterance(1, "Another channel.", []),
                utterance(0, "Living.", [word("Living.", 1.5, 1.7)]),
            ],
        },
    }
    fake.script(Fault(body=json.dumps(body).encode()))
    t = make().transcribe(short, TranscriptionOptions())
    assert [(s.text, s.start, s.end, len(s.words)) for s in t.segments] == [
        ("What joy.", 0.1, 0.6, 2),
        ("Living.", 1.5, 1.7, 1),
    ]
    assert (t.language, t.language_probability) == ("en", 0.87)  # en-US is reduced to voxgate's code


# -- configuration and refusals ------------------------------------------------------------------------------------


def test_missing_key_names_the_variable(settings: Settings) -> None:
    no_key = settings.model_copy(update={"deepgram_api_key": None})
    with pytest.raises(ModelUnavailable, match="VOXGATE_DEEPGRAM_API_KEY"):
        load_engine(resolve("deepgram/nova-3", settings.default_model), no_key)


def test_translation_is_refused_before_any_call(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(InvalidRequest, match="translat"):
        make().transcribe(short, TranscriptionOptions(task="translate"))
    assert fake.received == []


def test_the_fake_checks_the_wire_format(deepgram_fake: tuple[FakeVendor, LiveServer], short: Audio) -> None:
    """The fake refuses what Deepgram refuses, so a passing adapter test means a well-formed request."""
    vendor, server = deepgram_fake
    url = f"{server.url}/v1/listen"
    wav = to_wav(short)
    good = {"Authorization": f"Token {KEY}", "Content-Type": "audio/wav"}
    cases: list[tuple[dict[str, str], list[tuple[str, str | int | float | bool | None]], bytes, int]] = [
        ({**good, "Authorization": f"Bearer {KEY}"}, [("model", "nova-3")], wav, 401),
        (good, [("model", "nova-2"), ("keyterm", "ComfyUI")], wav, 400),
        (good, [("model", "nova-3"), ("keywords", "ComfyUI:2")], wav, 400),
        (good, [("model", "nova-3"), ("punctuate", "yes")], wav, 400),
        (good, [("model", "nova-3"), ("language", "en"), ("detect_language", "true")], wav, 400),
        (good, [("model", "nova-9")], wav, 400),
        (good, [("model", "nova-3"), ("keyterms", "x")], wav, 400),
        ({**good, "Content-Type": "application/json"}, [("model", "nova-3")], wav, 400),
        (good, [("model", "nova-3")], wav[:44], 400),
    ]
    with httpx.Client() as client:
        for headers, params, body, status in cases:
            response = client.post(url, params=params, content=body, headers=headers)
            assert response.status_code == status, (params, response.text)
            assert {"err_code", "err_msg", "request_id"} <= response.json().keys()
        ok = client.post(url, params=[("model", "nova-3"), ("language", "en")], content=wav, headers=good)
        assert ok.status_code == 200
        assert ok.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
    vendor.reset()


# -- failures ------------------------------------------------------------------------------------------------------


def test_a_refused_key_is_provider_unauthorized_and_not_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(ProviderUnauthorized, match="VOXGATE_DEEPGRAM_API_KEY"):
        make(deepgram_api_key=SecretStr("dg-wrong")).transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [401]


def test_a_request_deepgram_refuses_is_a_provider_error_with_its_reason(
    make: Make, fake: FakeVendor, short: Audio
) -> None:
    with pytest.raises(ProviderError, match="No such model"):
        make("deepgram/nova-9").transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [400]


def test_429_is_retried_after_retry_after(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(status=429, retry_after="0.3"))
    assert "joy" in make().transcribe(short, TranscriptionOptions(language="en")).text.lower()
    first, second = fake.received
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.3


def test_5xx_twice_then_success(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(status=502), Fault(status=500))
    assert "joy" in make().transcribe(short, TranscriptionOptions(language="en")).text.lower()
    assert [r.status for r in fake.received] == [502, 500, 200]


def test_permanent_500_fails_after_the_retries(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(status=500)] * 5)
    with pytest.raises(ProviderError, match="deepgram answered 500") as info:
        make().transcribe(short, TranscriptionOptions(language="en"))
    assert type(info.value) is ProviderError
    assert len(fake.received) == 3


def test_permanent_429_is_rate_limited(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(status=429)] * 5)
    with pytest.raises(ProviderRateLimited):
        make().transcribe(short, TranscriptionOptions(language="en"))
    assert len(fake.received) == 3


def test_a_dropped_connection_is_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(drop=True), Fault(drop=True))
    assert "joy" in make().transcribe(short, TranscriptionOptions(language="en")).text.lower()
    assert len(fake.received) == 3


def test_connections_that_keep_dropping_are_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(*[Fault(drop=True)] * 3)
    with pytest.raises(ProviderError, match="unreachable"):
        make().transcribe(short, TranscriptionOptions(language="en"))


def test_a_body_that_is_not_json_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b"<html>upstream connect error</html>"))
    with pytest.raises(ProviderError, match="not JSON"):
        make().transcribe(short, TranscriptionOptions(language="en"))


def test_json_of_another_shape_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b'{"results": {"channels": []}}'))
    with pytest.raises(ProviderError, match="unexpected body"):
        make().transcribe(short, TranscriptionOptions(language="en"))


def test_a_slow_answer_times_out(make: Make, fake: FakeVendor, short: Audio) -> None:
    engine = make(provider_timeout_seconds=0.5, provider_max_retries=0)
    fake.script(Fault(delay=1.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        engine.transcribe(short, TranscriptionOptions(language="en"))
    assert time.monotonic() - started < 0.95
    assert len(fake.received) == 1
