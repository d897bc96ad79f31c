"""The OpenAI and Groq adapters against fake vendors on loopback that transcribe the received audio for real.

Real speech goes through the adapter, over HTTP in OpenAI's multipart format, into a fake that checks the request as
OpenAI would, transcribes it with voxgate's local whisper/base (with the request's language and prompt) and answers in
OpenAI's ``verbose_json`` / ``json``. Failures are scripted per request on the fake; those every cloud adapter handles
alike (keys, retries, timeouts, broken answers) are in test_contract.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines.fake_vendors import FakeVendor, Fault
from tests.engines.harness import GROQ, OPENAI, Cloud, Make, Speech, cloud_fixture, heard_jfk
from tests.speech import reference, wer
from voxgate.audio.pcm import encode_wav
from voxgate.engines.openai.rest import GroqEngine
from voxgate.engines.openai.wire import language_code
from voxgate.errors import ProviderError
from voxgate.types import Audio, GroqOptions, TranscriptionOptions

LOCAL = "whisper/base"
KEY = OPENAI.key
cloud = cloud_fixture(OPENAI, LOCAL)  # each test's fake OpenAI; conftest's ``fake`` and ``make`` use it
groq = cloud_fixture(GROQ, LOCAL)


# -- real speech ---------------------------------------------------------------------------------------------------


def test_whisper1_round_trips_real_speech_with_words(make: Make, fake: FakeVendor, jfk_speech: Speech) -> None:
    t = make().transcribe(jfk_speech.audio, TranscriptionOptions(language="en"))
    heard_jfk(t, OPENAI, jfk_speech)
    assert t.language_probability == 1.0
    # OpenAI's words come bare; the adapter gives them their segment's punctuation, as voxgate's local words have.
    assert t.words[-1].word == "country."
    assert all(s.avg_logprob is not None for s in t.segments)
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
    OPENAI.sane(t)
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


def test_groq_speaks_the_same_api_at_its_own_base_url(groq: Cloud[FakeVendor], jfk: Audio, data: Path) -> None:
    engine = groq.engine("groq/whisper-large-v3-turbo")
    assert isinstance(engine, GroqEngine)
    t = engine.transcribe(jfk, TranscriptionOptions())
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert t.language == "en"  # the Groq fake says "English"
    OPENAI.sane(t)
    (request,) = groq.fake.received
    assert request.path == "/openai/v1/audio/transcriptions"
    assert request.headers["authorization"] == f"Bearer {GROQ.key}"
    assert request.form["model"] == ["whisper-large-v3-turbo"]


def test_an_empty_answer_gives_no_segments(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(
        Fault(body=b'{"task": "transcribe", "language": "english", "duration": 1.76, "text": "", "segments": []}')
    )
    t = make().transcribe(short, TranscriptionOptions())
    assert t.segments == ()
    assert t.text == ""
    assert t.language == "en"


# -- configuration, refusals and answers only OpenAI gives -----------------------------------------------------------


def test_registry_and_capabilities(make: Make) -> None:
    engine = make()
    assert engine.capabilities.remote
    assert engine.capabilities.word_timestamps
    assert not engine.capabilities.translate
    assert "de" in engine.capabilities.languages


def test_an_unknown_model_is_a_provider_error_and_not_retried(make: Make, fake: FakeVendor, short: Audio) -> None:
    with pytest.raises(ProviderError, match=r"404.*does not exist"):
        make("openai/whisper-2").transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [404]


def test_json_of_another_shape_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b'{"transcript": "hello"}'))
    with pytest.raises(ProviderError, match="unexpected body"):
        make("openai/gpt-4o-transcribe").transcribe(short, TranscriptionOptions(language="en"))


def test_the_fake_checks_the_wire_format(cloud: Cloud[FakeVendor], short: Audio) -> None:
    """The fake refuses what OpenAI refuses, so a passing adapter test means a well-formed request."""
    url = f"{cloud.url}/v1/audio/transcriptions"
    auth = {"Authorization": f"Bearer {KEY}"}
    wav = encode_wav(short)
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


# -- the reference's groqConfig --------------------------------------------------------------------------------------


def test_groq_config_temperature_reaches_groq(groq: Cloud[FakeVendor], short: Audio) -> None:
    t = groq.engine("groq/whisper-large-v3").transcribe(
        short, TranscriptionOptions(language="en", vendor=GroqOptions(temperature=0.2))
    )
    assert "joy" in t.text.lower()
    (request,) = groq.fake.received
    assert request.form["temperature"] == ["0.2"]


def test_groq_config_is_not_openais(make: Make, fake: FakeVendor, short: Audio) -> None:
    make().transcribe(short, TranscriptionOptions(language="en", vendor=GroqOptions(temperature=0.2)))
    (request,) = fake.received
    assert request.form["temperature"] == ["0.0"]
