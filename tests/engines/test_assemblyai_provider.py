"""assemblyai/*: real speech through the AssemblyAI adapter against a fake AssemblyAI on loopback.

The fake (tests/engines/fake_vendors/assemblyai_server.py) checks every request's shape and transcribes the uploaded
audio with voxgate's real tiny.en engine, so text, word times, language and vocabulary here are real. A few mapping
details (segmentation, respelling, term limits) are checked against an in-process mock vendor instead. The failures
every cloud adapter handles alike (keys, retries, timeouts, failed and stalled jobs) are in test_contract.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.engines.fake_vendors import Fault
from tests.engines.fake_vendors.assemblyai_server import FakeAssemblyAI
from tests.engines.harness import ASSEMBLYAI, Make, Speech, cloud_fixture, heard_jfk
from tests.speech import reference, wer
from voxgate.config import Settings
from voxgate.engines.assemblyai.rest import AssemblyAIEngine
from voxgate.engines.base import Engine
from voxgate.errors import ProviderError
from voxgate.models.catalog import resolve
from voxgate.types import SAMPLE_RATE, AssemblyAIOptions, Audio, TranscriptionOptions

LOCAL = "whisper/tiny.en"
ISSUED = re.compile(r"https://cdn\.assemblyai\.com/upload/[0-9a-f-]{36}")
cloud = cloud_fixture(ASSEMBLYAI, LOCAL)  # each test's fake AssemblyAI; conftest's ``fake`` and ``make`` use it


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

    config = settings.model_copy(
        update={
            "assemblyai_api_key": SecretStr("aai-mock-key"),
            "assemblyai_base_url": "https://api.assemblyai.invalid",
        }
    )
    return AssemblyAIEngine(resolve(f"assemblyai/{model}", ""), config, transport=httpx.MockTransport(vendor)), sent


def vendor_words(*words: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"text": w, "start": s, "end": e, "confidence": 0.9, "speaker": None} for w, s, e in words]


# -- results --------------------------------------------------------------------------------------------------------


def test_transcribes_real_speech_with_word_times(fake: FakeAssemblyAI, make: Make, jfk_speech: Speech) -> None:
    engine = make()
    assert isinstance(engine, AssemblyAIEngine)
    assert engine.model_id == "assemblyai/universal-3-pro"
    assert engine.capabilities.remote
    t = engine.transcribe(jfk_speech.audio, TranscriptionOptions(language="en"))
    heard_jfk(t, ASSEMBLYAI, jfk_speech)
    assert t.language_probability is None  # given, not detected

    # What AssemblyAI was sent: one upload, one job, polls until it completed.
    (body,) = fake.created
    assert ISSUED.fullmatch(body.pop("audio_url"))
    assert body == {"speech_models": ["universal-3-pro"], "language_code": "en", "punctuate": True, "format_text": True}
    assert fake.calls[:2] == ["upload", "create"]
    assert set(fake.calls[2:]) == {"poll"}
    assert len(fake.calls) >= 2 + fake.polls_to_complete + 1


def test_detects_the_language_when_none_is_given(fake: FakeAssemblyAI, make: Make, data: Path, sentence: Audio) -> None:
    t = make().transcribe(sentence, TranscriptionOptions())
    (body,) = fake.created
    assert body["language_detection"] is True
    assert "language_code" not in body
    assert t.language == "en"
    assert t.language_probability is not None
    assert 0.5 < t.language_probability <= 1.0
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    ASSEMBLYAI.sane(t)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("universal-3-pro", {"keyterms_prompt": ["ComfyUI"]}),
        ("slam-1", {"keyterms_prompt": ["ComfyUI"]}),
        ("universal-2", {"word_boost": ["ComfyUI"], "boost_param": "high"}),
    ],
)
def test_vocabulary_reaches_the_vendor_and_the_transcript(
    fake: FakeAssemblyAI, make: Make, comfyui: Audio, model: str, fields: dict[str, object]
) -> None:
    t = make(f"assemblyai/{model}").transcribe(
        comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI", " ", "ComfyUI"))
    )
    (body,) = fake.created
    assert {k: body[k] for k in fields} == fields
    assert not {"keyterms_prompt", "word_boost", "boost_param"} - set(fields) & set(body)
    assert "ComfyUI" in t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)
    assert t.warnings == ()


def test_without_vocabulary_the_term_is_misheard(fake: FakeAssemblyAI, make: Make, comfyui: Audio) -> None:
    """The control for the test above: the vocabulary is what makes the difference."""
    t = make().transcribe(comfyui, TranscriptionOptions(language="en"))
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
    fake: FakeAssemblyAI, make: Make, data: Path, sentence: Audio
) -> None:
    t = make().transcribe(sentence, TranscriptionOptions(prompt="A sentence about a dog.", word_timestamps=False))
    assert "prompt" not in fake.created[0]
    assert len(t.warnings) == 1
    assert "free-text prompt" in t.warnings[0]
    assert t.words == ()
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    assert t.segments
    assert all(s.end > s.start for s in t.segments)


def test_a_streaming_model_falls_back_to_a_batch_model_with_a_warning(
    fake: FakeAssemblyAI, make: Make, sentence: Audio
) -> None:
    t = make("assemblyai/universal-streaming-multilingual").transcribe(sentence, TranscriptionOptions())
    assert fake.created[0]["speech_models"] == ["universal-2"]
    (warning,) = t.warnings
    assert "streaming model" in warning
    assert "universal-2" in warning
    assert t.model_id == "assemblyai/universal-streaming-multilingual"
    assert "dog" in t.text


# -- answers it cannot read --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'["a list"]', "not an object"),
        (b'{"id": "x", "status": "completed", "words": [{"text": "a"}]}', "cannot read"),
    ],
)
def test_broken_answers_are_provider_errors(
    fake: FakeAssemblyAI, make: Make, sentence: Audio, body: bytes, match: str
) -> None:
    fake.stall = True
    fake.script(Fault(body=body), route="poll")
    with pytest.raises(ProviderError, match=match) as caught:
        make().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls.count("poll") == 1


# -- the reference's provider block ----------------------------------------------------------------------------------


def test_assemblyai_config_prompt_reaches_a_universal3_model(fake: FakeAssemblyAI, make: Make, comfyui: Audio) -> None:
    block = AssemblyAIOptions(prompt="Software names are spelled as their makers spell them.", vad_threshold=0.3)
    t = make("assemblyai/universal-3-pro").transcribe(
        comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI",), vendor=block)
    )
    (body,) = fake.created
    assert body["prompt"] == "Software names are spelled as their makers spell them."
    assert "keyterms_prompt" not in body  # the vendor takes one or the other
    assert any("prompt or key terms" in w for w in t.warnings)
    assert any("vadThreshold applies to streams only" in w for w in t.warnings)


def test_assemblyai_config_prompt_on_another_model_is_a_warning(
    fake: FakeAssemblyAI, make: Make, sentence: Audio
) -> None:
    options = TranscriptionOptions(language="en", vendor=AssemblyAIOptions(prompt="Be exact."))
    t = make("assemblyai/universal-2").transcribe(sentence, options)
    (body,) = fake.created
    assert "prompt" not in body
    (warning,) = t.warnings
    assert "Universal-3" in warning
    assert "dog" in t.text
