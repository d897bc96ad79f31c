"""The Deepgram adapter against a fake ``/v1/listen`` on loopback that transcribes the received audio for real.

Real speech goes through the adapter, over HTTP as Deepgram's query string and WAV body, into a fake that checks the
request as Deepgram would, transcribes it with voxgate's local whisper/base (with the request's language, or language
detection, and its key terms as hotwords) and answers in Deepgram's JSON. Failures are scripted per request; those
every cloud adapter handles alike (keys, retries, timeouts, broken answers) are in test_every_cloud.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.engines.fake_vendors import FakeVendor, Fault
from tests.engines.harness import DEEPGRAM, Cloud, Make, Speech, cloud_fixture, heard_jfk
from voxgate.audio.pcm import encode_wav
from voxgate.engines.deepgram.rest import NO_ENDPOINTING, NO_PROMPT, NO_TEMPERATURE
from voxgate.errors import ProviderError
from voxgate.types import Audio, DeepgramOptions, GroqOptions, TranscriptionOptions

LOCAL = "whisper/base"
KEY = DEEPGRAM.key
cloud = cloud_fixture(DEEPGRAM, LOCAL)  # each test's fake Deepgram; conftest's ``fake`` and ``make`` use it


# -- real speech ---------------------------------------------------------------------------------------------------


def test_nova3_round_trips_real_speech_with_words(make: Make, fake: FakeVendor, jfk_speech: Speech) -> None:
    t = make().transcribe(jfk_speech.audio, TranscriptionOptions(language="en"))
    heard_jfk(t, DEEPGRAM, jfk_speech)
    assert t.language_probability == 1.0
    # punctuated_word, not word: "country." rather than "country"
    assert t.words[-1].word == "country."
    assert t.words[0].word == "And"
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


# -- refusals and answers only Deepgram gives ---------------------------------------------------------------------


def test_a_request_deepgram_refuses_is_a_provider_error_with_its_reason(
    make: Make, fake: FakeVendor, short: Audio
) -> None:
    with pytest.raises(ProviderError, match="No such model"):
        make("deepgram/nova-9").transcribe(short, TranscriptionOptions(language="en"))
    assert [r.status for r in fake.received] == [400]


def test_json_of_another_shape_is_a_provider_error(make: Make, fake: FakeVendor, short: Audio) -> None:
    fake.script(Fault(body=b'{"results": {"channels": []}}'))
    with pytest.raises(ProviderError, match="unexpected body"):
        make().transcribe(short, TranscriptionOptions(language="en"))


def test_the_fake_checks_the_wire_format(cloud: Cloud[FakeVendor], short: Audio) -> None:
    """The fake refuses what Deepgram refuses, so a passing adapter test means a well-formed request."""
    url = f"{cloud.url}/v1/listen"
    wav = encode_wav(short)
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


# -- the reference's provider block and routed ids ------------------------------------------------------------------


def test_deepgram_config_reaches_the_vendor(make: Make, fake: FakeVendor, comfyui: Audio) -> None:
    block = DeepgramOptions(
        keyterms=("ComfyUI",), smart_format=False, profanity_filter=True, filler_words=True, numerals=True,
        endpointing=300,
    )  # fmt: skip
    t = make().transcribe(comfyui, TranscriptionOptions(language="en", vendor=block))
    assert "ComfyUI" in t.text, t.text  # the block's key term reached the vendor, which heard it
    (request,) = fake.received
    assert request.params("keyterm") == ["ComfyUI"]
    assert request.params("smart_format") == ["false"]
    assert request.params("punctuate") == ["true"]
    assert [request.params(k) for k in ("profanity_filter", "filler_words", "numerals")] == [["true"]] * 3
    assert request.params("endpointing") == []  # a stream setting: said, not sent
    assert t.warnings == (NO_ENDPOINTING,)


def test_another_vendors_block_is_not_deepgrams_business(make: Make, fake: FakeVendor, short: Audio) -> None:
    # A fallback list's block travels with the options; only its own vendor's engine reads it.
    make().transcribe(short, TranscriptionOptions(language="en", vendor=GroqOptions(temperature=0.9)))
    (request,) = fake.received
    assert {k for k, _ in request.query} == {"model", "punctuate", "smart_format", "utterances", "language"}


@pytest.mark.parametrize(("model", "language"), [("flux-general-en", ["en"]), ("flux-general-multi", [])])
def test_flux_ids_are_served_by_nova3_with_a_warning(
    make: Make, fake: FakeVendor, short: Audio, model: str, language: list[str]
) -> None:
    t = make(f"deepgram/{model}").transcribe(short, TranscriptionOptions())
    assert "joy" in t.text.lower()
    assert t.model_id == f"deepgram/{model}"
    (request,) = fake.received
    assert request.params("model") == ["nova-3"]
    assert request.params("language") == language
    assert request.params("detect_language") == ([] if language else ["true"])
    (warning,) = t.warnings
    assert "nova-3" in warning
